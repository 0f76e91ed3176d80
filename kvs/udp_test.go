package kvs

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip"
)

// TestGossip_threeNodesOverLoopbackUDP runs the tables over memberlist's
// real UDP/TCP transport on 127.0.0.1, encrypted.
func TestGossip_threeNodesOverLoopbackUDP(t *testing.T) {
	var nodes []*Gossip
	key := []byte("0123456789abcdef0123456789abcdef")
	for i := 0; i < 3; i++ {
		gc := gossip.DefaultFastConfig(fmt.Sprintf("udp%d", i))
		gc.BindAddr = "127.0.0.1"
		gc.Keys = [][]byte{key}
		gc.Tune = func(c *memberlist.Config) { c.BindPort, c.AdvertisePort = 0, 0 }
		if i > 0 {
			gc.Seeds = []string{nodes[0].Node().LocalAddr()}
		}
		g, err := NewGossip(FastTimings(), gc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		if i > 0 {
			if _, err := g.Node().Join(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, g)
	}
	for i, g := range nodes {
		g.Put("endpoints", fmt.Sprint("ep", i), []byte("v"))
	}
	waitFor(t, "three nodes over UDP to agree on 3 rows", 20*time.Second, func() bool {
		for _, g := range nodes {
			if len(g.List("endpoints")) != 3 || g.Digest() != nodes[0].Digest() {
				return false
			}
		}
		return true
	})
	if err := nodes[1].Delete("endpoints", "ep1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete to reach every node", 20*time.Second, func() bool {
		for _, g := range nodes {
			if _, ok := g.Get("endpoints", "ep1"); ok {
				return false
			}
		}
		return true
	})
}
