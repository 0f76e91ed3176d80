package seal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDerive_differentSessionsDifferentKeys(t *testing.T) {
	sa, sb := mustPair(t), mustPair(t)
	ea1, ea2, eb := mustPair(t), mustPair(t), mustPair(t)
	k1, err := Derive(AES256GCM, Local{sa, ea1}, Remote{sb.Public(), eb.Public()})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Derive(AES256GCM, Local{sa, ea2}, Remote{sb.Public(), eb.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if k1.Send.ID() == k2.Send.ID() {
		t.Fatal("a new session kept the key id")
	}
	var s Scratch
	d := seal(t, k1.Send, &s, datagram(1, []byte("hello")))
	h, _ := ParseHeader(d)
	if _, err := k2.Recv.Open(&s, d, h); err == nil {
		t.Fatal("another session's key opened the datagram")
	}
	// The suite is bound into the keys: the same keys under the other
	// suite do not match.
	kc, err := Derive(ChaCha20Poly1305, Local{sb, eb}, Remote{sa.Public(), ea1.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if kc.Recv.ID() == k1.Send.ID() {
		t.Fatal("the suite does not change the keys")
	}
}

// TestDerive_impostor: a host that announces another's static public key
// with its own session key gets no key that opens the pair's traffic.
func TestDerive_impostor(t *testing.T) {
	sa, sb, sx := mustPair(t), mustPair(t), mustPair(t)
	ea, eb, ex := mustPair(t), mustPair(t), mustPair(t)
	real, err := Derive(AES256GCM, Local{sb, eb}, Remote{sa.Public(), ea.Public()})
	if err != nil {
		t.Fatal(err)
	}
	// X knows A's and B's public keys and its own private ones.
	fake, err := Derive(AES256GCM, Local{sx, ex}, Remote{sb.Public(), eb.Public()})
	if err != nil {
		t.Fatal(err)
	}
	var s Scratch
	d := seal(t, fake.Send, &s, datagram(1, []byte("let me in")))
	h, _ := ParseHeader(d)
	if _, err := real.Recv.Open(&s, d, h); err == nil {
		t.Fatal("an impostor's datagram opened")
	}
}

func TestDerive_refusesBadPeers(t *testing.T) {
	sa, ea := mustPair(t), mustPair(t)
	if _, err := Derive(AES256GCM, Local{sa, ea}, Remote{sa.Public(), mustPair(t).Public()}); err == nil {
		t.Fatal("derived keys with itself")
	}
	var zero PublicKey // a low-order point: no shared secret
	if _, err := Derive(AES256GCM, Local{sa, ea}, Remote{zero, mustPair(t).Public()}); err == nil {
		t.Fatal("derived keys with an all-zero static key")
	}
	if _, err := Derive(AES256GCM, Local{sa, ea}, Remote{mustPair(t).Public(), zero}); err == nil {
		t.Fatal("derived keys with an all-zero session key")
	}
	if _, err := Derive(AES256GCM, Local{Static: sa}, Remote{}); err == nil {
		t.Fatal("derived keys without a session key")
	}
}

func TestPublicKey_text(t *testing.T) {
	p := mustPair(t).Public()
	got, err := ParsePublicKey(p.String())
	if err != nil || got != p {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParsePublicKey(bad); err == nil || !strings.Contains(err.Error(), "public key") {
			t.Fatalf("ParsePublicKey(%q): %v", bad, err)
		}
	}
}

func TestLoadOrCreateStatic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "host.key")
	k1, err := LoadOrCreateStatic(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Fatalf("new key file mode %#o, want 0600", m)
	}
	k2, err := LoadOrCreateStatic(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Public() != k2.Public() {
		t.Fatal("a second load made another key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateStatic(path); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("world-readable key: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateStatic(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("garbage key file: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d files, want the key alone", len(entries))
	}
}
