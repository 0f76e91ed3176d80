package agent

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/plan"
)

// Reservations: Docker's IPAM plugin asks for a container's address before
// the network plugin is asked for its endpoint, and gives it back after the
// endpoint is gone. An address reserved here is a lease of this host; the
// endpoint created with it (EndpointCreate.Reserved) takes it over without
// releasing it at removal, and only ReleaseAddress ends the reservation, so
// that an address Docker still counts as its own is never handed to
// another container meanwhile. Reservations are in the state file.

// reservation is one reserved address: the endpoint that took it over
// (its key, or ""), whether the runtime released it while the endpoint
// still held it (it goes when the endpoint does), and since when it is
// reserved (zero: from before a restart).
type reservation struct {
	holder   string
	released bool
	since    time.Time
}

// ReserveAddress reserves ip on network, or the next free address when ip
// is the zero Addr (the next free IPv6 address of a dual-stack network
// when ip is IPv6's unspecified address, ::), and returns it with the
// subnet's prefix length.
func (a *Agent) ReserveAddress(ctx context.Context, network string, ip netip.Addr) (netip.Prefix, error) {
	n, d, err := a.endpointNetwork(network)
	if err != nil {
		return netip.Prefix{}, err
	}
	if n.AssignedBy != "" {
		return netip.Prefix{}, apiError(api.CodeBadRequest, "network", "network %q: its addresses are assigned by %s, not reserved from vxnet", network, n.AssignedBy)
	}
	if d.LeasesByDHCP(plan.DriverNetwork(n)) {
		return netip.Prefix{}, apiError(api.CodeBadRequest, "network", "network %q leases addresses from the segment's DHCP server, not from vxnet", network)
	}
	side, bits := network, n.Subnet.Bits()
	if ip.Is6() && !ip.Is4In6() && n.Subnet6.IsValid() {
		side, bits = network+ipam.V6Suffix, n.Subnet6.Bits()
	} else if ip.Is6() && ip.IsUnspecified() {
		return netip.Prefix{}, apiError(api.CodeBadRequest, "network", "network %q has no IPv6 subnet", network)
	}
	if ip.IsValid() && !ip.IsUnspecified() {
		if err := a.ipam.AllocateStatic(side, ip); err != nil {
			return netip.Prefix{}, fromIPAM(err)
		}
	} else {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if ip, err = a.ipam.Allocate(actx, side); err != nil {
			return netip.Prefix{}, fromIPAM(err)
		}
	}
	a.mu.Lock()
	if a.reserved[network] == nil {
		a.reserved[network] = map[netip.Addr]*reservation{}
	}
	a.reserved[network][ip] = &reservation{since: time.Now()}
	a.mu.Unlock()
	a.saveReserved()
	a.persist()
	return netip.PrefixFrom(ip, bits), nil
}

// ReleaseAddress ends the reservation of ip on network: the address goes
// back to IPAM, or, if an endpoint still holds it, when that endpoint
// goes. An address not reserved is left alone.
func (a *Agent) ReleaseAddress(network string, ip netip.Addr) error {
	a.mu.Lock()
	r, ok := a.reserved[network][ip]
	free := ok && r.holder == ""
	switch {
	case free:
		delete(a.reserved[network], ip)
	case ok:
		r.released = true
	}
	a.mu.Unlock()
	if !ok {
		return nil
	}
	a.saveReserved()
	if !free {
		return nil // released with its endpoint
	}
	if err := a.ipam.Release(a.ipamName(network, ip), ip); err != nil {
		return fromIPAM(err)
	}
	a.persist()
	return nil
}

// Reservations lists the reserved addresses.
func (a *Agent) Reservations() []api.Reservation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []api.Reservation
	for _, network := range sortedMapKeys(a.reserved) {
		for ip, r := range a.reserved[network] {
			out = append(out, api.Reservation{Network: network, Address: ip.String(), Held: r.holder != "", Since: r.since})
		}
	}
	return out
}

// takeReservation gives reserved address ip of network to the endpoint
// key, if it is reserved and no other endpoint has it.
func (a *Agent) takeReservation(network string, ip netip.Addr, key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.reserved[network][ip]
	if !ok || r.released || (r.holder != "" && r.holder != key) {
		return false
	}
	r.holder = key
	return true
}

// untakeReservation gives a reservation back from endpoint key; one the
// runtime released meanwhile goes back to IPAM.
func (a *Agent) untakeReservation(network string, ip netip.Addr, key string) {
	a.mu.Lock()
	r, ok := a.reserved[network][ip]
	if !ok || r.holder != key {
		a.mu.Unlock()
		return
	}
	r.holder = ""
	release := r.released
	if release {
		delete(a.reserved[network], ip)
	}
	a.mu.Unlock()
	if release {
		a.saveReserved()
		if err := a.ipam.Release(a.ipamName(network, ip), ip); err != nil {
			a.log.Warn("releasing address", "endpoint", key, "error", err)
		}
	}
}

// dropReservation forgets the reservation of an address this host no
// longer holds (IPAM gave it to another host).
func (a *Agent) dropReservation(network string, ip netip.Addr) {
	a.mu.Lock()
	_, ok := a.reserved[network][ip]
	delete(a.reserved[network], ip)
	a.mu.Unlock()
	if ok {
		a.saveReserved()
	}
}

// saveReserved writes the reservations into the state file. The list is
// taken under a.mu and written after (IPAM writes the store while holding
// its lock, and a.mu is taken before IPAM's: never a.mu inside the
// store's), one save at a time.
func (a *Agent) saveReserved() {
	a.resSave.Lock()
	defer a.resSave.Unlock()
	reserved, released := map[string][]netip.Addr{}, map[string][]netip.Addr{}
	a.mu.Lock()
	for network, addrs := range a.reserved {
		for ip, r := range addrs {
			reserved[network] = append(reserved[network], ip)
			if r.released {
				released[network] = append(released[network], ip)
			}
		}
	}
	a.mu.Unlock()
	for _, m := range []map[string][]netip.Addr{reserved, released} {
		for _, addrs := range m {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	err := a.store.Update(func(st *hoststate.State) { st.Reserved, st.Released = reserved, released })
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// loadReserved reads the reservations from the state file, with the
// endpoints that hold them.
func (a *Agent) loadReserved() {
	st := a.store.Snapshot()
	a.mu.Lock()
	defer a.mu.Unlock()
	for network, addrs := range st.Reserved {
		a.reserved[network] = map[netip.Addr]*reservation{}
		for _, ip := range addrs {
			a.reserved[network][ip] = &reservation{}
		}
	}
	for network, addrs := range st.Released {
		for _, ip := range addrs {
			if r, ok := a.reserved[network][ip]; ok {
				r.released = true
			}
		}
	}
	for _, ep := range st.Endpoints {
		for _, p := range ep.Addrs {
			if r, ok := a.reserved[ep.Network][p.Addr()]; ok && ep.Reserved {
				r.holder = ep.Key()
			}
		}
	}
}

// releaseReleased gives back, at start, the reservations the runtime
// released that no endpoint holds any more (the agent stopped between the
// endpoint's removal and the release).
func (a *Agent) releaseReleased() {
	type res struct {
		network string
		ip      netip.Addr
	}
	var free []res
	a.mu.Lock()
	for network, addrs := range a.reserved {
		for ip, r := range addrs {
			if r.released && r.holder == "" {
				free = append(free, res{network, ip})
				delete(addrs, ip)
			}
		}
	}
	a.mu.Unlock()
	if len(free) == 0 {
		return
	}
	a.saveReserved()
	for _, r := range free {
		if err := a.ipam.Release(a.ipamName(r.network, r.ip), r.ip); err != nil {
			a.log.Warn("releasing address", "network", r.network, "address", r.ip.String(), "error", err)
		}
	}
}
