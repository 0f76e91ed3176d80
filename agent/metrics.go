package agent

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is a Prometheus collector that reads the agent's counters at
// scrape time: nothing is counted twice and the hot path is untouched.
type metrics struct {
	a *Agent

	packets, bytes, drops, flooded, neighbor, coalesced *prometheus.Desc
	members, rows, endpoints, dnsQueries                *prometheus.Desc
	leftOut, dnsTCPConns, dnsTCPRefused                 *prometheus.Desc
}

func newMetrics(a *Agent) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vxnet_"+name, help, labels, nil)
	}
	return &metrics{a: a,
		packets:       d("dataplane_packets_total", "Packets through the switch, by direction (port_rx, port_tx, underlay_rx, underlay_tx).", "direction"),
		bytes:         d("dataplane_underlay_bytes_total", "VXLAN UDP payload bytes, by direction (rx, tx).", "direction"),
		drops:         d("dataplane_drops_total", "Packets dropped by the switch, by reason.", "reason"),
		flooded:       d("dataplane_flooded_total", "Packets replicated head-end to every VTEP of a network."),
		coalesced:     d("dataplane_coalesced_total", "Received TCP segments and UDP datagrams written to containers merged into super-packets."),
		neighbor:      d("dataplane_neighbor_replies_total", "ARP and IPv6 neighbour messages sent: replies answered from the tables, and uplinks' ARP requests."),
		members:       d("gossip_members", "Live cluster members, this host included."),
		rows:          d("table_rows", "Rows of the replicated tables this host holds (every owner's)."),
		endpoints:     d("endpoints", "Endpoints in sight, by where they run (local, remote).", "where"),
		dnsQueries:    d("dns_queries_total", "DNS queries by result (answered, nxdomain, forwarded, servfail, malformed, truncated).", "result"),
		dnsTCPConns:   d("dns_tcp_connections", "TCP connections to the DNS server open now (capped in all and per client address)."),
		dnsTCPRefused: d("dns_tcp_refused_total", "TCP connections to the DNS server closed at once: past the cap in all or per client address."),
		leftOut:       d("table_rows_left_out", "Bad rows (networks, endpoints) the tables rebuilt from the replicated ones leave out, by table (forwarding, dns, hns); the log says why, once per row.", "table"),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.packets, m.bytes, m.drops, m.flooded, m.neighbor, m.coalesced, m.members, m.rows, m.endpoints, m.dnsQueries, m.leftOut, m.dnsTCPConns, m.dnsTCPRefused} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	s := m.a.sw.Stats()
	c(m.packets, s.PortRxPackets, "port_rx")
	c(m.packets, s.PortTxPackets, "port_tx")
	c(m.packets, s.UnderlayRxPackets, "underlay_rx")
	c(m.packets, s.UnderlayTxPackets, "underlay_tx")
	c(m.bytes, s.UnderlayRxBytes, "rx")
	c(m.bytes, s.UnderlayTxBytes, "tx")
	for reason, v := range s.Drops {
		c(m.drops, v, reason)
	}
	c(m.flooded, s.Flooded)
	c(m.coalesced, s.Coalesced)
	c(m.neighbor, s.NeighborReplies)
	g(m.members, m.a.kv.Node().NumMembers())
	g(m.rows, m.a.kv.Stats().Rows)
	m.a.mu.Lock()
	local := len(m.a.local)
	remote := 0
	for key := range m.a.rows {
		if _, mine := m.a.local[key]; !mine {
			remote++
		}
	}
	m.a.mu.Unlock()
	g(m.endpoints, local, "local")
	g(m.endpoints, remote, "remote")
	ds := m.a.dns.Stats()
	c(m.dnsQueries, ds.Queries-min(ds.Queries, ds.NXDomain+ds.Forwarded), "answered")
	c(m.dnsQueries, ds.NXDomain, "nxdomain")
	c(m.dnsQueries, ds.Forwarded, "forwarded")
	c(m.dnsQueries, ds.ForwardFailed, "servfail")
	c(m.dnsQueries, ds.Malformed, "malformed")
	c(m.dnsQueries, ds.Truncated, "truncated")
	c(m.dnsTCPRefused, ds.TCPRefused)
	g(m.dnsTCPConns, m.a.dns.OpenTCPConns())
	for table, n := range m.a.skippedCounts() {
		g(m.leftOut, n, table)
	}
}

// serveMetrics serves /metrics on addr (host:port).
func (a *Agent) serveMetrics(addr string) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newMetrics(a)); err != nil {
		return nil, err
	}
	ln, err := retryBind(a.log, "metrics", addr, a.cfg.BindTimeout, func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err != nil {
		return nil, fmt.Errorf("metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server", "error", err)
		}
	}()
	return func() { srv.Close() }, nil
}

// servePprof serves Go's profiler on addr.
func (a *Agent) servePprof(addr string) (stop func(), err error) {
	ln, err := retryBind(a.log, "pprof", addr, a.cfg.BindTimeout, func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err != nil {
		return nil, fmt.Errorf("pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
