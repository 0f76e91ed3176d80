package tables

import (
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dhcp"
)

// Endpoint is a container's attachment to a network, as its host writes
// it. State and Reason are set only in the host's own record of an
// endpoint it took out of service (never in the table).
type Endpoint struct {
	Name     string
	Network  string
	Host     string     // the host it runs on
	VTEP     netip.Addr // that host's underlay address
	MAC      vxlan.MAC  // its MAC on the network
	Addrs    []netip.Prefix
	Aliases  []string
	Service  string
	Netns    string   // on its host; "" for an HNS endpoint (Windows)
	Ifname   string   // inside the namespace
	Publish  []string // HOSTPORT:CONTAINERPORT/PROTO (nat)
	SRVPorts []string // NAME=PORT/PROTO
	DHCP     *DHCP    // the lease, when a DHCP server gave the address
	State    string   // StateDown, or "" in service
	Reason   string   // why it is down
	// Labels are the runtime's notes on the endpoint (which container of
	// which runtime it belongs to).
	Labels map[string]string
	// Handover: the device was made in the host's namespace for the
	// runtime to move into the container (Netns is where it goes) and
	// configure; it outlives the agent, and Ifname is its name there once
	// moved.
	Handover bool
	// MTU of its device, when not the agent's.
	MTU int
	// Reserved: the address is a reservation (see hoststate.State's
	// Reserved), released by its runtime rather than with the endpoint.
	Reserved bool
	// Assigned: the network's own authority (Docker swarm's manager) gave
	// the address; vxnet's IPAM holds nothing for it.
	Assigned bool
	// HNSNamespace (Windows): the HNS namespace the endpoint is attached
	// to, when vxnet attaches it.
	HNSNamespace string
	// Mesh: not a container but the routing mesh's address of its host
	// on the network: connections to a service's published port on that
	// host reach the VIP from it, and the replies come back to it. Its
	// host's gateway takes it.
	Mesh bool
}

// StateDown is Endpoint.State of an endpoint its host took out of service.
const StateDown = "down"

// StateReaddressing is Endpoint.State of an endpoint whose host lost some
// of its addresses and waits for new ones: its row no longer lists them,
// and no host forwards to it or answers its name meanwhile.
const StateReaddressing = "readdressing"

// DHCP is an endpoint's lease from the physical segment's DHCP server.
type DHCP struct {
	Uplink   string    `json:"uplink,omitempty"` // the NIC the lease was taken on
	Server   string    `json:"server"`
	Router   string    `json:"router,omitempty"`
	Seconds  int64     `json:"seconds"`  // lease time
	Acquired time.Time `json:"acquired"` // last granted or renewed
}

// LeaseRecord is the record of a lease taken on the NIC called uplink.
func LeaseRecord(uplink string, l dhcp.Lease) *DHCP {
	d := &DHCP{Uplink: uplink, Server: l.Server.String(), Seconds: int64(l.Time / time.Second), Acquired: l.Got.UTC().Truncate(time.Second)}
	if l.Router.IsValid() {
		d.Router = l.Router.String()
	}
	return d
}

// Lease is the lease an endpoint's record keeps, for its DHCP client.
func (e Endpoint) Lease() (dhcp.Lease, error) {
	if e.DHCP == nil || len(e.Addrs) == 0 {
		return dhcp.Lease{}, errors.New("no DHCP lease")
	}
	server, err := netip.ParseAddr(e.DHCP.Server)
	if err != nil {
		return dhcp.Lease{}, err
	}
	l := dhcp.Lease{Addr: e.Addrs[0], Server: server, Time: time.Duration(e.DHCP.Seconds) * time.Second, Got: e.DHCP.Acquired}
	if e.DHCP.Router != "" {
		if l.Router, err = netip.ParseAddr(e.DHCP.Router); err != nil {
			return dhcp.Lease{}, err
		}
	}
	return l, nil
}

// EndpointKey is the key of an endpoint in Endpoints.
func EndpointKey(network, name string) string { return network + "/" + name }

// Key is e's key in Endpoints.
func (e Endpoint) Key() string { return EndpointKey(e.Network, e.Name) }

// Addr is e's first address, invalid when it has none.
func (e Endpoint) Addr() netip.Addr {
	if len(e.Addrs) == 0 {
		return netip.Addr{}
	}
	return e.Addrs[0].Addr()
}

// endpointWire is an Endpoint as hosts send it and the state file keeps it.
type endpointWire struct {
	V         int               `json:"v,omitempty"`
	Name      string            `json:"name"`
	Network   string            `json:"network"`
	Host      string            `json:"host"`
	VTEP      string            `json:"vtep"`
	MAC       string            `json:"mac"`
	Addresses []string          `json:"addresses"` // ip/prefix
	Aliases   []string          `json:"aliases,omitempty"`
	Service   string            `json:"service,omitempty"`
	Netns     string            `json:"netns,omitempty"`
	Ifname    string            `json:"ifname,omitempty"`
	Publish   []string          `json:"publish,omitempty"`
	SRVPorts  []string          `json:"srvPorts,omitempty"`
	DHCP      *DHCP             `json:"dhcp,omitempty"`
	State     string            `json:"state,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Handover  bool              `json:"handover,omitempty"`
	Reserved  bool              `json:"reserved,omitempty"`
	Assigned  bool              `json:"assigned,omitempty"`
	HNSNS     string            `json:"hnsNamespace,omitempty"`
	MTU       int               `json:"mtu,omitempty"`
	Mesh      bool              `json:"mesh,omitempty"`
}

// MarshalJSON writes the wire form.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	w := endpointWire{V: 1, Name: e.Name, Network: e.Network, Host: e.Host, VTEP: addrText(e.VTEP),
		Addresses: make([]string, len(e.Addrs)), Aliases: e.Aliases, Service: e.Service, Netns: e.Netns, Ifname: e.Ifname,
		Publish: e.Publish, SRVPorts: e.SRVPorts, DHCP: e.DHCP, State: e.State, Reason: e.Reason, Labels: e.Labels, Handover: e.Handover, Reserved: e.Reserved, Assigned: e.Assigned, HNSNS: e.HNSNamespace, MTU: e.MTU, Mesh: e.Mesh}
	if !e.MAC.IsZero() {
		w.MAC = e.MAC.String()
	}
	for i, p := range e.Addrs {
		w.Addresses[i] = p.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the wire form, checking every field it parses.
func (e *Endpoint) UnmarshalJSON(b []byte) error {
	var w endpointWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	key := EndpointKey(w.Network, w.Name)
	if err := checkVersion(Endpoints, key, w.V); err != nil {
		return err
	}
	v := Endpoint{Name: w.Name, Network: w.Network, Host: w.Host, Aliases: w.Aliases, Service: w.Service, Netns: w.Netns,
		Ifname: w.Ifname, Publish: w.Publish, SRVPorts: w.SRVPorts, DHCP: w.DHCP, State: w.State, Reason: w.Reason, Labels: w.Labels, Handover: w.Handover, Reserved: w.Reserved, Assigned: w.Assigned, HNSNamespace: w.HNSNS, MTU: w.MTU, Mesh: w.Mesh}
	var ok bool
	if v.VTEP, ok = parseAddr(w.VTEP); !ok {
		return &RowError{Endpoints, key, "vtep", w.VTEP, "not an IP address"}
	}
	if w.MAC != "" { // a record of an endpoint taken down keeps none
		var err error
		if v.MAC, err = vxlan.ParseMAC(w.MAC); err != nil {
			return &RowError{Endpoints, key, "mac", w.MAC, "not a MAC address"}
		}
	}
	for _, s := range w.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return &RowError{Endpoints, key, "addresses", s, "not an address with its prefix length"}
		}
		v.Addrs = append(v.Addrs, p)
	}
	*e = v
	return nil
}

// Encode is e's wire form.
func (e Endpoint) Encode() []byte {
	b, _ := e.MarshalJSON() // plain fields: cannot fail
	return b
}

// DecodeEndpoint reads the row at key of Endpoints, written by owner: the
// key must be the row's network/name and owner its host.
func DecodeEndpoint(key, owner string, value []byte) (Endpoint, error) {
	var e Endpoint
	if err := json.Unmarshal(value, &e); err != nil {
		var re *RowError
		if errors.As(err, &re) {
			return Endpoint{}, re
		}
		return Endpoint{}, &RowError{Table: Endpoints, Key: key, Reason: "not an endpoint row: " + err.Error()}
	}
	if e.Key() != key {
		return Endpoint{}, &RowError{Endpoints, key, "network/name", e.Key(), "does not match the key"}
	}
	if e.MAC.IsZero() {
		return Endpoint{}, &RowError{Endpoints, key, "mac", "", "missing"}
	}
	if e.Host != owner {
		return Endpoint{}, &RowError{Endpoints, key, "host", e.Host, "is not the row's writer " + owner}
	}
	return e, nil
}
