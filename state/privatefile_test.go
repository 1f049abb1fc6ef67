package state

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePrivateFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		old  []byte      // nil: no file before
		mode os.FileMode // of the old file
		data []byte
	}{
		{"new file in a new directory", nil, 0, []byte("secret")},
		{"different content replaced", []byte("old"), 0o600, []byte("new")},
		{"same content, loose mode tightened", []byte("same"), 0o644, []byte("same")},
		{"same content, 0600 kept", []byte("same"), 0o600, []byte("same")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "sub")
			path := filepath.Join(dir, "kubeconfig")
			if tc.old != nil {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tc.old, tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			if err := WritePrivateFile(path, tc.data); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tc.data) {
				t.Errorf("content %q, want %q", got, tc.data)
			}
			if st, err := os.Stat(path); err != nil {
				t.Fatal(err)
			} else if st.Mode().Perm() != 0o600 {
				t.Errorf("file mode %v, want 0600", st.Mode().Perm())
			}
			if tc.old == nil {
				if st, err := os.Stat(dir); err != nil {
					t.Fatal(err)
				} else if st.Mode().Perm() != 0o700 {
					t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(entries))
			}
		})
	}
}
