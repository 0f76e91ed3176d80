package agent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/tables"
)

// TestGossipKeySealing: the new key sealed to a member opens with that
// member's host key, as sealed by the rotation's initiator, for that very
// step only (another generation, step, initiator or member does not
// open); fingerprints differ per key and never show the key.
func TestGossipKeySealing(t *testing.T) {
	h1, _ := seal.NewKeyPair()
	h2, _ := seal.NewKeyPair()
	h3, _ := seal.NewKeyPair()
	k := bytes.Repeat([]byte{9}, 32)
	r := tables.GossipKeyRotation{Generation: 3, Phase: tables.PhaseInstall, Key: keyFingerprint(k), Initiator: "h1"}
	sealed, err := seal.SealTo(h1, h2.Public(), rotationContext(r, "h2"), k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h2.OpenSealed(h1.Public(), rotationContext(r, "h2"), sealed); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("open: %x %v", got, err)
	}
	later, moved, byOther := r, r, r
	later.Generation, moved.Phase, byOther.Initiator = 4, tables.PhaseDone, "h3"
	for _, c := range []struct {
		who  *seal.KeyPair
		from seal.PublicKey
		ctx  []byte
	}{{h3, h1.Public(), rotationContext(r, "h2")}, {h2, h3.Public(), rotationContext(r, "h2")}, {h2, h1.Public(), rotationContext(later, "h2")},
		{h2, h1.Public(), rotationContext(moved, "h2")}, {h2, h1.Public(), rotationContext(byOther, "h2")}, {h2, h1.Public(), rotationContext(r, "h3")}} {
		if _, err := c.who.OpenSealed(c.from, c.ctx, sealed); err == nil {
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

// TestRotationState_newer: a step is followed once, in order; a new
// rotation (a later generation, or another key at the same one) is.
func TestRotationState_newer(t *testing.T) {
	st := rotationState{Generation: 5, Phase: phaseOrder[tables.PhaseUse], Key: "aaaa"}
	for _, c := range []struct {
		gen   int
		phase string
		key   string
		want  bool
	}{{5, tables.PhaseInstall, "aaaa", false}, {5, tables.PhaseUse, "aaaa", false}, {5, tables.PhaseDone, "aaaa", true},
		{4, tables.PhaseDone, "bbbb", false}, {6, tables.PhaseInstall, "bbbb", true}, {5, tables.PhaseInstall, "bbbb", true}} {
		r := tables.GossipKeyRotation{Generation: c.gen, Phase: c.phase, Key: c.key}
		if got := st.newer(r); got != c.want {
			t.Errorf("newer(%d %s %s) = %v", c.gen, c.phase, c.key, got)
		}
	}
}

// TestJoinHint: the join failures a new host meets most (no gossip key,
// the wrong one, nobody there) say what to do; others say nothing.
func TestJoinHint(t *testing.T) {
	for msg, want := range map[string]string{
		"1 error occurred: remote state is encrypted and encryption is not configured": "--gossip-key-file",
		"no installed keys could decrypt the message":                                  "not the cluster's",
		"dial tcp 198.18.0.1:7946: connect: connection refused":                        "no agent answers",
		"something else": "",
	} {
		if got := joinHint(msg); want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("joinHint(%q) = %q, want one saying %q", msg, got, want)
		}
	}
}
