package agent

import (
	"net/netip"

	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/hostnet"
)

// gatewayDNS is vxnet's resolver on the gateway address of a network
// whose handed-over containers' queries the host sends there.
type gatewayDNS struct {
	network string
	l       *dns.Listener
}

// syncGatewayDNS serves DNS on the gateways that take containers'
// queries (Gateway.DNSFrom), each answering for its network. Called by
// reconcileNow (recMu held); it reports whether a gateway's address could
// not be bound yet (reconcileNow tries again later).
func (a *Agent) syncGatewayDNS(gws []hostnet.Gateway) (failed bool) {
	want := map[netip.AddrPort]string{}
	for _, g := range gws {
		for _, gw := range g.DNSGateways() {
			want[netip.AddrPortFrom(gw, 53)] = g.Name
		}
	}
	for ap, g := range a.gwDNS {
		if want[ap] != g.network {
			g.l.Close()
			delete(a.gwDNS, ap)
		}
	}
	for ap, network := range want {
		if _, ok := a.gwDNS[ap]; ok {
			continue
		}
		conns, err := dns.Listen(ap)
		if err != nil {
			if a.retryWait.Load() == 0 { // once per streak of failures
				a.log.Warn("no DNS on the network's gateway yet: its Docker containers resolve only Docker's names; trying again", "network", network, "address", ap.String(), "error", err)
			}
			failed = true
			continue
		}
		l, err := a.dns.Serve(conns, dns.View{Networks: []string{network}})
		if err != nil {
			conns.Close()
			a.log.Warn("no DNS on the network's gateway", "network", network, "error", err)
			failed = true
			continue
		}
		a.gwDNS[ap] = gatewayDNS{network: network, l: l}
		a.log.Info("DNS serving on the network's gateway", "network", network, "address", ap.String())
	}
	return failed
}

// closeGatewayDNS closes the gateways' resolvers.
func (a *Agent) closeGatewayDNS() {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	for ap, g := range a.gwDNS {
		g.l.Close()
		delete(a.gwDNS, ap)
	}
}
