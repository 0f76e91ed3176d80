package agent

import (
	"errors"
	"net/netip"
	"sort"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hns"
)

// Windows hosts program the Host Networking Service from the same tables
// (Config.HNS): every reconcile makes HNS hold one network per vxnet
// network in use here and one endpoint per container, local ones and, on
// overlay networks, remote ones (a container on another host, behind its
// host's VTEP), as Docker's Windows overlay does. hns.Programmer only
// touches objects named "vxnet-…" and re-creates what an HNS restart lost.

// hnsSpecs turns the networks and endpoints the tables take (see
// networksInSight, endpointsInSight) into what HNS should hold on this
// host; nothing without HNS. Called with a.mu held.
func (a *Agent) hnsSpecs(networks []api.Network, keys []string) ([]hns.NetworkSpec, map[string][]hns.EndpointSpec) {
	if a.hnsProg == nil {
		return nil, nil
	}
	var nets []hns.NetworkSpec
	eps := map[string][]hns.EndpointSpec{}
	wanted := map[string]api.Network{}
	for _, n := range networks {
		s := hns.NetworkSpec{Name: n.Name, Driver: n.Driver, VNI: n.VNI, VTEP: a.vtep, Adapter: n.Options["uplink"]}
		s.Subnet, _ = netip.ParsePrefix(n.Subnet)
		s.Gateway, _ = netip.ParseAddr(n.Gateway)
		nets = append(nets, s)
		wanted[n.Name] = n
	}
	for _, key := range keys {
		ep := a.endpoints[key]
		n, ok := wanted[ep.Network]
		if !ok || len(ep.Addresses) == 0 {
			continue
		}
		addr, err := netip.ParsePrefix(ep.Addresses[0])
		if err != nil {
			continue
		}
		e := hns.EndpointSpec{Name: ep.Name, Addr: addr, MAC: ep.MAC}
		if ep.Host != a.cfg.Name {
			if n.Driver != "overlay" {
				continue // other drivers reach other hosts' containers through the network itself
			}
			e.Remote = true
			e.VTEP, _ = netip.ParseAddr(ep.VTEP)
		} else {
			for _, s := range ep.Publish {
				if p, err := driver.ParsePublish(s); err == nil {
					e.Publish = append(e.Publish, hns.PortMap{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
				}
			}
			if n.Driver == "l2tunnel" {
				if _, pol, err := driver.L2TunnelPolicy(n.Options); err == nil {
					for _, r := range pol.Rules {
						e.ACL = append(e.ACL, hns.ACLRule{Allow: r.Allow, Remote: r.Dst, Port: r.Port, Proto: r.Proto})
					}
					// The default, last: what no rule matched.
					all := netip.MustParsePrefix("0.0.0.0/0")
					if addr.Addr().Is6() {
						all = netip.MustParsePrefix("::/0")
					}
					e.ACL = append(e.ACL, hns.ACLRule{Allow: pol.Default, Remote: all})
				}
			}
		}
		eps[ep.Network] = append(eps[ep.Network], e)
	}
	for _, list := range eps {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	return nets, eps
}

// syncHNS makes HNS hold nets and eps. A network or endpoint whose spec
// is invalid (a bad row) is left out and reported once (skipped.go); HNS's
// own failures are logged, and the next reconcile tries again.
func (a *Agent) syncHNS(nets []hns.NetworkSpec, eps map[string][]hns.EndpointSpec) {
	if a.hnsProg == nil {
		return
	}
	var bad, failed []error
	for _, err := range unjoin(a.hnsProg.Sync(nets, eps)) {
		var se *hns.SpecError
		if errors.As(err, &se) {
			bad = append(bad, err)
		} else {
			failed = append(failed, err)
		}
	}
	a.reportSkipped(tableHNS, errors.Join(bad...))
	if len(failed) > 0 {
		a.log.Error("programming HNS", "error", errors.Join(failed...))
	}
}
