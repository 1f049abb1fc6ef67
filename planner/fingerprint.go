package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// SpecFingerprint is the sha256 of the desired fleet's canonical JSON, together with the
// digests of the workloads' manifests (which are not part of the document's JSON).
func SpecFingerprint(f *spec.Fleet) string {
	digests := map[string]string{}
	for _, w := range f.Workloads {
		if w.ManifestDigest != "" {
			digests[w.Name] = w.ManifestDigest
		}
	}
	return fingerprint(struct {
		Fleet     *spec.Fleet       `json:"fleet"`
		Manifests map[string]string `json:"manifests,omitempty"`
	}{f, digests})
}

// WorldFingerprint is the sha256 of the observed world's JSON with Now zeroed, so observing
// the same world twice gives the same fingerprint. Prices are left out: they only make the
// plan's cost, which no step depends on, and a dry run (which caches nothing) and the pass
// that applies its saved plan may each read them afresh.
func WorldFingerprint(w *world.World) string {
	c := *w
	c.Now = time.Time{}
	c.Prices, c.PricesUnknown = nil, ""
	return fingerprint(&c)
}

func fingerprint(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unencodable values (a func in chart values) get here; they make a fingerprint
		// that never matches, so a saved plan is refused rather than trusted.
		b = []byte("unencodable: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
