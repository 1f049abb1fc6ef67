package labworld

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `reconcile-lab fault` refuses what it cannot do before reaching any cluster.
func TestFaultCommandRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: f}
manager: {name: m, kubeconfig: {path: ./kc}, karmada: {chart: {path: ./kc}}}
members: [{name: us, kubeconfig: {path: ./kc}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kc"), []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "replicas", "us", "sideways", "-f", fleet}, "want: fault replicas <member> unavailable|available"},
		{[]string{"fault", "pods", "us", "unavailable", "-f", fleet}, "want: fault replicas"},
		{[]string{"fault", "ingress", "us", "unavailable", "-f", fleet}, "fault ingress <member> down|up"},
		{[]string{"fault", "replicas", "us", "down", "-f", fleet}, "fault ingress <member> down|up"},
		{[]string{"fault", "ingress", "eu", "down", "-f", fleet, "--state-dir", dir}, `"eu" is not a member of fleet f`},
		{[]string{"fault", "replicas", "eu", "unavailable", "-f", fleet, "--state-dir", dir}, `"eu" is not a member of fleet f`},
	} {
		var out, errOut bytes.Buffer
		if code := (cli{}).run(t.Context(), tc.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 1 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
