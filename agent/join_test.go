package agent

import (
	"testing"

	"github.com/vxnet/vxnet/gossip"
)

func TestMemberNamed(t *testing.T) {
	members := []gossip.Member{{Name: "h1", Addr: "198.18.0.1:7946"}, {Name: "h5", Addr: "198.18.0.5:7946"}}
	for _, c := range []struct {
		name, addr string
		taken      bool
	}{
		{"h5", "198.18.0.9", true},  // another host under a live member's name
		{"h5", "198.18.0.5", false}, // the member itself joining again
		{"h9", "198.18.0.9", false},
		{"h1", "", true}, // no address said: no way to tell it is the same host
	} {
		m, taken := memberNamed(members, c.name, c.addr)
		if taken != c.taken || taken && m.Name != c.name {
			t.Errorf("memberNamed(%s, %q) = %+v, %v; want taken %v", c.name, c.addr, m, taken, c.taken)
		}
	}
}
