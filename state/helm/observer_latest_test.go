package helm

import (
	"context"
	"fmt"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The observer decodes only the latest revision of each release, and a revision whose
// labels do not say its version still competes by its decoded version.
func TestLatestReleasesPicksTheLatestRevision(t *testing.T) {
	cs := fake.NewClientset()
	secrets := cs.CoreV1().Secrets("istio-system")
	d := driver.NewSecrets(secrets)
	put := func(name string, version int) {
		r := &release.Release{Name: name, Namespace: "istio-system", Version: version,
			Info:  &release.Info{Status: release.StatusDeployed},
			Chart: &chart.Chart{Metadata: &chart.Metadata{Name: name, Version: fmt.Sprintf("1.%d.0", version)}}}
		if err := d.Create(fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, version), r); err != nil {
			t.Fatal(err)
		}
	}
	for v := 1; v <= 3; v++ {
		put("istiod", v)
	}
	put("istio-base", 1)
	put("istio-base", 2)
	// A revision stripped of its version label (by hand): decoded, and the latest still wins.
	s, err := secrets.Get(context.Background(), "sh.helm.release.v1.istio-base.v2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(s.Labels, "version")
	if _, err := secrets.Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := latestReleases(context.Background(), secrets)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int{}
	for _, r := range got {
		versions[r.Name] = r.Version
	}
	if len(got) != 2 || versions["istiod"] != 3 || versions["istio-base"] != 2 {
		t.Errorf("latest releases %v, want istiod v3 and istio-base v2", versions)
	}
}
