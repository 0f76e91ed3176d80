package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/hns/hnstest"
	"github.com/vxnet/vxnet/internal/testutil"
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

// TestHuntKey_joinsWithTheNextKey: a host that holds the cluster's key
// only as its second one (it slept through a rotation's last steps), and
// so is refused by every member, encrypts with its next key once alone,
// and joins.
func TestHuntKey_joinsWithTheNextKey(t *testing.T) {
	old, cur := "AQEBAQEBAQEBAQEBAQEBAQ==", "AgICAgICAgICAgICAgICAg=="
	keyHuntEvery = 100 * time.Millisecond
	defer func() { keyHuntEvery = 5 * time.Second }()
	start := func(name, addr string, port int, keys []string, join []string) (*Agent, func()) {
		file := filepath.Join(t.TempDir(), "gossip.key")
		if err := config.WriteGossipKeys(file, keys); err != nil {
			t.Fatal(err)
		}
		return runTestAgent(t, config.Config{Name: name, AdvertiseAddr: addr, GossipPort: port, Join: join, GossipKeyFile: file, HNS: &hnstest.Fake{}})
	}
	p1 := freePort(t)
	a1, stop1 := start("k1", "127.0.0.1", p1, []string{cur}, nil)
	defer stop1()
	a2, stop2 := start("k2", "127.0.0.2", freePort(t), []string{old, cur}, []string{fmt.Sprintf("127.0.0.1:%d", p1)})
	defer stop2()
	testutil.WaitFor(t, "k2, which encrypted with a key k1 dropped, to join", 20*time.Second, func() bool {
		return len(a1.Members()) == 2 && len(a2.Members()) == 2
	})
	if k := a2.kv.Node().Keys(); keyFingerprint(k[0]) != keyFingerprint(mustKey(t, cur)) {
		t.Errorf("k2 encrypts with %s, want the cluster's key %s", keyFingerprint(k[0]), keyFingerprint(mustKey(t, cur)))
	}
}

func mustKey(t *testing.T, b64 string) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRotateGossipKey_refusesOlderMembers: a member that announces no
// gossip keys (an older vxnet, which knows no rotation) is named at once,
// before any step, rather than after a step's minute of waiting.
func TestRotateGossipKey_refusesOlderMembers(t *testing.T) {
	cur := "AgICAgICAgICAgICAgICAg=="
	file := filepath.Join(t.TempDir(), "gossip.key")
	if err := config.WriteGossipKeys(file, []string{cur}); err != nil {
		t.Fatal(err)
	}
	p1 := freePort(t)
	a1, stop1 := runTestAgent(t, config.Config{Name: "r1", AdvertiseAddr: "127.0.0.1", GossipPort: p1, GossipKeyFile: file, HNS: &hnstest.Fake{}})
	defer stop1()
	old := gossip.DefaultFastConfig("r2")
	old.BindAddr, old.BindPort = "127.0.0.3", freePort(t)
	old.Keys = [][]byte{mustKey(t, cur)}
	old.Seeds = []string{fmt.Sprintf("127.0.0.1:%d", p1)}
	old.Meta = gossip.Meta{VTEP: "127.0.0.3", Version: "0.1.0"}
	n, err := gossip.New(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if _, err := n.Join(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "r1 to see r2", 10*time.Second, func() bool { return len(a1.Members()) == 2 })
	_, err = a1.RotateGossipKey(context.Background())
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "r2 (0.1.0) takes no part") {
		t.Fatalf("rotation with an older member: %v, want a conflict naming r2 (0.1.0)", err)
	}
	if _, ok := a1.kv.Get(tables.GossipKeys, tables.RotationKey); ok {
		t.Error("the refused rotation wrote a rotation row")
	}
}
