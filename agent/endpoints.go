package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// newEndpoint is an endpoint create request, checked: its network, the
// network's driver, and the ports it publishes.
type newEndpoint struct {
	req   api.EndpointCreate
	key   string
	n     tables.Network
	d     driver.Driver
	ports []driver.Publish
	// v4Only: an HNS endpoint (Windows), which carries one address: on
	// a dual-stack network, its IPv4 one.
	v4Only bool
	mac    vxlan.MAC // asked for; zero: derived from the address
}

// CreateEndpoint attaches a namespace of this host to a network, in four
// steps: check the request (its name held while being created), reserve
// the endpoint and its host ports, acquire its address, commit (device,
// port, row, state file).
func (a *Agent) CreateEndpoint(ctx context.Context, req api.EndpointCreate) (api.Endpoint, error) {
	if req.Network == "" {
		return api.Endpoint{}, apiError(api.CodeBadRequest, "network", "network is required: the network the endpoint joins")
	}
	if _, ok := a.network(req.Network); !ok {
		return api.Endpoint{}, apiError(api.CodeNotFound, "network", "no network %q", req.Network)
	}
	if err := checkEndpointCreate(&req); err != nil { // names.go
		return api.Endpoint{}, err
	}
	unclaim, err := a.claimEndpointName(req.Network, req.Name) // names.go: unique in any case
	if err != nil {
		return api.Endpoint{}, err
	}
	defer unclaim()
	if err := a.aliasesFree(req.Network, req.Aliases); err != nil {
		return api.Endpoint{}, err
	}
	if err := a.serviceFree(req.Network, req.Service); err != nil {
		return api.Endpoint{}, err
	}
	ne, err := a.checkEndpoint(req)
	if err != nil {
		return api.Endpoint{}, err
	}
	unreserve, err := a.reserveEndpoint(ne)
	if err != nil {
		return api.Endpoint{}, err
	}
	defer unreserve()
	ep, err := a.acquireAddress(ctx, ne)
	if err != nil {
		return api.Endpoint{}, err
	}
	if err := a.commitEndpoint(ep); err != nil {
		return api.Endpoint{}, err
	}
	return apiEndpoint(ep), nil
}

// endpointNetwork returns network and its driver, if endpoints of this
// host may join it.
func (a *Agent) endpointNetwork(network string) (tables.Network, driver.Driver, error) {
	n, ok := a.network(network)
	if !ok {
		return n, nil, apiError(api.CodeNotFound, "network", "no network %q", network)
	}
	d, err := driver.Get(n.Driver)
	if err != nil {
		return n, nil, apiError(api.CodeConflict, "network", "network %q: %v", n.Name, err)
	}
	if d.Scope() == driver.ScopeLocal && n.Creator != a.cfg.Name {
		return n, nil, apiError(api.CodeConflict, "network", "network %q is a %s network of host %s: endpoints attach there only", n.Name, n.Driver, n.Creator)
	}
	if up, err := d.Uplink(plan.DriverNetwork(n)); err == nil && up != "" && a.hnsProg == nil {
		// The network is the cluster's; its uplink is a NIC each host
		// must have. Without it an endpoint here would be up and cut off.
		if _, err := net.InterfaceByName(up); err != nil {
			return n, nil, apiError(api.CodeConflict, "network", "network %q: its uplink %q is not a NIC of this host (%v): attach the endpoint on a host that has it, or make the network with -o uplink= naming a NIC every host has", n.Name, up, err)
		}
	}
	return n, d, nil
}

// checkEndpoint checks a request, its names checked, against its network
// and driver. Errors name the field.
func (a *Agent) checkEndpoint(req api.EndpointCreate) (newEndpoint, error) {
	n, d, err := a.endpointNetwork(req.Network)
	if err != nil {
		return newEndpoint{}, err
	}
	ne := newEndpoint{key: tables.EndpointKey(req.Network, req.Name), n: n, d: d}
	ne.v4Only = req.Netns == "" && a.hnsProg != nil && !req.Handover // HNS programs one address
	if ne.ports, req.Publish, err = parsePublish(n, d, req.Publish); err != nil {
		return newEndpoint{}, err
	}
	hnsOnly := req.Netns == "" && a.hnsProg != nil && !req.Handover // Windows: the runtime attaches the container to the HNS endpoint
	switch {
	case req.Handover && req.Netns == "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns is required with handover: where the runtime will move the device")
	case req.Handover && req.Ifname == "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "ifname", "ifname is required with handover: the device's name on this host until the runtime moves it")
	case req.Handover && !strings.HasPrefix(req.Ifname, api.HandoverPrefix):
		return newEndpoint{}, apiError(api.CodeBadRequest, "ifname", "ifname %q: a handover device's name starts with %q", req.Ifname, api.HandoverPrefix)
	case req.Handover && a.hnsProg != nil:
		return newEndpoint{}, apiError(api.CodeBadRequest, "handover", "handover: on Windows the runtime attaches containers to HNS endpoints; leave netns empty")
	case req.Netns == "" && !hnsOnly:
		return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns is required: the container's network namespace (a name from `ip netns`, or a path such as /proc/PID/ns/net)")
	case req.Netns == "." || req.Netns == "..":
		return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns %q: want a name from `ip netns` or a path such as /proc/PID/ns/net", req.Netns)
	}
	least := 576
	if (n.Subnet6.IsValid() && !ne.v4Only) || n.Subnet.Addr().Is6() {
		least = 1280 // IPv6's minimum link MTU
	}
	most := plan.NetworkMTU(a.cfg.MTU, n.Options)
	if req.MTU == 0 && least == 1280 && most < least {
		// The endpoint would take this host's MTU for the network, which
		// IPv6 cannot run on: the kernel refuses the device's address.
		return newEndpoint{}, apiError(api.CodeBadRequest, "mtu", "network %q has IPv6, whose links need an MTU of at least 1280, and this host's MTU for it is %d (its --mtu %d%s): start the agent with a larger --mtu", n.Name, most, a.cfg.MTU, map[bool]string{true: ", less what sealing takes on an encrypted network"}[most < a.cfg.MTU])
	}
	if req.MTU != 0 && (req.MTU < least || req.MTU > most) {
		why := "this host's MTU: its --mtu, or by default its underlay interface's less VXLAN's 50 bytes"
		if most < a.cfg.MTU {
			why = fmt.Sprintf("this host's MTU %d, less what sealing takes on the encrypted network %s", a.cfg.MTU, n.Name)
		}
		if req.MTU < least && least == 1280 {
			why = "IPv6's minimum link MTU, on a network with IPv6"
		}
		return newEndpoint{}, apiError(api.CodeBadRequest, "mtu", "mtu %d: want %d to %d (%s)", req.MTU, least, most, why)
	}
	if req.IP6 != "" && !n.Subnet6.IsValid() && n.Subnet.Addr().Is6() {
		// An IPv6-only network: its one subnet is IPv6, and the address
		// asked for in ip6 (as a runtime asks for any IPv6 one) is its ip.
		if req.IP != "" {
			return newEndpoint{}, apiError(api.CodeBadRequest, "ip6", "ip6 %q: network %q has one subnet, IPv6 (%v), and ip %q names its address already", req.IP6, n.Name, n.Subnet, req.IP)
		}
		req.IP, req.IP6 = req.IP6, ""
	}
	switch {
	case req.Reserved && req.IP == "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "ip", "ip is required with reserved: the address reserved for the endpoint")
	case req.Assigned && req.IP == "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "ip", "ip is required with assigned: the address %s gave the endpoint", orVxnet(n.AssignedBy))
	case req.Assigned && req.Reserved:
		return newEndpoint{}, apiError(api.CodeBadRequest, "assigned", "assigned and reserved exclude each other: an address is either reserved from vxnet or assigned by the network's own authority")
	case req.MAC != "" && d.LeasesByDHCP(plan.DriverNetwork(n)):
		return newEndpoint{}, apiError(api.CodeBadRequest, "mac", "mac %q: network %q leases addresses from the segment's DHCP server, which knows the endpoint by a MAC of vxnet's", req.MAC, n.Name)
	case req.HNSNamespace != "" && !hnsOnly:
		return newEndpoint{}, apiError(api.CodeBadRequest, "hnsNamespace", "hnsNamespace %q: only an HNS endpoint (Windows, no netns) is attached to an HNS namespace", req.HNSNamespace)
	case req.IP6 != "" && !n.Subnet6.IsValid():
		return newEndpoint{}, apiError(api.CodeBadRequest, "ip6", "ip6 %q: network %q has no IPv6 subnet (a dual-stack network: network create --subnet V4 --subnet V6)", req.IP6, n.Name)
	case hnsOnly && req.IP6 != "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "ip6", "ip6 %q: HNS endpoints (Windows) carry IPv4 alone for now", req.IP6)
	case req.Assigned && n.AssignedBy == "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "assigned", "assigned: network %q gets its addresses from vxnet, not from elsewhere; leave assigned out", n.Name)
	case !req.Assigned && n.AssignedBy != "":
		return newEndpoint{}, apiError(api.CodeBadRequest, "network", "network %q: its addresses are assigned by %s, not vxnet: attach containers through it (docker run --network %s, docker service create --network %s)", n.Name, n.AssignedBy, n.Name, n.Name)
	}
	if !hnsOnly && !req.Handover {
		fi, err := os.Stat(netnsPath(req.Netns))
		if errors.Is(err, fs.ErrNotExist) && namedNetns(req.Netns) {
			return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns %q: no such namespace (ip netns add %s makes one; a runtime's is a path such as /proc/PID/ns/net)", req.Netns, req.Netns)
		}
		if err != nil {
			return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns %q: %v", req.Netns, err)
		}
		if self, err := os.Stat("/proc/self/ns/net"); err == nil && os.SameFile(fi, self) {
			return newEndpoint{}, apiError(api.CodeBadRequest, "netns", "netns %q is this host's own network namespace, the agent's: a container needs one of its own (ip netns add NAME)", req.Netns)
		}
		if req.Ifname == "" {
			req.Ifname = "eth0"
		}
	}
	if req.MAC != "" {
		m, err := vxlan.ParseMAC(req.MAC)
		switch {
		case err != nil:
			return newEndpoint{}, apiError(api.CodeBadRequest, "mac", "mac %q is not a MAC address: want six hex bytes, such as 02:42:0a:00:09:07", req.MAC)
		case m[0]&1 != 0 || m == (vxlan.MAC{}):
			return newEndpoint{}, apiError(api.CodeBadRequest, "mac", "mac %q is not a unicast address", req.MAC)
		case m[0] == 0x02 && m[1] == 0x76 && m[2] == 0x67:
			return newEndpoint{}, apiError(api.CodeBadRequest, "mac", "mac %q: 02:76:67:… are vxnet's gateways'", req.MAC)
		}
		ne.mac = m
	}
	if len(req.Ifname) > tun.MaxNameLen {
		return newEndpoint{}, apiError(api.CodeBadRequest, "ifname", "ifname %q is longer than %d characters", req.Ifname, tun.MaxNameLen)
	}
	ne.req = req
	return ne, nil
}

// reserveEndpoint marks the endpoint as being created and reserves its
// host ports, under one lock, so that two endpoints created at once cannot
// both take one; undo gives them back (the endpoint's record holds them
// once made).
func (a *Agent) reserveEndpoint(ne newEndpoint) (undo func(), err error) {
	key := ne.key
	if err := a.heldByDownHost(ne.req.Network, ne.req.Name); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.left {
		return nil, apiError(api.CodeConflict, "network", "this host is leaving the cluster (vxnet cluster leave)")
	}
	if d, down := a.down[key]; down {
		return nil, apiError(api.CodeConflict, "name", "endpoint %q on network %q is down here (%s): remove it with endpoint rm first", ne.req.Name, ne.req.Network, d.Reason)
	}
	_, busy := a.pending[key]
	_, local := a.local[key]
	if busy || local {
		return nil, apiError(api.CodeConflict, "name", "endpoint %q exists on network %q", ne.req.Name, ne.req.Network)
	}
	if err := a.portsFreeLocked(ne.ports, key); err != nil {
		return nil, err
	}
	if owner, exists := a.owners[key]; exists {
		return nil, apiError(api.CodeConflict, "name", "endpoint %q exists on network %q, on host %s", ne.req.Name, ne.req.Network, owner)
	}
	a.pending[key] = struct{}{}
	for _, p := range ne.ports {
		a.ports[portKey(p)] = key
	}
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.pending, key)
		for _, p := range ne.ports {
			if a.ports[portKey(p)] == key {
				delete(a.ports, portKey(p))
			}
		}
	}, nil
}

// downHoldsName is how long a host that went down keeps its endpoints'
// names from others: long enough for a restart or an upgrade, short
// enough for a container to move to another host after a host is lost.
// The fast profile (tests, small clusters) notices and forgets sooner.
const (
	downHoldsName     = 10 * time.Minute
	downHoldsNameFast = 20 * time.Second // under half the fast reap time (away-long restarts differ)
)

// heldByDownHost refuses an endpoint name of network that an endpoint of
// a host down for less than downHoldsName holds (in any case): it comes
// back with its host, which would take the name back then (the first
// claim wins).
func (a *Agent) heldByDownHost(network, name string) error {
	for _, r := range a.downRows() {
		n, ep, _ := strings.Cut(r.Key, "/")
		if n != network || !names.Same(ep, name) || !r.held {
			continue
		}
		same := ""
		if ep != name {
			same = fmt.Sprintf(" (the same name to DNS as %q)", name)
		}
		return apiError(api.CodeBusy, "name", "endpoint %q%s on network %q is host %s's, which is down (since %s): a host down less than %v keeps its endpoints' names, in case it is restarting; once it is back, endpoint rm there, or take the name here after %s (if %s comes back later, its endpoint, claimed first, takes the name back); if it will not come back, vxnet cluster forget %s frees its names now",
			ep, same, network, r.Owner, r.since.UTC().Format(time.RFC3339), a.nameHold(), r.until.UTC().Format(time.RFC3339), r.Owner, r.Owner)
	}
	return nil
}

// downRow is an endpoint row of a host that is down, which the tables
// keep hidden for its return: since when the host is down, and until
// when (and whether still) its name is held.
type downRow struct {
	kvs.Entry
	since, until time.Time
	held         bool
}

// downRows are the endpoint rows of the other hosts that are down.
func (a *Agent) downRows() []downRow {
	down := a.kv.Down()
	if len(down) == 0 {
		return nil
	}
	hold := a.nameHold()
	var out []downRow
	for _, e := range a.kv.Hidden(tables.Endpoints) {
		since, ok := down[e.Owner]
		if !ok || e.Owner == a.cfg.Name {
			continue
		}
		until, held := namesHeldUntil(since, hold)
		out = append(out, downRow{e, since, until, held})
	}
	return out
}

// caseVariant returns the name of an endpoint of network, on any host,
// whose name is name in another letter case, or "".
func (a *Agent) caseVariant(network, name string) string {
	variant := func(key string) string {
		n, ep, _ := strings.Cut(key, "/")
		if n == network && ep != name && names.Same(ep, name) {
			return ep
		}
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.owners {
		if ep := variant(key); ep != "" {
			return ep
		}
	}
	for key := range a.down {
		if ep := variant(key); ep != "" {
			return ep
		}
	}
	return ""
}

// namesHeldUntil is until when a host down since since keeps its
// endpoints' names here, and whether that is still ahead.
func namesHeldUntil(since time.Time, hold time.Duration) (time.Time, bool) {
	until := since.Add(hold)
	return until, time.Now().Before(until)
}

// nameHold is how long a down host keeps its endpoints' names here.
func (a *Agent) nameHold() time.Duration {
	if a.cfg.Profile == "fast" {
		return downHoldsNameFast
	}
	return downHoldsName
}

// acquireAddress gets the endpoint's address — from the segment's DHCP
// server, as asked for, or the next free one — and returns its record.
func (a *Agent) acquireAddress(ctx context.Context, ne newEndpoint) (tables.Endpoint, error) {
	req, n := ne.req, ne.n
	ep := tables.Endpoint{Name: req.Name, Network: n.Name, Host: a.cfg.Name, VTEP: a.vtep, Aliases: req.Aliases, Service: req.Service,
		Netns: req.Netns, Ifname: req.Ifname, Publish: req.Publish, SRVPorts: req.SRVPorts, Labels: req.Labels, Handover: req.Handover, MTU: req.MTU,
		HNSNamespace: req.HNSNamespace}
	if most := plan.NetworkMTU(a.cfg.MTU, n.Options); ep.MTU == 0 && most < a.cfg.MTU {
		ep.MTU = most // an encrypted network's: sealing takes its bytes
	}
	var addr netip.Addr
	switch {
	case ne.d.LeasesByDHCP(plan.DriverNetwork(n)):
		if req.IP != "" {
			return ep, apiError(api.CodeBadRequest, "ip", "ip %q: network %q leases addresses from the segment's DHCP server", req.IP, n.Name)
		}
		l, rec, err := a.leaseDHCP(ctx, n, req.Name)
		if err != nil {
			return ep, apiError(api.CodeConflict, "network", "network %q: %v", n.Name, err)
		}
		ep.Addrs, ep.MAC, ep.DHCP = []netip.Prefix{l.Addr}, vxlan.DHCPMAC(n.Name, req.Name), rec
		return ep, nil
	case req.IP != "":
		var err error
		if addr, err = netip.ParseAddr(req.IP); err != nil {
			return ep, apiError(api.CodeBadRequest, "ip", "ip %q is not an IP address", req.IP)
		}
		if req.Assigned {
			if err := a.checkAssigned(n, addr); err != nil {
				return ep, err
			}
			ep.Assigned = true
			break
		}
		if req.Reserved {
			if n.Subnet.IsValid() && addr.Is4() != n.Subnet.Addr().Is4() {
				return ep, apiError(api.CodeBadRequest, "ip", "ip %q is not of subnet %s's family", req.IP, n.Subnet)
			}
			if !a.takeReservation(n.Name, addr, ne.key) {
				return ep, apiError(api.CodeConflict, "ip", "ip %q is not reserved on this host for network %q, or another endpoint took it", req.IP, n.Name)
			}
			ep.Reserved = true
			break
		}
		if err := a.ipam.AllocateStatic(n.Name, addr); err != nil {
			return ep, a.addressErr("ip", n.Name, addr, err)
		}
	default:
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		if addr, err = a.ipam.Allocate(actx, n.Name); err != nil {
			return ep, fromIPAM(err)
		}
	}
	ep.Addrs, ep.MAC = []netip.Prefix{netip.PrefixFrom(addr, n.Subnet.Bits())}, vxlan.StableMAC(addr)
	if !ne.mac.IsZero() {
		// vxnet gives each address of the subnet a MAC of its own,
		// 02:42 and the address: one of another address's would be a
		// second endpoint's when that address is handed out.
		if derived := netip.AddrFrom4([4]byte(ne.mac[2:])); ne.mac != ep.MAC && ne.mac[0] == 0x02 && ne.mac[1] == 0x42 && n.Subnet.Contains(derived) {
			a.releaseAddresses(ne.key, ep)
			return ep, apiError(api.CodeBadRequest, "mac", "mac %s is the MAC vxnet gives address %s of network %q (02:42 and the address): pick one that is not 02:42 followed by an address of %s, or leave mac out", ne.mac, derived, n.Name, n.Subnet)
		}
		if other := a.macHolder(n.Name, ne.mac, ne.key); other != "" {
			a.releaseAddresses(ne.key, ep)
			return ep, apiError(api.CodeConflict, "mac", "mac %s on network %q is endpoint %s's", ne.mac, n.Name, other)
		}
		ep.MAC = ne.mac
	}
	if n.Subnet6.IsValid() && !ne.v4Only {
		p6, err := a.acquireAddress6(ctx, ne, ep.Reserved)
		if err != nil {
			a.releaseAddresses(ne.key, ep)
			return ep, err
		}
		ep.Addrs = append(ep.Addrs, p6)
	}
	return ep, nil
}

// acquireAddress6 gets a dual-stack endpoint's IPv6 address: req.IP6,
// reserved or not as its IPv4 address is, or the next free one.
func (a *Agent) acquireAddress6(ctx context.Context, ne newEndpoint, reserved bool) (netip.Prefix, error) {
	req, n := ne.req, ne.n
	side := n.Name + ipam.V6Suffix
	if req.IP6 == "" {
		if reserved {
			return netip.Prefix{}, apiError(api.CodeBadRequest, "ip6", "ip6 is required with reserved on dual-stack network %q: the IPv6 address reserved for the endpoint", n.Name)
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		addr, err := a.ipam.Allocate(actx, side)
		if err != nil {
			return netip.Prefix{}, fromIPAM(err)
		}
		return netip.PrefixFrom(addr, n.Subnet6.Bits()), nil
	}
	addr, err := netip.ParseAddr(req.IP6)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return netip.Prefix{}, apiError(api.CodeBadRequest, "ip6", "ip6 %q is not an IPv6 address", req.IP6)
	}
	if reserved {
		if !a.takeReservation(n.Name, addr, ne.key) {
			return netip.Prefix{}, apiError(api.CodeConflict, "ip6", "ip6 %q is not reserved on this host for network %q, or another endpoint took it", req.IP6, n.Name)
		}
	} else if err := a.ipam.AllocateStatic(side, addr); err != nil {
		return netip.Prefix{}, a.addressErr("ip6", n.Name, addr, err)
	}
	return netip.PrefixFrom(addr, n.Subnet6.Bits()), nil
}

// commitEndpoint attaches the endpoint and writes its row; on failure the
// address goes back.
func (a *Agent) commitEndpoint(ep tables.Endpoint) error {
	key := ep.Key()
	if err := a.attach(ep); err != nil {
		a.releaseAddresses(key, ep)
		if errors.Is(err, tun.ErrNameTaken) {
			return apiError(api.CodeConflict, "ifname", "ifname %q: namespace %q has a device of that name already (%v): give the endpoint another (--ifname; a runtime's CNI_IFNAME)", ep.Ifname, ep.Netns, err)
		}
		return apiError(api.CodeBadRequest, "netns", "attaching to %q: %v", ep.Netns, err)
	}
	if err := a.put(tables.Endpoints, ep.Key(), ep.Encode()); err != nil {
		a.detach(key)
		a.releaseAddresses(key, ep)
		return err
	}
	// The same name created at the same moment on another host: its row
	// reaches this host within milliseconds; wait that long, so that the
	// one whose claim is later is told now, as an error, rather than
	// taken down after it succeeded.
	if len(a.kv.Node().Members()) > 1 {
		t := time.NewTimer(a.nameSettle)
		<-t.C
	}
	if w, ok := a.kv.Get(tables.Endpoints, key); ok && w.Owner != a.cfg.Name {
		// Another host's endpoint of this name claimed it first: ours
		// must not run.
		a.del(tables.Endpoints, key)
		a.detach(key)
		a.releaseAddresses(key, ep)
		return apiError(api.CodeConflict, "name", "endpoint %q on network %q was created at the same time on host %s, which claimed the name first", ep.Name, ep.Network, w.Owner)
	}
	a.saveEndpoint(ep)
	a.persist()
	a.settled(key)
	a.reconcileNow() // its name resolves here when the call returns
	a.log.Info("endpoint created", "network", ep.Network, "endpoint", ep.Name, "address", ep.Addrs[0].String(), "netns", ep.Netns)
	return nil
}

// RemoveEndpoint detaches an endpoint of this host and releases its
// address.
func (a *Agent) RemoveEndpoint(network, name string) error {
	key := tables.EndpointKey(network, name)
	a.mu.Lock()
	le, ok := a.local[key]
	downEp, down := a.down[key]
	delete(a.down, key)
	// A down endpoint's namespace may keep a resolv.conf of an earlier
	// run (taken down as it was restored): it goes unless an endpoint
	// here still serves that namespace, or one being created may (it
	// writes the file itself).
	nsInUse := len(a.pending) > 0
	for _, other := range a.local {
		nsInUse = nsInUse || down && other.rec.Netns == downEp.Netns
	}
	busy := ok && le.removing
	if ok && !busy {
		le.removing = true
	}
	owner, exists := a.owners[key]
	a.mu.Unlock()
	if ok && !busy {
		le.waitWriters()
	}
	switch {
	case busy:
		return apiError(api.CodeBusy, "name", "endpoint %q on network %q is being removed or readdressed; try again", name, network)
	case down:
		a.forgetEndpoint(key)
		a.persist()
		if !nsInUse {
			removeResolvConf(downEp.Netns)
		}
		if len(downEp.Addrs) > 0 {
			// Down without being taken down (not restored): its
			// addresses are still its own.
			a.releaseAddresses(key, downEp)
		}
	case !ok && exists && owner != a.cfg.Name:
		return apiError(api.CodeConflict, "name", "endpoint %q on network %q lives on host %s: remove it there", name, network, owner)
	case !ok && exists:
		// A row of ours with no endpoint behind it (a crash between two
		// steps): remove the row.
		a.del(tables.Endpoints, key)
		a.persist()
		return nil
	case !ok:
		if _, known := a.network(network); !known {
			return apiError(api.CodeNotFound, "network", "no network %q", network)
		}
		if other := a.caseVariant(network, name); other != "" {
			return apiError(api.CodeNotFound, "name", "no endpoint %q on network %q; there is %q (endpoint names are matched exactly here)", name, network, other)
		}
		return apiError(api.CodeNotFound, "name", "no endpoint %q on network %q", name, network)
	default:
		// The row goes first. A store that cannot take that now fails
		// the call (nothing has changed, the endpoint keeps running; the
		// caller tries again), except etcd for this host's own row,
		// which goes from etcd once it is back.
		if err := a.del(tables.Endpoints, key); err != nil {
			a.mu.Lock()
			le.removing = false
			a.mu.Unlock()
			return fmt.Errorf("removing endpoint %q of network %q: %w", name, network, err)
		}
		a.detach(key)
		// The endpoint leaves the state file before its address is
		// released: a crash in between leaks a lease rather than reusing
		// one.
		a.forgetEndpoint(key)
		a.persist()
		a.releaseAddresses(key, le.rec)
	}
	a.log.Info("endpoint removed", "network", network, "endpoint", name)
	return nil
}

// Endpoints lists every host's endpoints, and this host's endpoints that
// are down (api.StateDown, with the reason), in no particular order.
func (a *Agent) Endpoints() []api.Endpoint {
	a.mu.Lock()
	out := make([]api.Endpoint, 0, len(a.rows)+len(a.down))
	for _, key := range sortedMapKeys(a.rows) {
		out = append(out, apiEndpoint(a.rows[key]))
	}
	for _, key := range sortedMapKeys(a.down) {
		e := apiEndpoint(a.down[key])
		if owner, held := a.owners[key]; strings.HasPrefix(e.Reason, nameTakenPrefix) && !strings.Contains(e.Reason, sameToDNS) && (!held || owner == a.cfg.Name) {
			// The host that took the name has let it go since (its
			// endpoint removed, its state lost).
			e.Reason += "; the name is free again: endpoint rm, then create it anew"
		}
		out = append(out, e)
	}
	a.mu.Unlock()
	return out // the API orders them
}

// DownHostEndpoints lists the endpoints of the hosts this agent sees
// down: the cluster keeps them, hidden from Endpoints, for their host's
// return. Each says since when its host is down, and until when its name
// is held.
func (a *Agent) DownHostEndpoints() []api.Endpoint {
	var out []api.Endpoint
	for _, r := range a.downRows() {
		ep, err := tables.DecodeEndpoint(r.Key, r.Owner, r.Value)
		if err != nil {
			continue // its host would not have it either; logged where rows are read
		}
		x := apiEndpoint(ep)
		x.State = api.StateHostDown
		x.Reason = fmt.Sprintf("host %s is down since %s; ", r.Owner, r.since.UTC().Format(time.RFC3339))
		if r.held {
			x.Reason += "its name is held until " + r.until.UTC().Format(time.RFC3339)
		} else {
			x.Reason += "it is kept for the host's return"
		}
		out = append(out, x)
	}
	return out // the API orders them
}

// apiEndpoint is an endpoint as the API shows it.
func apiEndpoint(e tables.Endpoint) api.Endpoint {
	out := api.Endpoint{Name: e.Name, Network: e.Network, Host: e.Host, Aliases: e.Aliases, Service: e.Service, Netns: e.Netns,
		Ifname: e.Ifname, Publish: e.Publish, SRVPorts: e.SRVPorts, State: e.State, Reason: e.Reason, Labels: e.Labels}
	if e.VTEP.IsValid() {
		out.VTEP = e.VTEP.String()
	}
	if !e.MAC.IsZero() {
		out.MAC = e.MAC.String()
	}
	for _, p := range e.Addrs {
		out.Addresses = append(out.Addresses, p.String())
	}
	if e.DHCP != nil {
		d := api.DHCP(*e.DHCP)
		out.DHCP = &d
	}
	return out
}

// Members lists the live members.
func (a *Agent) Members() []api.Member {
	var out []api.Member
	for _, m := range a.kv.Node().Members() {
		out = append(out, api.Member{Name: m.Name, Addr: m.Addr, VTEP: m.Meta.VTEP, Version: m.Meta.Version, Self: m.Name == a.cfg.Name, HostKey: m.Meta.HostKey, Store: storeName(m.Meta.Store)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DownHosts lists the hosts this agent sees down, by name: when they went,
// how many endpoints they have, and until when those keep their names.
func (a *Agent) DownHosts() []api.DownHost {
	down := a.kv.Down()
	out := make([]api.DownHost, 0, len(down))
	for name, since := range down {
		d := api.DownHost{Name: name, Since: since, EndpointCount: len(a.endpointsOf(name))}
		if until, held := namesHeldUntil(since, a.nameHold()); d.EndpointCount > 0 && held {
			d.NamesHeldUntil = until
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// endpointsOf lists a host's endpoints as this host sees them, as
// NETWORK/NAME: listed for a moment after it went down, then hidden (a
// key may be both while this host's view catches up), rows that do not
// decode too.
func (a *Agent) endpointsOf(host string) []string {
	seen := map[string]bool{}
	for _, e := range a.kv.Hidden(tables.Endpoints) {
		if e.Owner == host {
			seen[e.Key] = true
		}
	}
	a.mu.Lock()
	for key, owner := range a.owners {
		if owner == host {
			seen[key] = true
		}
	}
	a.mu.Unlock()
	return sortedMapKeys(seen)
}

// Store implements api.Backend.
func (a *Agent) Store() api.StoreStatus {
	h := a.kv.Health()
	st := api.StoreStatus{Backend: h.Backend, Up: h.Up, Since: h.Since, Error: h.Error, Endpoints: h.Endpoints, Revision: h.Revision, Rows: a.kv.Stats().Rows}
	if h.Backend == config.StoreEtcd {
		st.Prefix = a.etcdPrefix()
	}
	return st
}

// netnsPath turns a namespace name or path into a path.
// netnsDir holds the namespaces `ip netns add` names.
const netnsDir = "/var/run/netns"

func netnsPath(ns string) string {
	if strings.ContainsRune(ns, '/') {
		return ns
	}
	return netnsDir + "/" + ns
}

// parsePublish reads the ports an endpoint of network n publishes, and
// returns them with their canonical form, as the record keeps them.
// Errors name the field publish.
func parsePublish(n tables.Network, d driver.Driver, publish []string) ([]driver.Publish, []string, error) {
	var ports []driver.Publish
	var canonical []string
	seen := map[string]string{}
	for _, s := range publish {
		p, err := driver.ParsePublish(s)
		if err != nil {
			return nil, nil, apiError(api.CodeBadRequest, "publish", "%v", err)
		}
		if other, dup := seen[portKey(p)]; dup {
			return nil, nil, apiError(api.CodeBadRequest, "publish", "publish %q: host port %d/%s is published twice (also %q)", s, p.HostPort, p.Proto, other)
		}
		seen[portKey(p)] = s
		if !d.Publishes(plan.DriverNetwork(n)) {
			return nil, nil, apiError(api.CodeBadRequest, "publish", "publish %q: network %q publishes no ports (nat networks do, and overlay networks that are not internal)", s, n.Name)
		}
		ports, canonical = append(ports, p), append(canonical, p.String())
	}
	return ports, canonical, nil
}

func portKey(p driver.Publish) string { return fmt.Sprintf("%d/%s", p.HostPort, p.Proto) }

// portsFreeLocked checks that no port of ports is the cluster's own,
// published by a service on every host, or published by another endpoint
// of this host than key. a.mu is held. Errors name the field publish.
func (a *Agent) portsFreeLocked(ports []driver.Publish, key string) error {
	for _, p := range ports {
		if err := a.clusterPortErr(p.String(), p.HostPort, p.Proto); err != nil {
			return err
		}
		if svc := a.servicePortLocked(p); svc != "" {
			return apiError(api.CodeConflict, "publish", "publish %q: host port %d/%s is published on every host by %s", p.String(), p.HostPort, p.Proto, svc)
		}
		if other := a.publishedByLocked(p); other != "" && other != key {
			return apiError(api.CodeConflict, "publish", "publish %q: host port %d/%s is taken by endpoint %s", p.String(), p.HostPort, p.Proto, other)
		}
	}
	return nil
}

// publishedByLocked names the endpoint, local or being created, that
// publishes p's host port, or "". a.mu is held.
func (a *Agent) publishedByLocked(p driver.Publish) string {
	if key, ok := a.ports[portKey(p)]; ok {
		return key
	}
	for key, le := range a.local {
		for _, s := range le.rec.Publish {
			if q, err := driver.ParsePublish(s); err == nil && q.HostPort == p.HostPort && q.Proto == p.Proto {
				return key
			}
		}
	}
	return ""
}

// checkAssigned checks an address the network's own authority assigned:
// inside the subnet, not the gateway, and held by no endpoint in sight.
func (a *Agent) checkAssigned(n tables.Network, addr netip.Addr) error {
	switch {
	case !n.Subnet.Contains(addr):
		return apiError(api.CodeBadRequest, "ip", "ip %q is outside network %q's subnet %s", addr.String(), n.Name, n.Subnet)
	case addr == n.Gateway:
		return apiError(api.CodeBadRequest, "ip", "ip %q is network %q's gateway", addr.String(), n.Name)
	case addr.Is4() && (addr == n.Subnet.Masked().Addr() || addr == lastOf(n.Subnet)):
		return apiError(api.CodeBadRequest, "ip", "ip %q is the network or broadcast address of network %q's subnet %s", addr.String(), n.Name, n.Subnet)
	}
	for _, e := range a.kv.List(tables.Endpoints) {
		ep, err := tables.DecodeEndpoint(e.Key, e.Owner, e.Value)
		if err != nil || ep.Network != n.Name || ep.State == tables.StateDown {
			continue
		}
		for _, p := range ep.Addrs {
			if p.Addr() == addr {
				return apiError(api.CodeConflict, "ip", "ip %q on network %q is endpoint %s's on host %s: %s gave it twice", addr.String(), n.Name, ep.Name, ep.Host, n.AssignedBy)
			}
		}
	}
	return nil
}

// orVxnet names who assigns a network's addresses.
func orVxnet(assignedBy string) string {
	if assignedBy == "" {
		return "vxnet"
	}
	return assignedBy
}

// lastOf is an IPv4 prefix's last (broadcast) address.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// macHolder names the endpoint (other than key) of network that has mac,
// in sight, or "".
func (a *Agent) macHolder(network string, mac vxlan.MAC, key string) string {
	for _, e := range a.kv.List(tables.Endpoints) {
		ep, err := tables.DecodeEndpoint(e.Key, e.Owner, e.Value)
		if err == nil && ep.Network == network && ep.MAC == mac && ep.Key() != key && ep.State != tables.StateDown {
			return ep.Name + " (host " + ep.Host + ")"
		}
	}
	return ""
}

// Stats returns this host's data plane's counters.
func (a *Agent) Stats() api.Stats {
	if a.sw == nil {
		return api.Stats{Drops: map[string]uint64{}}
	}
	return api.Stats(a.sw.Stats())
}
