package config

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// readKeyFile reads a secret, such as the gossip key, from path: the
// file's first line, without surrounding white space. On Unix the file
// must not be readable by its group or by others, as ssh insists for its
// keys: a key anyone on the host can read protects nothing. Windows files
// have no such mode bits; protect the file with its ACL there.
func readKeyFile(field, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", &Error{field, path, err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return "", &Error{field, path, "not a regular file"}
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", &Error{field, path, fmt.Sprintf("mode %04o lets its group or others read it; chmod 600 %s", perm, path)}
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
