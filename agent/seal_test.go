package agent

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/gossip"
)

// rotatingHost is a sealing stepped through a rotation, with the
// announcement it made at each phase: 0 before, 1 the new key announced, 2
// in use (the old one kept), 3 the old one gone.
type rotatingHost struct {
	name, vtep string
	s          *sealing
	metas      []gossip.Meta
}

func newRotatingHost(t *testing.T, name, vtep string, phase int, start time.Time) *rotatingHost {
	t.Helper()
	static, err := seal.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSealing(static, true, start)
	if err != nil {
		t.Fatal(err)
	}
	h := &rotatingHost{name: name, vtep: vtep, s: s}
	h.metas = append(h.metas, s.meta(gossip.Meta{VTEP: vtep}))
	now := start
	for p := 1; p <= phase; p++ {
		switch p {
		case 1:
			if _, err := s.rotate(now); err != nil {
				t.Fatal(err)
			}
			s.announced(now, s.meta(gossip.Meta{VTEP: vtep}))
		case 2:
			now = now.Add(s.announce)
			if !s.advance(now, 0) {
				t.Fatal("the announced key did not come into use")
			}
		case 3:
			now = now.Add(s.grace)
			if !s.advance(now, 0) {
				t.Fatal("the old key was not dropped")
			}
		}
		h.metas = append(h.metas, s.meta(gossip.Meta{VTEP: vtep}))
	}
	return h
}

// ring is the keyring h builds from its view of the peer.
func (h *rotatingHost) ring(t *testing.T, peer gossip.Member) *dataplane.Keyring {
	t.Helper()
	h.s.last = "" // always build
	ring, errs, _ := h.s.keyring(h.name, []gossip.Member{{Name: h.name, Meta: h.metas[len(h.metas)-1]}, peer})
	if len(errs) > 0 || ring == nil {
		t.Fatalf("%s: keyring: %v", h.name, errs)
	}
	return ring
}

// crosses reports whether a datagram sealed by from's keyring for to's
// VTEP opens with to's keyring.
func crosses(from, to *dataplane.Keyring, fromVTEP, toVTEP string) error {
	send := from.Peer(netip.MustParseAddr(toVTEP)).Send
	if send == nil {
		return fmt.Errorf("no send key")
	}
	b := make([]byte, seal.HeaderLen+64, seal.HeaderLen+64+seal.TagLen)
	b[0] = 0x08
	ctr, _ := send.Reserve(1)
	d, err := send.Seal(new(seal.Scratch), b, ctr)
	if err != nil {
		return err
	}
	h, _ := seal.ParseHeader(d)
	for _, r := range to.Peer(netip.MustParseAddr(fromVTEP)).Recv {
		if r.ID() == h.ID {
			_, err := r.Open(new(seal.Scratch), d, h)
			return err
		}
	}
	return fmt.Errorf("no receive key with id %08x", h.ID)
}

// TestSealing_rotationLosesNothing: while either host, or both, rotate,
// traffic opens both ways at every phase, whether the other host has
// heard the latest announcement or only the one before.
func TestSealing_rotationLosesNothing(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	for i := 0; i <= 3; i++ {
		for j := 0; j <= 3; j++ {
			for _, lagA := range []int{0, 1} { // how far behind B's view of A is
				for _, lagB := range []int{0, 1} {
					if i-lagA < 0 || j-lagB < 0 {
						continue
					}
					a := newRotatingHost(t, "a", "198.18.0.1", i, start)
					b := newRotatingHost(t, "b", "198.18.0.2", j, start)
					ringA := a.ring(t, gossip.Member{Name: "b", Meta: b.metas[j-lagB]})
					ringB := b.ring(t, gossip.Member{Name: "a", Meta: a.metas[i-lagA]})
					where := fmt.Sprintf("a at phase %d (seen at %d), b at phase %d (seen at %d)", i, i-lagA, j, j-lagB)
					if err := crosses(ringA, ringB, a.vtep, b.vtep); err != nil {
						t.Errorf("%s: a to b: %v", where, err)
					}
					if err := crosses(ringB, ringA, b.vtep, a.vtep); err != nil {
						t.Errorf("%s: b to a: %v", where, err)
					}
				}
			}
		}
	}
}

// TestSealing_oldKeysGoAfterRotation: once a rotation is over, datagrams
// sealed with the replaced session's keys no longer open, and count as
// stale rather than unknown.
func TestSealing_oldKeysGoAfterRotation(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	a := newRotatingHost(t, "a", "198.18.0.1", 0, start)
	b := newRotatingHost(t, "b", "198.18.0.2", 0, start)
	before := a.ring(t, gossip.Member{Name: "b", Meta: b.metas[0]})
	// b rotates all the way; a hears each step.
	if _, err := b.s.rotate(start); err != nil {
		t.Fatal(err)
	}
	b.s.announced(start, b.s.meta(gossip.Meta{VTEP: b.vtep}))
	if _, err := b.s.rotate(start); err == nil {
		t.Fatal("a second rotation started while one runs")
	}
	b.s.advance(start.Add(b.s.announce), 0)
	b.s.advance(start.Add(b.s.announce+b.s.grace), 0)
	bMeta := b.s.meta(gossip.Meta{VTEP: b.vtep})
	a.ring(t, gossip.Member{Name: "b", Meta: b.metas[0]}) // as a saw it before
	after := a.ring(t, gossip.Member{Name: "b", Meta: bMeta})
	bNow := b.ring(t, gossip.Member{Name: "a", Meta: a.metas[0]})
	if err := crosses(before, bNow, a.vtep, b.vtep); err == nil {
		t.Fatal("a datagram sealed with the replaced keys still opens")
	}
	if err := crosses(bNow, after, b.vtep, a.vtep); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	old := before.Peer(netip.MustParseAddr(b.vtep)).Recv[0].ID()
	if _, why := after.RecvKey(netip.MustParseAddr(b.vtep), old); why != dataplane.DropSealStaleKey {
		t.Fatalf("the replaced key's id: %v, want seal_stale_key", why)
	}
}

// TestSealing_scheduledRotation: advance starts a rotation every interval
// and never two at once.
func TestSealing_scheduledRotation(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	h := newRotatingHost(t, "a", "198.18.0.1", 0, start)
	s := h.s
	if s.advance(start.Add(30*time.Second), time.Hour) {
		t.Fatal("rotated before the interval")
	}
	if !s.advance(start.Add(time.Hour), time.Hour) || s.next == nil {
		t.Fatal("no rotation after the interval")
	}
	first := s.next.Public()
	if s.advance(start.Add(time.Hour+s.announce), time.Hour) || s.current.Public() == first {
		t.Fatal("a next key whose announcement never went out came into use")
	}
	s.announced(start.Add(time.Hour), s.meta(gossip.Meta{}))
	s.advance(start.Add(time.Hour+time.Second), time.Hour)
	if s.next == nil || s.next.Public() != first {
		t.Fatal("a second rotation started while one runs")
	}
	s.advance(start.Add(time.Hour+s.announce), time.Hour)
	if s.current.Public() != first || s.rotationsDone() != 1 {
		t.Fatal("the announced key did not come into use")
	}
}

// TestSealing_memberBackKeepsItsKeys: a member that drops out of the
// membership and comes back with the same session keys gets the same
// keys, counters and replay windows: deriving them again would use
// nonces twice and take datagrams opened before.
func TestSealing_memberBackKeepsItsKeys(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	a := newRotatingHost(t, "a", "198.18.0.1", 0, start)
	b := newRotatingHost(t, "b", "198.18.0.2", 0, start)
	bMember := gossip.Member{Name: "b", Meta: b.metas[0]}
	self := gossip.Member{Name: "a", Meta: a.metas[0]}
	ring1, _, _ := a.s.keyring("a", []gossip.Member{self, bMember})
	send1 := ring1.Peer(netip.MustParseAddr(b.vtep)).Send
	send1.Reserve(1000)
	if _, _, changed := a.s.keyring("a", []gossip.Member{self}); !changed {
		t.Fatal("b's departure changed nothing")
	}
	ring2, _, _ := a.s.keyring("a", []gossip.Member{self, bMember})
	send2 := ring2.Peer(netip.MustParseAddr(b.vtep)).Send
	if send2 != send1 || send2.Sent() != 1000 {
		t.Fatalf("b back: send key %p (%d sent), want the same %p (1000 sent)", send2, send2.Sent(), send1)
	}
	if ring2.Peer(netip.MustParseAddr(b.vtep)).Recv[0] != ring1.Peer(netip.MustParseAddr(b.vtep)).Recv[0] {
		t.Fatal("b back: a new receive key (an empty replay window)")
	}
}

// TestSealing_sameHostKeyTwice: two members announcing one host key get
// no keys.
func TestSealing_sameHostKeyTwice(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	a := newRotatingHost(t, "a", "198.18.0.1", 0, start)
	b := newRotatingHost(t, "b", "198.18.0.2", 0, start)
	forged := b.metas[0]
	forged.VTEP = "198.18.0.3"
	ring, errs, _ := a.s.keyring("a", []gossip.Member{{Name: "b", Meta: b.metas[0]}, {Name: "x", Meta: forged}})
	if len(errs) == 0 || ring.Peer(netip.MustParseAddr("198.18.0.3")) != nil || ring.Peer(netip.MustParseAddr(b.vtep)) != nil {
		t.Fatalf("members sharing b's host key got keys (errors %v)", errs)
	}
}
