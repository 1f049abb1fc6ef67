package state

import (
	"bytes"
	"os"
	"path/filepath"
)

// WritePrivateFile replaces path with data atomically (a temporary file in the same directory,
// renamed over path), the file 0600, creating its directory 0700 if needed. A file that already
// holds data with mode 0600 is left untouched. It is for files outside a Store that hold secrets,
// such as kubeconfigs written for the user.
func WritePrivateFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == 0o600 {
			return nil
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
