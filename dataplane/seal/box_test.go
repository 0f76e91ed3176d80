package seal

import (
	"bytes"
	"testing"
)

// TestSealTo: only the addressee opens, only a message from the named
// sender, only with the same context; every altered byte is refused; two
// seals of one message differ.
func TestSealTo(t *testing.T) {
	from, _ := NewKeyPair()
	to, _ := NewKeyPair()
	other, _ := NewKeyPair()
	msg := []byte("a new gossip key, 32 bytes long!")
	ctx := []byte("gen 7 to h2")
	sealed, err := SealTo(from, to.Public(), ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := to.OpenSealed(from.Public(), ctx, sealed); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := other.OpenSealed(from.Public(), ctx, sealed); err == nil {
		t.Error("another key opened it")
	}
	if _, err := to.OpenSealed(other.Public(), ctx, sealed); err == nil {
		t.Error("opened as if from another sender")
	}
	forged, _ := SealTo(other, to.Public(), ctx, msg)
	if _, err := to.OpenSealed(from.Public(), ctx, forged); err == nil {
		t.Error("a message sealed by another sender opened as from the named one")
	}
	if _, err := to.OpenSealed(from.Public(), []byte("gen 8 to h2"), sealed); err == nil {
		t.Error("opened with another context")
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		if _, err := to.OpenSealed(from.Public(), ctx, bad); err == nil {
			t.Fatalf("byte %d altered: opened", i)
		}
	}
	if _, err := to.OpenSealed(from.Public(), ctx, sealed[:20]); err == nil {
		t.Error("a truncated message opened")
	}
	again, _ := SealTo(from, to.Public(), ctx, msg)
	if bytes.Equal(again, sealed) || bytes.Contains(sealed, msg) {
		t.Error("seals repeat, or hold the message in clear")
	}
}
