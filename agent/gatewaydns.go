package agent

import (
	"net/netip"
	"time"

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
// reconcileNow (recMu held); a gateway whose address cannot be bound yet
// is tried again at the next reconcile.
func (a *Agent) syncGatewayDNS(gws []hostnet.Gateway) {
	want := map[netip.AddrPort]string{}
	for _, g := range gws {
		if len(g.DNSFrom) > 0 {
			want[netip.AddrPortFrom(g.Gateway, 53)] = g.Name
		}
	}
	for ap, g := range a.gwDNS {
		if want[ap] != g.network {
			g.l.Close()
			delete(a.gwDNS, ap)
		}
	}
	failed := false
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
	if failed {
		a.retryReconcile()
	} else {
		a.resetRetry()
	}
}

// retryReconcile reconciles again later, once, for what could not be
// done now: in a second, then twice as long each time it is asked again
// without a success (resetRetry) in between, up to a minute.
func (a *Agent) retryReconcile() {
	if !a.retrying.CompareAndSwap(false, true) {
		return
	}
	wait := time.Duration(a.retryWait.Load())
	if wait == 0 {
		wait = time.Second
	}
	a.retryWait.Store(int64(min(2*wait, time.Minute)))
	time.AfterFunc(wait, func() {
		a.retrying.Store(false)
		if a.runCtx.Err() == nil {
			a.kickReconcile()
		}
	})
}

// resetRetry: what retryReconcile waited for is done.
func (a *Agent) resetRetry() { a.retryWait.Store(0) }

// closeGatewayDNS closes the gateways' resolvers.
func (a *Agent) closeGatewayDNS() {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	for ap, g := range a.gwDNS {
		g.l.Close()
		delete(a.gwDNS, ap)
	}
}
