package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestManifestErrorsNeverQuoteTheFile: a manifest path that points at a secrets file is an
// error naming the file and line, and never its content.
func TestManifestErrorsNeverQuoteTheFile(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-linode-token-0123456789"
	for name, content := range map[string]string{
		"dotenv":          "LINODE_TOKEN=" + secret + "\n",
		"list":            "- " + secret + "\n",
		"bad escape":      "token: \"" + secret + "\\q\"\n",
		"mapping":         "LINODE_TOKEN: " + secret + "\n",
		"tab indentation": "a:\n\t" + secret + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := baseFleet()
			set(t, doc, "workloads[0].manifests", []any{"./secret.env"})
			path := writeFleet(t, doc, map[string]string{"secret.env": content})
			_, err := Load(path)
			if err == nil {
				t.Fatal("a secrets file was accepted as a manifest")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "LINODE_TOKEN") {
				t.Errorf("the error quotes the file's content:\n%v", err)
			}
			if want := filepath.Join(filepath.Dir(path), "secret.env") + ":"; !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name the file and line (%s):\n%v", want, err)
			}
		})
	}
}

// FuzzParse: whatever the bytes, Parse never panics, and a rejection is a list of errors each
// of which names a field path or a line of the file.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../examples/regions/fleet.yaml", "../examples/lab/fleet.yaml", "../examples/existing/fleet.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	if files, _ := filepath.Glob("testdata/*.yaml"); len(files) > 0 {
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("safety:\n  maxDeleteShare: .nan\n"))
	f.Add([]byte("apiVersion: reconcile.dev/v1alpha1\nkind: Fleet\nmetadata: {name: x}\nmanager: {name: m, region: eu-west, k8sVersion: \"1.33\", pools: [{type: g6, count: 1}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Parse resolves paths against the file's directory; give it one of its own so a
		// fuzzed manifest path reads nothing of the repository's.
		file := filepath.Join(t.TempDir(), "fleet.yaml")
		type result struct {
			fleet *Fleet
			err   error
		}
		done := make(chan result, 1)
		go func() {
			fl, err := Parse(file, data)
			done <- result{fl, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("Parse did not return within 20s on %q", data)
		}
		fleet, err := r.fleet, r.err
		if err == nil {
			if fleet == nil {
				t.Fatal("Parse returned neither a fleet nor an error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("Parse error is not a list of field errors: %v", err)
		}
		for _, fe := range errs.List {
			if fe.Path == "" && fe.Line == 0 {
				t.Errorf("an error names neither a field nor a line: %q", fe.Error())
			}
			if fe.Msg == "" {
				t.Errorf("an error says nothing: %+v", fe)
			}
		}
	})
}
