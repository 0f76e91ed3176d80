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

// TestGossipKeys_severalLines: a key file's further lines are keys still
// accepted (a rotation); WriteGossipKeys writes what ReadGossipKeys reads,
// mode 0600; a bad key is named by its line.
func TestGossipKeys_severalLines(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 16))
	p := filepath.Join(dir, "gossip.key")
	if err := WriteGossipKeys(p, []string{k1, k2}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	got, err := ReadGossipKeys(p)
	if err != nil || len(got) != 2 || got[0] != k1 || got[1] != k2 {
		t.Fatalf("ReadGossipKeys = %v, %v", got, err)
	}
	c := Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipKeyFile: p}
	c.SetDefaults()
	if _, keys, _, err := c.Check(); err != nil || len(keys) != 2 || len(keys[0]) != 32 || len(keys[1]) != 16 {
		t.Fatalf("Check: %d keys, %v", len(keys), err)
	}
	if err := WriteGossipKeys(p, []string{k1, "not-a-key"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Check(); err == nil || !strings.Contains(err.Error(), "(line 2)") {
		t.Errorf("a bad second key: %v", err)
	}
}
