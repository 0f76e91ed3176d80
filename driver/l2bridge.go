package driver

// l2bridge: endpoints share the host's MAC. Frames leave with the host's
// MAC as source; frames to the host's MAC are sorted by destination IP; ARP
// for endpoint addresses is answered with the host's MAC. The segment only
// ever learns the host's MAC. Options: uplink=IFNAME (required).
type l2bridge struct{ uplinkCommon }

func (l2bridge) Name() string         { return "l2bridge" }
func (l2bridge) OptionKeys() []string { return []string{"uplink"} }
func (l2bridge) l2bridge() bool       { return true }

func (l2bridge) CheckOptions(opts map[string]string) error {
	_, err := UplinkName("l2bridge", opts)
	return err
}
