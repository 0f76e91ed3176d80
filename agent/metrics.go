package agent

import (
	"fmt"
	"net"
	"net/http"

	"github.com/vxnet/vxnet/internal/bindretry"
	"github.com/vxnet/vxnet/metrics"
)

// serveMetrics serves the metrics and the profiler, where asked.
func (a *Agent) serveMetrics() (stop func(), err error) {
	stopM, stopP := func() {}, func() {}
	if a.cfg.MetricsAddr != "" {
		h, err := metrics.Handler(a.metricsSources())
		if err != nil {
			return nil, err
		}
		if stopM, err = a.serveHTTP("metrics-addr", a.cfg.MetricsAddr, h); err != nil {
			return nil, err
		}
	}
	if a.cfg.PprofAddr != "" {
		if stopP, err = a.serveHTTP("pprof-addr", a.cfg.PprofAddr, metrics.PprofHandler()); err != nil {
			stopM()
			return nil, err
		}
	}
	return func() { stopM(); stopP() }, nil
}

// serveHTTP serves h on addr (host:port), for what (the flag that asked).
func (a *Agent) serveHTTP(what, addr string, h http.Handler) (stop func(), err error) {
	ln, err := bindretry.Retry(a.log, what, addr, a.cfg.BindTimeout, func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	return metrics.Serve(ln, h, a.log), nil
}

// metricsSources are where the agent's metrics come from.
func (a *Agent) metricsSources() metrics.Sources {
	return metrics.Sources{Switch: a.sw.Stats, Members: a.kv.Node().NumMembers, Rows: func() int { return a.kv.Stats().Rows },
		Endpoints: a.endpointCounts, DNS: a.dns.Stats, DNSTCPConns: a.dns.OpenTCPConns, LeftOut: a.skipped.Counts, Services: a.serviceFlows,
		Store: func() (string, bool) { h := a.kv.Health(); return h.Backend, h.Up }}
}

// endpointCounts are the endpoints in sight, this host's and others'.
func (a *Agent) endpointCounts() (local, remote int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.rows {
		if _, mine := a.local[key]; !mine {
			remote++
		}
	}
	return len(a.local), remote
}
