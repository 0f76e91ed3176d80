package gossip

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/internal/testutil"
)

// recorder is an Application that records what it is given.
type recorder struct {
	mu     sync.Mutex
	msgs   [][]byte
	events []MemberEvent
}

func (r *recorder) NotifyMsg(b []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, append([]byte(nil), b...))
	r.mu.Unlock()
}
func (r *recorder) LocalState(bool) []byte        { return nil }
func (r *recorder) MergeRemoteState([]byte, bool) {}
func (r *recorder) MemberEvent(ev MemberEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}
func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if bytes.Equal(m, []byte(msg)) {
			return true
		}
	}
	return false
}
func (r *recorder) sawEvent(t EventType, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Type == t && ev.Member.Name == name {
			return true
		}
	}
	return false
}

var waitUntil = testutil.WaitFor

// loopbackNode starts a node on 127.0.0.1 with an ephemeral port.
func loopbackNode(t *testing.T, name string, keys [][]byte, seeds ...string) (*Node, *recorder) {
	t.Helper()
	cfg := DefaultFastConfig(name)
	cfg.BindAddr = "127.0.0.1"
	cfg.Keys = keys
	cfg.Seeds = seeds
	cfg.Meta = Meta{VTEP: "198.18.0." + name[len(name)-1:], Version: "test"}
	cfg.Tune = func(c *memberlist.Config) { c.BindPort, c.AdvertisePort = 0, 0 }
	rec := &recorder{}
	n, err := New(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	if len(seeds) > 0 {
		if _, err := n.Join(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return n, rec
}

func addr(n *Node) string { return n.LocalAddr() }

// broadcastUntil broadcasts msg from n until every recorder has it. A
// broadcast is best effort (a few piggybacked sends, nothing
// acknowledged), so on a loaded machine one may be lost: it goes again
// every second, as the tables' own anti-entropy would make up for it.
func broadcastUntil(t *testing.T, n *Node, key, msg string, rs ...*recorder) {
	t.Helper()
	n.Broadcast(key, []byte(msg))
	sent := time.Now()
	for _, r := range rs {
		waitUntil(t, "the broadcast "+msg, 20*time.Second, func() bool {
			if time.Since(sent) > time.Second {
				n.Broadcast(key, []byte(msg))
				sent = time.Now()
			}
			return r.has(msg)
		})
	}
}

// TestNode_threeOverUDP: three encrypted nodes on loopback find each other,
// carry metadata, broadcast, send reliably, rotate their key, and see a
// graceful leave.
func TestNode_threeOverUDP(t *testing.T) {
	key1 := bytes.Repeat([]byte{1}, 32)
	n1, r1 := loopbackNode(t, "n1", [][]byte{key1})
	n2, r2 := loopbackNode(t, "n2", [][]byte{key1}, addr(n1))
	n3, r3 := loopbackNode(t, "n3", [][]byte{key1}, addr(n1))
	nodes := []*Node{n1, n2, n3}
	for _, n := range nodes {
		waitUntil(t, n.Name()+" to see 3 members", 10*time.Second, func() bool { return n.NumMembers() == 3 })
	}
	for _, m := range n3.Members() {
		if m.Name == "n1" && m.Meta.VTEP != "198.18.0.1" {
			t.Errorf("n1's metadata on n3: %+v", m.Meta)
		}
	}

	broadcastUntil(t, n1, "k", "hello", r2, r3)
	if err := n2.SendReliable("n3", []byte("direct")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reliable send", 5*time.Second, func() bool { return r3.has("direct") })
	if err := n2.SendReliable("nobody", []byte("x")); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("send to an unknown node: %v", err)
	}

	// Key rotation: install everywhere, use everywhere, remove the old.
	key2 := bytes.Repeat([]byte{2}, 32)
	for _, n := range nodes {
		if err := n.InstallKey(key2); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := n.UseKey(key2); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := n.RemoveKey(key1); err != nil {
			t.Fatal(err)
		}
		if k := n.Keys(); len(k) != 1 || !bytes.Equal(k[0], key2) {
			t.Fatalf("%s keys after rotation: %d", n.Name(), len(k))
		}
	}
	broadcastUntil(t, n3, "k2", "after rotation", r1)

	// A node with the old key cannot join.
	stranger := DefaultFastConfig("n4")
	stranger.BindAddr = "127.0.0.1"
	stranger.Keys = [][]byte{key1}
	stranger.Seeds = []string{addr(n1)}
	stranger.Tune = func(c *memberlist.Config) { c.BindPort, c.AdvertisePort = 0, 0; c.TCPTimeout = 500 * time.Millisecond }
	n4, err := New(stranger, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n4.Join(time.Second); err == nil {
		t.Error("a node with a retired key joined")
	}
	n4.Shutdown()

	if err := n3.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	n3.Shutdown()
	waitUntil(t, "n1 to see n3 leave", 10*time.Second, func() bool { return r1.sawEvent(EventLeave, "n3") })
	if r1.sawEvent(EventFail, "n3") {
		t.Error("a graceful leave was reported as a failure")
	}
}

func TestNode_subscribeSeesFailure(t *testing.T) {
	n1, _ := loopbackNode(t, "s1", nil)
	events, cancel := n1.Subscribe()
	defer cancel()
	n2, _ := loopbackNode(t, "s2", nil, addr(n1))
	waitEvent(t, events, EventJoin, "s2")
	n2.Shutdown() // no leave: a crash
	waitEvent(t, events, EventFail, "s2")
}

func waitEvent(t *testing.T, ch <-chan MemberEvent, typ EventType, name string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Type == typ && ev.Member.Name == name {
				return
			}
		case <-deadline:
			t.Fatalf("no %v event for %s", typ, name)
		}
	}
}

func TestConfig_validate(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no name":       {func(c *Config) { c.Name = "" }, "Name is empty"},
		"bad bind":      {func(c *Config) { c.BindAddr = "example" }, `BindAddr "example"`},
		"bad advertise": {func(c *Config) { c.AdvertiseAddr = "x" }, `AdvertiseAddr "x"`},
		"bad port":      {func(c *Config) { c.BindPort = 70000 }, "BindPort 70000"},
		"bad seed":      {func(c *Config) { c.Seeds = []string{"10.0.0.1"} }, `Seeds[0] "10.0.0.1"`},
		"bad key":       {func(c *Config) { c.Keys = [][]byte{make([]byte, 10)} }, "Keys[0]: 10 bytes"},
		"bad profile":   {func(c *Config) { c.Profile = 7 }, "Profile 7"},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultLANConfig("x")
			tc.edit(&c)
			_, err := New(c, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	c := DefaultLANConfig("x")
	c.setDefaults()
	if c.BindPort != DefaultPort || c.RejoinInterval != 30*time.Second || fmt.Sprint(c.Profile) != "lan" {
		t.Errorf("defaults: %+v", c)
	}
}

// TestNode_nameTaken: a node that joins under a live member's name is
// ignored by the others, and learns so in its join; the member keeps its
// place.
func TestNode_nameTaken(t *testing.T) {
	n1, _ := loopbackNode(t, "n1", nil)
	n2, _ := loopbackNode(t, "n2", nil, addr(n1))
	waitUntil(t, "n1 to see 2 members", 10*time.Second, func() bool { return n1.NumMembers() == 2 })
	if by := n2.NameTakenBy(); by != "" {
		t.Fatalf("n2 joined under its own name, yet NameTakenBy = %q", by)
	}
	twin := DefaultFastConfig("n2")
	twin.BindAddr = "127.0.0.1"
	twin.Seeds = []string{addr(n1)}
	twin.Tune = func(c *memberlist.Config) { c.BindPort, c.AdvertisePort = 0, 0 }
	n3, err := New(twin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Shutdown()
	if _, err := n3.Join(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if by := n3.NameTakenBy(); by != addr(n2) {
		t.Errorf("the twin's NameTakenBy = %q, want n2's %s", by, addr(n2))
	}
	for _, m := range n1.Members() {
		if m.Name == "n2" && m.Addr != addr(n2) {
			t.Errorf("n1 took the twin for n2: %+v", m)
		}
	}
}
