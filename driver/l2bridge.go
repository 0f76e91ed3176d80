package driver

import (
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/hns"
)

// l2bridge: endpoints share the host's MAC. Frames leave with the host's
// MAC as source; frames to the host's MAC are sorted by destination IP; ARP
// for endpoint addresses is answered with the host's MAC. The segment only
// ever learns the host's MAC. Options: uplink=IFNAME (required).
type l2bridge struct{ uplinkCommon }

func (l2bridge) Name() string { return "l2bridge" }

func (l2bridge) Help() string {
	return "the same as transparent, but the segment only ever sees the\n" +
		"host's MAC."
}

func (l2bridge) OptionKeys() []string { return []string{"uplink"} }

func (l2bridge) CheckOptions(opts map[string]string) error {
	_, err := UplinkName("l2bridge", opts)
	return err
}

func (l2bridge) Uplink(n Network) (string, error) { return UplinkName("l2bridge", n.Options) }

func (l2bridge) Forwarding(n Network, h Here) (dataplane.NetworkSpec, error) {
	return uplinkForwarding(n, h, true)
}

func (l2bridge) HNSNetwork(n Network, h Here) hns.NetworkSpec { return hnsNetwork(n, h, hns.L2Bridge) }
