package static

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/seal"
)

// TestTakeSessionKey: a session key serves one start: its file is
// destroyed, its public key listed, and the same key put back is refused.
func TestTakeSessionKey(t *testing.T) {
	dir := t.TempDir()
	path, list := filepath.Join(dir, "session.key"), filepath.Join(dir, "host.key.sessions-used")
	k, err := seal.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := takeSessionKey(path, list)
	if err != nil || got.Public() != k.Public() {
		t.Fatalf("first start: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the session key file is still there: %v", err)
	}
	// The same key restored (a backup, a redeploy): refused.
	if err := os.WriteFile(path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := takeSessionKey(path, list); err == nil || !strings.Contains(err.Error(), "earlier start") {
		t.Fatalf("a used session key: %v, want it refused", err)
	}
	// A new one is taken.
	os.Remove(path)
	k2, _ := seal.NewKeyPair()
	if err := seal.WriteKeyFile(path, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := takeSessionKey(path, list); err != nil {
		t.Fatalf("a new session key: %v", err)
	}
	b, _ := os.ReadFile(list)
	if lines := strings.Count(string(b), "\n"); lines != 2 {
		t.Fatalf("%d keys listed, want 2", lines)
	}
}
