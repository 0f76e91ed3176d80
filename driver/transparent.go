package driver

import "fmt"

// transparent: each endpoint has its own MAC on the segment (the NIC goes
// promiscuous to hear it). Options: uplink=IFNAME (required); dhcp=true to
// lease endpoint addresses from the segment's DHCP server instead of
// handing them out from --subnet.
type transparent struct{ uplinkCommon }

func (transparent) Name() string         { return "transparent" }
func (transparent) OptionKeys() []string { return []string{"uplink", "dhcp"} }
func (transparent) l2bridge() bool       { return false }

func (transparent) CheckOptions(opts map[string]string) error {
	if _, err := UplinkName("transparent", opts); err != nil {
		return err
	}
	if v, ok := opts["dhcp"]; ok && v != "true" && v != "false" {
		return fmt.Errorf("option dhcp=%q: want true or false", v)
	}
	return nil
}
