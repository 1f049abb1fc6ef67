package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// GuardError is returned when a plan would destroy more than the fleet allows in one pass.
type GuardError struct {
	// Removals are the addresses of the unjoin and delete steps that tripped the guard.
	Removals []string
	// Members is how many of the Observed members would be unjoined or deleted.
	Members, Observed int
	// MaxShare is safety.maxDeleteShare.
	MaxShare float64
	// Manager names the manager cluster the plan would delete ("" when none).
	Manager string
}

func (e *GuardError) Error() string {
	var why []string
	if e.Manager != "" {
		why = append(why, fmt.Sprintf("it would delete cluster %q, which runs the Karmada control plane", e.Manager))
	}
	if e.Observed > 0 && float64(e.Members) > e.MaxShare*float64(e.Observed) {
		why = append(why, fmt.Sprintf("it would unjoin or delete %d of %d members (%.0f%%), more than safety.maxDeleteShare %.0f%%",
			e.Members, e.Observed, 100*float64(e.Members)/float64(e.Observed), 100*e.MaxShare))
	}
	return "refusing the plan: " + strings.Join(why, ", and ") +
		" (" + strings.Join(e.Removals, ", ") + "); if this is intended, run again with --allow-destroy" +
		" or raise safety.maxDeleteShare"
}

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
// the same world twice gives the same fingerprint.
func WorldFingerprint(w *world.World) string {
	c := *w
	c.Now = time.Time{}
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
