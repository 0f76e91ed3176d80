package agent

import (
	"bytes"
	"strings"
	"testing"
)

// TestGossipKeySeal: the new key opens with the key it was sealed with
// and its rotation's generation only; fingerprints differ per key and
// never show the key.
func TestGossipKeySeal(t *testing.T) {
	old, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	k := bytes.Repeat([]byte{9}, 32)
	sealed, err := sealKey(old, k, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openKey(old, sealed, 3); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("open: %x %v", got, err)
	}
	if _, err := openKey(old, sealed, 4); err == nil {
		t.Error("opened with another generation")
	}
	if _, err := openKey(other, sealed, 3); err == nil {
		t.Error("opened with another key")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := openKey(old, tampered, 3); err == nil {
		t.Error("opened a tampered key")
	}
	if _, err := openKey(old, sealed[:5], 3); err == nil {
		t.Error("opened a truncated key")
	}
	if keyFingerprint(old) == keyFingerprint(other) || len(keyFingerprint(k)) != 16 {
		t.Errorf("fingerprints %s %s", keyFingerprint(old), keyFingerprint(other))
	}
	if fps := keyFingerprints([][]byte{k, old}); fps != keyFingerprint(k)+","+keyFingerprint(old) || strings.Contains(fps, "0909") {
		t.Errorf("keyFingerprints = %s", fps)
	}
}
