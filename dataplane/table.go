package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// NetworkSpec describes one VNI for NewTable.
type NetworkSpec struct {
	// VNI is the 24-bit VXLAN network identifier, 1-16777215.
	VNI uint32
	// Subnets of the network; their IPv4 directed broadcast addresses are
	// flooded like 255.255.255.255.
	Subnets []netip.Prefix
	// Endpoints are the local and remote endpoints of the network.
	Endpoints []EndpointSpec
	// FloodVTEPs are extra VTEPs that receive broadcasts and are allowed to
	// send into this VNI even while they have no endpoint in it (a kernel
	// VXLAN peer, say). VTEPs of remote endpoints are added automatically.
	FloodVTEPs []netip.Addr
	// Gateway, if set, is a local port (a device on the host's side, such
	// as the nat and overlay drivers' gateways) that takes every unicast
	// packet to an address outside the network's subnets, and whose
	// packets are forwarded into the network like an endpoint's.
	Gateway *Port
	// GatewayAddrs are the addresses the gateway port holds (the
	// network's gateway address): packets to them go to it, though they
	// are inside the subnets. With PolicyVTEP and no Gateway, the gateway
	// is the policy host's: packets to them go there.
	GatewayAddrs []netip.Addr
	// PolicyVTEP, if set, makes the network an l2tunnel: every unicast
	// packet from a local port, same host included, goes over VXLAN to
	// this VTEP (the policy host), which sends it on; and only that VTEP
	// may send into the network. Unset on the policy host itself.
	PolicyVTEP netip.Addr
	// Policy, if set, makes this host the network's policy host: it
	// applies Policy to every packet of the network it forwards, and sends
	// packets it receives for other hosts on to their VTEPs.
	Policy *Policy
	// Uplink, if set, puts the network on a physical segment through a
	// host NIC (transparent, l2bridge; see uplink.go): packets to addresses
	// no local endpoint has go out of it, to the Subnets directly and to
	// Router otherwise.
	Uplink *Uplink
	// L2Bridge: endpoints use the uplink's MAC on the segment.
	L2Bridge bool
	// Router is the next hop on the segment for addresses off the Subnets.
	Router netip.Addr
	// ClampMSS, if set, lowers the MSS option of TCP SYNs that cross the
	// switch on this network to at most ClampMSS (IPv4; 20 less for
	// IPv6), both ways: 536-65495.
	ClampMSS int
	// Encrypted: every datagram of the network between hosts is sealed
	// (package seal) with the keys of the pair of hosts (Switch.SetKeys),
	// and only sealed datagrams that open are taken (an l2tunnel policy
	// host opens, decides and seals again for the next hop). Its inner
	// MTU is seal.Overhead below the switch's. Not with Uplink, and no
	// kernel VTEPs (FloodVTEPs, or endpoints without Peer) can take part.
	Encrypted bool
	// Services are the network's services with virtual IPs (service.go).
	Services []ServiceSpec
}

// EndpointSpec is one endpoint: a MAC, its addresses, and where it lives:
// exactly one of Port (local) and VTEP (remote) is set.
type EndpointSpec struct {
	MAC   vxlan.MAC
	Addrs []netip.Addr
	Port  *Port
	VTEP  netip.Addr
	// Peer: VTEP runs vxnet, which takes TCP segments whose checksum is
	// left partial (lazy checksums, inside.go); a kernel VTEP does not.
	Peer bool
}

// Table is an immutable snapshot of the forwarding state. Build it with
// NewTable; never modify it after publishing it with Switch.SetTable.
type Table struct {
	vnis    vniTable
	ports   []*portInfo  // indexed by Port.index; nil when the port has no entry
	uplinks [][]*network // indexed by Uplink.index
}

type network struct {
	vni        uint32
	hosts      addrTable[*host]
	vteps      []netip.Addr // remote VTEPs, the flood list, in the order given
	vtepSet    addrTable[bool]
	locals     []*Port
	broadcasts []addrKey
	gateway    *Port
	policyVTEP netip.Addr      // l2tunnel, not the policy host
	policy     *compiledPolicy // l2tunnel, the policy host
	uplink     *Uplink         // transparent, l2bridge
	l2bridge   bool
	router     netip.Addr
	subnets    []netip.Prefix
	// inside are the subnets in key form: a packet to an address in them
	// stays on the network, never through the gateway.
	inside       []prefixKey
	hasV4, hasV6 bool // the families of the subnets
	// gatewayV4Only: the gateway has addresses, none IPv6 (a dual-stack
	// network whose host gateway carries IPv4 alone): IPv6 bound outside
	// has no way out.
	gatewayV4Only bool
	// gw4, gw6: the gateway's addresses (GatewayAddrs), the source of the
	// ICMP errors the switch sends the network's containers.
	gw4, gw6 netip.Addr
	clampMSS int  // NetworkSpec.ClampMSS
	sealed   bool // NetworkSpec.Encrypted
	overhead int  // bytes sealing adds to each datagram (0 unless sealed)
	// vips: the services' virtual addresses (service.go); hasVIPs says
	// there are any, the one check a packet pays on a network without.
	vips    addrTable[*service]
	hasVIPs bool

	byAddr  map[netip.Addr]*host // used while building only
	vipSet  map[netip.Addr]bool  // used while building only
	vipList []vipEntry           // used while building only
}

type host struct {
	mac  vxlan.MAC
	port *Port      // local endpoint, or nil
	vtep netip.Addr // remote endpoint's VTEP
	peer bool       // the VTEP runs vxnet (EndpointSpec.Peer)
}

type portInfo struct {
	net *network
	mac vxlan.MAC
}

// NewTable validates specs and builds a snapshot. A network or an
// endpoint that fails a check is left out and the rest is built: one bad
// row (from another host, say) never stops a table. So is a network whose
// VNI an earlier one has. The table is never nil; err, when not nil, joins
// one error per network or endpoint left out, each naming the network, the
// field and the value. Callers that want all or nothing (a static
// configuration) treat any error as fatal.
func NewTable(specs []NetworkSpec) (*Table, error) {
	t := &Table{}
	seen := make(map[uint32]bool, len(specs))
	nets := make([]*network, 0, len(specs))
	var errs []error
	for i := range specs {
		if seen[specs[i].VNI] {
			errs = append(errs, fmt.Errorf("dataplane: network VNI %d: listed twice; the second left out", specs[i].VNI))
			continue
		}
		n, eperrs, err := t.addNetwork(&specs[i])
		errs = append(errs, eperrs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w; network left out", err))
			continue
		}
		seen[specs[i].VNI] = true
		nets = append(nets, n)
	}
	t.vnis = newVNITable(nets)
	return t, errors.Join(errs...)
}

// addNetwork checks s and adds it to t, or leaves t as it was and returns
// err. An endpoint that fails its checks is left out, and its error is in
// eperrs.
func (t *Table) addNetwork(s *NetworkSpec) (n *network, eperrs []error, err error) {
	if err := vxlan.ValidVNI(s.VNI); err != nil {
		return nil, nil, fmt.Errorf("dataplane: network VNI: %w", err)
	}
	n = &network{vni: s.VNI, byAddr: make(map[netip.Addr]*host)}
	for _, p := range s.Subnets {
		if !p.IsValid() {
			return nil, nil, fmt.Errorf("dataplane: network %d: Subnets: invalid prefix %v", s.VNI, p)
		}
		if p.Addr().Is4() && p.Bits() < 31 {
			n.broadcasts = append(n.broadcasts, keyOf(tun.BroadcastOf(p)))
		}
	}
	for _, v := range s.FloodVTEPs {
		if err := n.addVTEP(v); err != nil {
			return nil, nil, fmt.Errorf("dataplane: network %d: FloodVTEPs: %w", s.VNI, err)
		}
	}
	if s.PolicyVTEP.IsValid() && s.Policy != nil {
		return nil, nil, fmt.Errorf("dataplane: network %d: PolicyVTEP and Policy: a host either sends to the policy host or is it", s.VNI)
	}
	if s.PolicyVTEP.IsValid() {
		if err := n.addVTEP(s.PolicyVTEP); err != nil {
			return nil, nil, fmt.Errorf("dataplane: network %d: PolicyVTEP: %w", s.VNI, err)
		}
		n.policyVTEP = s.PolicyVTEP.Unmap()
	}
	n.policy = compilePolicy(s.Policy)
	if s.Uplink != nil {
		if n.policyVTEP.IsValid() || n.policy != nil || s.Gateway != nil || len(s.FloodVTEPs) > 0 {
			return nil, nil, fmt.Errorf("dataplane: network %d: Uplink: a network on an uplink has no gateway, policy or VTEPs", s.VNI)
		}
		if s.Router.IsValid() && !slices.ContainsFunc(s.Subnets, func(p netip.Prefix) bool { return p.Addr().Is6() == s.Router.Unmap().Is6() }) {
			return nil, nil, fmt.Errorf("dataplane: network %d: Router %v: no subnet of its family", s.VNI, s.Router)
		}
	}
	if s.ClampMSS != 0 && (s.ClampMSS < 536 || s.ClampMSS > 65495) {
		return nil, nil, fmt.Errorf("dataplane: network %d: ClampMSS %d: want 536-65495", s.VNI, s.ClampMSS)
	}
	n.clampMSS = s.ClampMSS
	if s.Encrypted {
		switch {
		case s.Uplink != nil:
			return nil, nil, fmt.Errorf("dataplane: network %d: Encrypted: a network on an uplink has no VTEPs to encrypt to", s.VNI)
		case len(s.FloodVTEPs) > 0:
			return nil, nil, fmt.Errorf("dataplane: network %d: Encrypted: FloodVTEPs %v: kernel VTEPs cannot open sealed datagrams", s.VNI, s.FloodVTEPs)
		}
		for _, e := range s.Endpoints {
			if e.VTEP.IsValid() && !e.Peer {
				return nil, nil, fmt.Errorf("dataplane: network %d: Encrypted: endpoint %s on VTEP %s is not a vxnet peer (Peer): a kernel VTEP cannot open sealed datagrams", s.VNI, e.MAC, e.VTEP)
			}
		}
		n.sealed, n.overhead = true, seal.Overhead
	}
	if s.Gateway != nil {
		if err := t.portFree(s.Gateway); err != nil {
			return nil, nil, fmt.Errorf("dataplane: network %d: Gateway: %w", s.VNI, err)
		}
	}
	// Checked: from here on t changes.
	if s.Uplink != nil {
		n.uplink, n.l2bridge, n.router = s.Uplink, s.L2Bridge, s.Router
		n.subnets = append([]netip.Prefix(nil), s.Subnets...)
		for len(t.uplinks) <= s.Uplink.index {
			t.uplinks = append(t.uplinks, nil)
		}
		t.uplinks[s.Uplink.index] = append(t.uplinks[s.Uplink.index], n)
	}
	if s.Gateway != nil {
		t.addPort(n, s.Gateway, vxlan.GatewayMAC(s.VNI))
		n.gateway = s.Gateway
		gw := &host{mac: vxlan.GatewayMAC(s.VNI), port: s.Gateway}
		n.gatewayV4Only = len(s.GatewayAddrs) > 0
		for _, a := range s.GatewayAddrs {
			if a.IsValid() {
				n.byAddr[a.Unmap()] = gw
				n.gatewayV4Only = n.gatewayV4Only && a.Unmap().Is4()
			}
		}
	}
	for _, a := range s.GatewayAddrs {
		switch a = a.Unmap(); {
		case a.Is4() && !n.gw4.IsValid():
			n.gw4 = a
		case a.Is6() && !n.gw6.IsValid():
			n.gw6 = a
		}
	}
	for _, p := range s.Subnets {
		n.inside = append(n.inside, prefixKeyOf(p))
		n.hasV4, n.hasV6 = n.hasV4 || p.Addr().Is4(), n.hasV6 || p.Addr().Is6()
	}
	if s.Gateway == nil && n.policyVTEP.IsValid() {
		// l2tunnel, not the policy host: the gateway is the policy host's.
		gw := &host{mac: vxlan.GatewayMAC(s.VNI), vtep: n.policyVTEP}
		for _, a := range s.GatewayAddrs {
			if a.IsValid() {
				n.byAddr[a.Unmap()] = gw
			}
		}
	}
	for i := range s.Endpoints {
		if err := t.addEndpoint(n, &s.Endpoints[i]); err != nil {
			eperrs = append(eperrs, fmt.Errorf("dataplane: network %d: endpoint %v: %w; endpoint left out", s.VNI, s.Endpoints[i].MAC, err))
		}
	}
	eperrs = append(eperrs, n.addServices(s.Services)...)
	n.freeze()
	return n, eperrs, nil
}

// freeze builds the lookup tables once every entry is known.
func (n *network) freeze() {
	n.hosts = newAddrTable[*host](len(n.byAddr))
	for a, h := range n.byAddr {
		n.hosts.put(keyOf(a), h)
	}
	n.vtepSet = newAddrTable[bool](len(n.vteps))
	for _, v := range n.vteps {
		n.vtepSet.put(keyOf(v), true)
	}
	n.byAddr = nil
	n.freezeServices()
}

func (n *network) addVTEP(v netip.Addr) error {
	if !v.IsValid() || v.IsUnspecified() || v.IsMulticast() {
		return fmt.Errorf("VTEP %v is not a unicast address", v)
	}
	v = v.Unmap()
	for _, have := range n.vteps {
		if have == v {
			return nil
		}
	}
	n.vteps = append(n.vteps, v)
	return nil
}

// addEndpoint checks e and adds it to n and t, or leaves both as they
// were and returns why.
func (t *Table) addEndpoint(n *network, e *EndpointSpec) error {
	if e.MAC.IsZero() || e.MAC.IsMulticast() {
		return fmt.Errorf("MAC %v is not a unicast address", e.MAC)
	}
	if (e.Port != nil) == e.VTEP.IsValid() {
		return fmt.Errorf("exactly one of Port and VTEP must be set")
	}
	if len(e.Addrs) == 0 {
		return fmt.Errorf("Addrs: none given")
	}
	for i, a := range e.Addrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("Addrs: %v is not a unicast address", a)
		}
		a = a.Unmap()
		if _, dup := n.byAddr[a]; dup {
			return fmt.Errorf("Addrs: %v already belongs to another endpoint", a)
		}
		for _, b := range e.Addrs[:i] {
			if b.Unmap() == a {
				return fmt.Errorf("Addrs: %v listed twice", a)
			}
		}
	}
	if e.Port != nil {
		if err := t.portFree(e.Port); err != nil {
			return err
		}
	} else if v := e.VTEP; v.IsUnspecified() || v.IsMulticast() {
		return fmt.Errorf("VTEP %v is not a unicast address", v)
	}
	// Checked: from here on n and t change.
	h := &host{mac: e.MAC, port: e.Port, vtep: e.VTEP.Unmap(), peer: e.Peer && e.Port == nil}
	if e.Port != nil {
		t.addPort(n, e.Port, e.MAC)
		n.locals = append(n.locals, e.Port)
	} else {
		n.addVTEP(e.VTEP)
	}
	for _, a := range e.Addrs {
		n.byAddr[a.Unmap()] = h
	}
	return nil
}

// portFree reports an error when p is in a network of t already.
func (t *Table) portFree(p *Port) error {
	if p.index < len(t.ports) && t.ports[p.index] != nil {
		return fmt.Errorf("Port %s: already attached to network %d", p.name, t.ports[p.index].net.vni)
	}
	return nil
}

// addPort puts p, checked with portFree, in network n.
func (t *Table) addPort(n *network, p *Port, mac vxlan.MAC) {
	for len(t.ports) <= p.index {
		t.ports = append(t.ports, nil)
	}
	t.ports[p.index] = &portInfo{net: n, mac: mac}
}

// uplinkNets lists the networks on an uplink.
func (t *Table) uplinkNets(u *Uplink) []*network {
	if u.index < len(t.uplinks) {
		return t.uplinks[u.index]
	}
	return nil
}

// port returns what the table says of a local port, or nil.
func (t *Table) port(p *Port) *portInfo {
	if p.index < len(t.ports) {
		return t.ports[p.index]
	}
	return nil
}
