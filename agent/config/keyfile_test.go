package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestConfig_gossipKeyFile: the key is read from the file's first line; a
// file its group or others can read is refused, naming the file and the
// fix, as are a file and a key given together, an empty file and a key
// that is not one.
func TestConfig_gossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good.key", base64.StdEncoding.EncodeToString(key)+"\n", 0o600)
	c := Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipKeyFile: good}
	c.SetDefaults()
	_, keys, _, err := c.Check()
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0], key) {
		t.Fatalf("keys %v, error %v: want the file's key", keys, err)
	}
	for _, tc := range []struct {
		cfg  Config
		says string
	}{
		{Config{GossipKeyFile: write("open.key", base64.StdEncoding.EncodeToString(key), 0o644)}, "mode 0644 lets its group or others read it; chmod 600"},
		{Config{GossipKeyFile: write("group.key", base64.StdEncoding.EncodeToString(key), 0o640)}, "mode 0640"},
		{Config{GossipKeyFile: good, GossipKey: base64.StdEncoding.EncodeToString(key)}, "not both"},
		{Config{GossipKeyFile: write("empty.key", "\n", 0o600)}, "empty"},
		{Config{GossipKeyFile: write("short.key", "AAAA", 0o600)}, "want base64 of 16, 24 or 32 bytes"},
		{Config{GossipKeyFile: filepath.Join(dir, "none.key")}, "no such file"},
		{Config{GossipKeyFile: dir}, "not a regular file"},
	} {
		if runtime.GOOS == "windows" && strings.HasPrefix(tc.says, "mode") {
			continue
		}
		c := tc.cfg
		c.Name, c.AdvertiseAddr = "h", "198.18.0.1"
		c.SetDefaults()
		_, _, _, err := c.Check()
		var ce *Error
		if !errors.As(err, &ce) || ce.Field != "gossip-key-file" || ce.Value != tc.cfg.GossipKeyFile || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %v, want one naming gossip-key-file %s and saying %q", tc.cfg.GossipKeyFile, err, tc.cfg.GossipKeyFile, tc.says)
		}
	}
}
