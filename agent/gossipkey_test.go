package agent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/seal"
)

// TestGossipKeySealing: the new key sealed to a member opens with that
// member's host key and its own rotation context only; fingerprints
// differ per key and never show the key.
func TestGossipKeySealing(t *testing.T) {
	h2, _ := seal.NewKeyPair()
	h3, _ := seal.NewKeyPair()
	k := bytes.Repeat([]byte{9}, 32)
	fp := keyFingerprint(k)
	sealed, err := seal.SealTo(h2.Public(), rotationContext(3, "h2", fp), k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h2.OpenSealed(rotationContext(3, "h2", fp), sealed); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("open: %x %v", got, err)
	}
	for _, c := range []struct {
		who *seal.KeyPair
		ctx []byte
	}{{h3, rotationContext(3, "h2", fp)}, {h2, rotationContext(4, "h2", fp)}, {h2, rotationContext(3, "h3", fp)}, {h2, rotationContext(3, "h2", "0000000000000000")}} {
		if _, err := c.who.OpenSealed(c.ctx, sealed); err == nil {
			t.Errorf("opened with %q", c.ctx)
		}
	}
	old, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	if keyFingerprint(old) == keyFingerprint(other) || len(keyFingerprint(k)) != 16 {
		t.Errorf("fingerprints %s %s", keyFingerprint(old), keyFingerprint(other))
	}
	if fps := keyFingerprints([][]byte{k, old}); fps != keyFingerprint(k)+","+keyFingerprint(old) || strings.Contains(fps, "0909") {
		t.Errorf("keyFingerprints = %s", fps)
	}
}
