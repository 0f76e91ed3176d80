package tables

import (
	"encoding/json"
	"net/netip"
	"time"
)

// Network is one creation of a network.
type Network struct {
	Name    string
	Driver  string
	Scope   string // "global" or "local"
	VNI     uint32
	Subnet  netip.Prefix
	Gateway netip.Addr // invalid when the network has none
	// Subnet6 and Gateway6: a dual-stack network's IPv6 subnet and
	// gateway (Subnet is then IPv4); invalid otherwise.
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
	IPRange6 string
	IPRange  string
	Internal bool
	Options  map[string]string
	// AssignedBy: who gives endpoints their addresses ("" for vxnet's
	// IPAM; api.AssignedBySwarm).
	AssignedBy string
	Creator    string // the host that created it
	Created    time.Time
}

// NetworkKey is the key of one creation of a network in Networks.
func NetworkKey(name, creator string) string { return name + "/" + creator }

// Key is n's key in Networks.
func (n Network) Key() string { return NetworkKey(n.Name, n.Creator) }

// PrefixOf is a's prefix on n: a with the length of n's subnet of a's
// family (Subnet6 for an IPv6 address on a dual-stack network; Subnet
// otherwise, whichever family a network of one subnet has).
func (n Network) PrefixOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() && n.Subnet6.IsValid() {
		return netip.PrefixFrom(a, n.Subnet6.Bits())
	}
	return netip.PrefixFrom(a, n.Subnet.Bits())
}

// Earlier orders two creations of one name the way IPAM orders their
// subnet claims: the earlier (Created, Creator) wins the name.
func (n Network) Earlier(o Network) bool {
	if !n.Created.Equal(o.Created) {
		return n.Created.Before(o.Created)
	}
	return n.Creator < o.Creator
}

// networkWire is a Network as hosts send it.
type networkWire struct {
	V        int               `json:"v,omitempty"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Scope    string            `json:"scope"`
	VNI      uint32            `json:"vni,omitempty"`
	Subnet   string            `json:"subnet"`
	Gateway  string            `json:"gateway,omitempty"`
	Subnet6  string            `json:"subnet6,omitempty"`
	Gateway6 string            `json:"gateway6,omitempty"`
	IPRange6 string            `json:"ipRange6,omitempty"`
	IPRange  string            `json:"ipRange,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Assigned string            `json:"assignedBy,omitempty"`
	Creator  string            `json:"creator"`
	Created  time.Time         `json:"created"`
}

// Encode is n's wire form.
func (n Network) Encode() []byte {
	w := networkWire{V: 1, Name: n.Name, Driver: n.Driver, Scope: n.Scope, VNI: n.VNI, Gateway: addrText(n.Gateway),
		IPRange: n.IPRange, Internal: n.Internal, Options: n.Options, Assigned: n.AssignedBy, Creator: n.Creator, Created: n.Created}
	if n.Subnet.IsValid() {
		w.Subnet = n.Subnet.String()
	}
	if n.Subnet6.IsValid() {
		// A dual-stack row: a host that reads only version 1 would take
		// the network for IPv4 alone, and refuses it instead.
		w.V, w.Subnet6, w.Gateway6, w.IPRange6 = versionDualStack, n.Subnet6.String(), addrText(n.Gateway6), n.IPRange6
	}
	b, _ := json.Marshal(w) // plain fields: cannot fail
	return b
}

// DecodeNetwork reads the row at key of Networks; the key must be the
// row's name/creator.
func DecodeNetwork(key string, value []byte) (Network, error) {
	var w networkWire
	if err := json.Unmarshal(value, &w); err != nil {
		return Network{}, &RowError{Table: Networks, Key: key, Reason: "not a network row: " + err.Error()}
	}
	if err := checkVersion(Networks, key, w.V); err != nil {
		return Network{}, err
	}
	if key != NetworkKey(w.Name, w.Creator) {
		return Network{}, &RowError{Networks, key, "name/creator", NetworkKey(w.Name, w.Creator), "does not match the key"}
	}
	n := Network{Name: w.Name, Driver: w.Driver, Scope: w.Scope, VNI: w.VNI, IPRange: w.IPRange, IPRange6: w.IPRange6, Internal: w.Internal,
		Options: w.Options, AssignedBy: w.Assigned, Creator: w.Creator, Created: w.Created}
	if w.Subnet != "" { // vxnet always writes one; read back what Encode writes without
		var err error
		if n.Subnet, err = netip.ParsePrefix(w.Subnet); err != nil {
			return Network{}, &RowError{Networks, key, "subnet", w.Subnet, "not a prefix"}
		}
	}
	var ok bool
	if n.Gateway, ok = parseAddr(w.Gateway); !ok {
		return Network{}, &RowError{Networks, key, "gateway", w.Gateway, "not an IP address"}
	}
	if w.Subnet6 != "" {
		var err error
		if n.Subnet6, err = netip.ParsePrefix(w.Subnet6); err != nil || !n.Subnet6.Addr().Is6() || n.Subnet6.Addr().Is4In6() {
			return Network{}, &RowError{Networks, key, "subnet6", w.Subnet6, "not an IPv6 prefix"}
		}
		if !n.Subnet.Addr().Is4() {
			return Network{}, &RowError{Networks, key, "subnet", w.Subnet, "not IPv4, in a dual-stack row"}
		}
	}
	if n.Gateway6, ok = parseAddr(w.Gateway6); !ok {
		return Network{}, &RowError{Networks, key, "gateway6", w.Gateway6, "not an IP address"}
	}
	return n, nil
}

// PickNetworks returns, per name, the creation that wins.
func PickNetworks(rows []Network) map[string]Network {
	out := map[string]Network{}
	for _, n := range rows {
		if w, ok := out[n.Name]; !ok || n.Earlier(w) {
			out[n.Name] = n
		}
	}
	return out
}
