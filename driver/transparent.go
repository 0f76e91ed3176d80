package driver

import (
	"fmt"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/hns"
)

// transparent: each endpoint has its own MAC on the segment (the NIC goes
// promiscuous to hear it). Options: uplink=IFNAME (required); dhcp=true to
// lease endpoint addresses from the segment's DHCP server instead of
// handing them out from --subnet.
type transparent struct{ uplinkCommon }

func (transparent) Name() string { return "transparent" }

func (transparent) Help() string {
	return "containers on the physical segment of the host NIC named by\n" +
		"-o uplink=IFNAME, each with its own MAC; --subnet is the segment's,\n" +
		"--gateway its router, --ip-range what vxnet may hand out; or\n" +
		"-o dhcp=true: addresses leased from the segment's DHCP server."
}

func (transparent) OptionKeys() []string { return []string{"uplink", "dhcp"} }

func (transparent) CheckOptions(opts map[string]string) error {
	if _, err := UplinkName("transparent", opts); err != nil {
		return err
	}
	if v, ok := opts["dhcp"]; ok && v != "true" && v != "false" {
		return fmt.Errorf("option dhcp=%q: want true or false", v)
	}
	return nil
}

func (transparent) LeasesByDHCP(n Network) bool { return n.Options["dhcp"] == "true" }

func (transparent) Uplink(n Network) (string, error) { return UplinkName("transparent", n.Options) }

func (transparent) Forwarding(n Network, h Here) (dataplane.NetworkSpec, error) {
	return uplinkForwarding(n, h, false)
}

func (transparent) HNSNetwork(n Network, h Here) hns.NetworkSpec {
	return hnsNetwork(n, h, hns.Transparent)
}
