package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dhcp"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// dhcpTimeout bounds the wait for a new endpoint's lease.
const dhcpTimeout = 20 * time.Second

// leaseDHCP asks the segment's DHCP server for an address for a new
// endpoint of n, and returns the lease as the endpoint records it.
func (a *Agent) leaseDHCP(ctx context.Context, n tables.Network, name string) (dhcp.Lease, *tables.DHCP, error) {
	up, err := a.uplinkOf(n.Name)
	if err != nil {
		return dhcp.Lease{}, nil, err
	}
	c, err := a.host.DHCP(up)
	if err != nil {
		return dhcp.Lease{}, nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dhcpTimeout)
	defer cancel()
	mac := vxlan.DHCPMAC(n.Name, name)
	l, err := c.Acquire(ctx, mac, name)
	if errors.Is(err, context.DeadlineExceeded) {
		return dhcp.Lease{}, nil, fmt.Errorf("no DHCP server on %s answered within %v (the endpoint's MAC %v): is the server on that segment, and -o uplink the NIC on it?", up, dhcpTimeout, vxlan.MAC(mac))
	}
	if err != nil {
		return dhcp.Lease{}, nil, err
	}
	if n.Subnet.IsValid() && !n.Subnet.Contains(l.Addr.Addr()) {
		// Another segment's server, or a --subnet that is not the
		// segment's: the address would route nowhere the network says.
		c.Release(mac, l)
		return dhcp.Lease{}, nil, fmt.Errorf("the DHCP server %s on %s leased %s, outside the network's subnet %s: is -o uplink the segment's NIC, and --subnet its subnet?", l.Server, up, l.Addr, n.Subnet)
	}
	return l, tables.LeaseRecord(up, l), nil
}

// uplinkOf is the host NIC a network's driver puts it on.
func (a *Agent) uplinkOf(network string) (string, error) {
	n, ok := a.network(network)
	if !ok {
		return "", fmt.Errorf("no network %q", network)
	}
	d, err := driver.Get(n.Driver)
	if err != nil {
		return "", err
	}
	return d.Uplink(plan.DriverNetwork(n))
}

// dhcpOf returns what a DHCP endpoint's client needs: its uplink's name and
// DHCP clients, its lease and its MAC. The uplink is the one the record
// names, so that a lease can be given back before the network's row is in
// sight (at start-up); records from before it was kept name none, and
// their network tells.
func (a *Agent) dhcpOf(ep tables.Endpoint) (string, *dhcp.Clients, dhcp.Lease, vxlan.MAC, error) {
	fail := func(err error) (string, *dhcp.Clients, dhcp.Lease, vxlan.MAC, error) {
		return "", nil, dhcp.Lease{}, vxlan.MAC{}, err
	}
	l, err := ep.Lease()
	if err != nil {
		return fail(err)
	}
	up := ep.DHCP.Uplink
	if up == "" {
		if up, err = a.uplinkOf(ep.Network); err != nil {
			return fail(err)
		}
	}
	c, err := a.host.DHCP(up)
	if err != nil {
		return fail(err)
	}
	return up, c, l, ep.MAC, nil
}

// releaseDHCP gives a DHCP endpoint's address back (best effort).
func (a *Agent) releaseDHCP(ep tables.Endpoint) {
	_, c, l, mac, err := a.dhcpOf(ep)
	if err == nil {
		err = c.Release(mac, l)
	}
	if err != nil {
		a.log.Warn("dhcp: release", "endpoint", ep.Network+"/"+ep.Name, "error", err)
	}
}

// routineDHCPRenew renews the leases of this host's DHCP endpoints once
// half their time has passed, and saves the new grant.
func (a *Agent) routineDHCPRenew(ctx context.Context) {
	every(ctx, 5*time.Second, func() {
		a.mu.Lock()
		var due []tables.Endpoint
		for _, le := range a.local {
			if d := le.rec.DHCP; d != nil && time.Since(d.Acquired) > time.Duration(d.Seconds)*time.Second/2 && time.Now().After(le.dhcpRetry) {
				due = append(due, le.rec)
			}
		}
		a.mu.Unlock()
		for _, ep := range due {
			a.renewDHCP(ctx, ep)
		}
	})
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

func (a *Agent) renewDHCP(ctx context.Context, ep tables.Endpoint) {
	key := ep.Key()
	up, c, l, mac, err := a.dhcpOf(ep)
	if err != nil {
		a.log.Warn("dhcp: cannot renew", "endpoint", key, "error", err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := c.Keep(rctx, mac, ep.Name, l)
	if errors.Is(err, dhcp.ErrLost) || errors.Is(err, dhcp.ErrMoved) {
		a.log.Error("dhcp: the endpoint keeps an address the server may give away; if the server moved it, remove the endpoint and create it again", "endpoint", key, "error", err)
		a.postponeDHCP(key)
		return
	}
	if err != nil {
		a.log.Warn("dhcp: renewal failed; retrying", "endpoint", key, "error", err)
		return
	}
	a.mu.Lock()
	if le := a.local[key]; le != nil {
		le.rec.DHCP = tables.LeaseRecord(up, got)
		ep = le.rec
	}
	a.mu.Unlock()
	if err := a.store.Update(func(st *hoststate.State) {
		for i := range st.Endpoints {
			if st.Endpoints[i].Key() == key {
				st.Endpoints[i].DHCP = ep.DHCP
			}
		}
	}); err != nil {
		a.log.Error("saving state", "error", err)
	}
	a.log.Debug("dhcp: lease renewed", "endpoint", key)
}

// dhcpLostRetry is how long a lost lease waits before the next attempt:
// not every tick of the renewal routine, which would ask the server every
// five seconds.
const dhcpLostRetry = time.Minute

func (a *Agent) postponeDHCP(key string) {
	a.mu.Lock()
	if le := a.local[key]; le != nil {
		le.dhcpRetry = time.Now().Add(dhcpLostRetry)
	}
	a.mu.Unlock()
}
