package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ReadGossipKeys reads a gossip key file: a key per line (base64), the
// one gossip is encrypted with first; the others are accepted from hosts
// that still use them (during a rotation). Blank lines are skipped. The
// file's mode is checked as readKeyFile does.
func ReadGossipKeys(path string) ([]string, error) {
	first, err := readKeyFile("gossip-key-file", path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{"gossip-key-file", path, err.Error()}
	}
	keys := []string{first}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if k := strings.TrimSpace(line); k != "" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// WriteGossipKeys writes keys (base64, the one in use first) to path,
// mode 0600, replacing it whole (a new file renamed over the old).
func WriteGossipKeys(path string, keys []string) error {
	return WriteSecretFile(path, []byte(strings.Join(keys, "\n")+"\n"))
}

// WriteSecretFile writes b to path with mode 0600: a temporary file in
// the same directory, synced, then renamed over path, so that a reader
// sees the old file or the new one, never half of one.
func WriteSecretFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := restrictSecret(tmp); err != nil { // before a byte is in it
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RestrictDir keeps other users out of dir, which holds secrets, on
// Windows: an ACL of SYSTEM and the Administrators alone, so nobody else
// reads or plants a file there. On Unix it does nothing: the secrets are
// 0600 files.
func RestrictDir(dir string) error {
	return restrictSecret(dir)
}

// CheckSecretFile refuses a secret's file (flag field) that is not a
// regular file, or that its group or others may read (Unix; on Windows
// the file's ACL protects it).
func CheckSecretFile(field, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return &Error{field, path, err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return &Error{field, path, "not a regular file"}
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return &Error{field, path, fmt.Sprintf("mode %04o lets its group or others read it; chmod 600 %s", perm, path)}
	}
	return nil
}

// readKeyFile reads a secret, such as the gossip key, from path: the
// file's first line, without surrounding white space. On Unix the file
// must not be readable by its group or by others, as ssh insists for its
// keys: a key anyone on the host can read protects nothing. Windows files
// have no such mode bits; protect the file with its ACL there.
func readKeyFile(field, path string) (string, error) {
	if err := CheckSecretFile(field, path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &Error{field, path, err.Error()}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	key := strings.TrimSpace(line)
	if key == "" {
		return "", &Error{field, path, "empty: want the key on its first line"}
	}
	return key, nil
}
