package docker

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vxnet/vxnet/api"
)

// Swarm mode. A managed plugin of scope "global" serves swarm-scoped
// networks, and in a swarm Docker's manager, not a host, hands out their
// addresses: its allocator (on the leader) asks this plugin's IPAM for
// them in the global address space, SwarmSpace; the hosts' own Docker
// then asks, in the local space, for the very address the manager chose,
// and creates the endpoint with it. So:
//
//   - The allocator's pools (IDs start with "swarm:") live in the
//     leader's plugin, in memory. That is how Docker's manager works with
//     its own IPAM too: a leader that starts (elected, or restarted) asks
//     again for every pool and for every address it has handed out,
//     before any new one, so the new leader's plugin learns them.
//   - A host's own requests on a swarm network reserve nothing: the
//     address is the manager's, and the vxnet network (AssignedBy
//     api.AssignedBySwarm) takes it as given. vxnet's IPAM hands out none
//     of its addresses; the agent refuses an address that an endpoint in
//     the cluster holds already.

// SwarmSpace is the address space Docker swarm's manager allocates in.
const SwarmSpace = Name + "-swarm"

const swarmPoolPrefix = "swarm:"

// swarmPool is one subnet's allocations by the swarm's manager.
type swarmPool struct {
	subnet netip.Prefix
	rng    netip.Prefix // where addresses are handed out: the subnet, or --ip-range
	used   map[netip.Addr]bool
	last   netip.Addr // the last address handed out: the next is after it
}

// swarmPools are the allocator's pools, by ID, and the swarm networks
// it made, by subnet.
type swarmPools struct {
	mu    sync.Mutex
	pools map[string]*swarmPool
	// epoch and seq make pool IDs unique: the allocator asks for a pool
	// when it makes a network, and again, for each network, when a leader
	// starts, before it asks again for the addresses it handed out; each
	// time the pool starts empty. (A network it fails to make releases
	// its pool, which is its own.)
	epoch int64
	seq   uint64
	nets  map[netip.Prefix]string // subnet → swarm network ID
}

// add makes a pool; id is the subnet and range's (as for local pools).
func (s *swarmPools) add(id string, subnet, rng netip.Prefix) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools == nil {
		s.pools, s.epoch = map[string]*swarmPool{}, time.Now().UnixNano()
	}
	s.seq++
	id = fmt.Sprintf("%s%x-%d:%s", swarmPoolPrefix, s.epoch, s.seq, id)
	s.pools[id] = &swarmPool{subnet: subnet, rng: rng, used: map[netip.Addr]bool{}}
	return id
}

// claim records that swarm network id has subnet: one swarm network per
// subnet, as a subnet is one vxnet network.
func (s *swarmPools) claim(subnet netip.Prefix, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.nets[subnet]; ok && other != id {
		return fmt.Errorf("--subnet %s is swarm network %s's already: a subnet is one vxnet network", subnet, other)
	}
	if s.nets == nil {
		s.nets = map[netip.Prefix]string{}
	}
	s.nets[subnet] = id
	return nil
}

// unclaim forgets swarm network id.
func (s *swarmPools) unclaim(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for subnet, other := range s.nets {
		if other == id {
			delete(s.nets, subnet)
		}
	}
}

func (s *swarmPools) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pools, id)
}

// take marks ip used in pool id, or, when ip is invalid, hands out the
// next address of the range that is neither used nor in inUse (the
// addresses vxnet endpoints of the subnet hold: a plugin restarted on the
// leader knows none of the manager's earlier ones). The gateway, when not
// given, is the subnet's first address.
func (s *swarmPools) take(id string, ip netip.Addr, gateway bool, inUse func(netip.Prefix) map[netip.Addr]bool) (netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[id]
	if p == nil {
		// The plugin started again under a leader that did not: the
		// pool is made again from its ID, with the addresses the
		// subnet's endpoints and gateway hold in use (the manager's
		// other ones are not known; the agent refuses an address held
		// twice).
		subnet, rng, err := parseSwarmPoolID(id)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = &swarmPool{subnet: subnet, rng: rng, used: inUse(subnet)}
		if s.pools == nil {
			s.pools = map[string]*swarmPool{}
		}
		s.pools[id] = p
	}
	if !ip.IsValid() && gateway {
		ip = p.subnet.Addr().Next()
	}
	if ip.IsValid() {
		if !p.subnet.Contains(ip) {
			return netip.Prefix{}, fmt.Errorf("address %s is not in the network's subnet %s", ip, p.subnet)
		}
		// A leader that starts asks again for each address it handed
		// out, into a new pool; an address asked for twice is --ip of
		// two containers.
		if p.used[ip] {
			return netip.Prefix{}, fmt.Errorf("address %s is in use", ip)
		}
		p.used[ip] = true
		return netip.PrefixFrom(ip, p.subnet.Bits()), nil
	}
	held := inUse(p.subnet)
	first, last := usable(p.subnet, p.rng)
	if first.Compare(last) > 0 {
		return netip.Prefix{}, fmt.Errorf("--ip-range %s holds no address a container may have", p.rng)
	}
	start := first
	if p.last.IsValid() && p.last.Compare(first) >= 0 && p.last.Compare(last) < 0 {
		start = p.last.Next()
	}
	for a := start; ; {
		if !p.used[a] && !held[a] {
			p.used[a], p.last = true, a
			return netip.PrefixFrom(a, p.subnet.Bits()), nil
		}
		if a = a.Next(); a.Compare(last) > 0 {
			a = first
		}
		if a == start {
			return netip.Prefix{}, fmt.Errorf("no address left in %s: every one is a task's or a container's (a larger --subnet or --ip-range)", p.rng)
		}
	}
}

// parseSwarmPoolID reads a swarm pool's ID back: its subnet and range.
func parseSwarmPoolID(id string) (subnet, rng netip.Prefix, err error) {
	bad := fmt.Errorf("pool %q is not one of vxnet's", id)
	sub, r, hasRange := strings.Cut(poolAddrs(id), ",")
	if subnet, err = netip.ParsePrefix(sub); err != nil || !subnet.Addr().Is4() || subnet != subnet.Masked() || subnet.Bits() > 30 {
		return subnet, rng, bad
	}
	rng = subnet
	if hasRange {
		if rng, err = netip.ParsePrefix(r); err != nil || !subnet.Contains(rng.Addr()) || rng.Bits() < subnet.Bits() {
			return subnet, rng, bad
		}
		rng = rng.Masked()
	}
	return subnet, rng, nil
}

func (s *swarmPools) free(id string, ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pools[id]; p != nil {
		delete(p.used, ip)
	}
}

// usable is the range's first and last address that may be handed out:
// of an IPv4 subnet, never its network or broadcast address.
func usable(subnet, rng netip.Prefix) (first, last netip.Addr) {
	first, last = rng.Masked().Addr(), lastAddr(rng)
	if first == subnet.Masked().Addr() {
		first = first.Next()
	}
	if last == lastAddr(subnet) {
		last = last.Prev()
	}
	return first, last
}

// lastAddr is p's last address.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// endpointAddrs lists the addresses vxnet endpoints of a subnet hold, in
// the whole cluster, and its gateway.
func (p *Plugin) endpointAddrs(subnet netip.Prefix) map[netip.Addr]bool {
	out := map[netip.Addr]bool{p.gatewayOf(subnet): true}
	nets := map[string]bool{}
	for _, n := range p.cfg.Backend.Networks() {
		if n.Subnet == subnet.String() {
			nets[n.Name] = true
		}
	}
	for _, ep := range p.cfg.Backend.Endpoints() {
		if !nets[ep.Network] {
			continue
		}
		for _, a := range ep.Addresses {
			if pr, err := netip.ParsePrefix(a); err == nil {
				out[pr.Addr()] = true
			}
		}
	}
	return out
}

// swarm reports whether the plugin serves a swarm (scope "global"): all of
// its networks are then swarm-scoped, with addresses from the manager.
func (p *Plugin) swarm() bool { return p.cfg.Scope == "global" }

// assignedBy is how the plugin's networks get their addresses.
func (p *Plugin) assignedBy() string {
	if p.swarm() {
		return api.AssignedBySwarm
	}
	return ""
}

// poolAddrs is the subnet[,range] part of a pool ID: all of a local
// pool's, after "swarm:EPOCH-SEQ:" of a swarm pool's.
func poolAddrs(id string) string {
	rest, ok := strings.CutPrefix(id, swarmPoolPrefix)
	if !ok {
		return id
	}
	if _, addrs, ok := strings.Cut(rest, ":"); ok {
		return addrs
	}
	return rest
}

// isSwarmPool reports whether a pool ID is one of the allocator's.
func isSwarmPool(id string) bool { return strings.HasPrefix(id, swarmPoolPrefix) }
