// Package metrics exposes one host's counters to Prometheus (the agent's
// --metrics-addr), read from their sources at scrape time: nothing is
// counted twice and the hot path is untouched. It serves Go's profiler
// too (--pprof-addr).
package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dns"
)

// Sources are where the counters come from.
type Sources struct {
	Switch      func() dataplane.Stats
	Members     func() int // live cluster members
	Rows        func() int // rows of the replicated tables
	Endpoints   func() (local, remote int)
	DNS         func() dns.HandlerStats
	DNSTCPConns func() int
	LeftOut     func() map[string]int // rows the rebuilt tables leave out, by table
	// Services are this host's counts of services' flows (nil: none).
	Services func() []ServiceFlows
	// Store says whether the tables' store takes writes, and which it is
	// (gossip, etcd); nil: not reported.
	Store func() (backend string, up bool)
}

// ServiceFlows are the flows this host's containers made to one service's
// VIPs: chosen per task (NAME@HOST), and those whose task went away.
type ServiceFlows struct {
	Service string // NETWORK/NAME
	ByTask  map[string]uint64
	Moved   uint64
}

// Handler serves /metrics from src.
func Handler(src Sources) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newMetrics(src)); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
}

// PprofHandler serves Go's profiler at /debug/pprof/ (for speed work; keep
// it on loopback).
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve serves h on ln until stop.
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving HTTP", "listenAddr", ln.Addr().String(), "error", err)
		}
	}()
	return func() { srv.Close() }
}

// metrics is a Prometheus collector that reads the agent's counters at
// scrape time: nothing is counted twice and the hot path is untouched.
type metrics struct {
	src Sources

	packets, bytes, drops, flooded, neighbor, coalesced, icmpTooBig, neighborIn *prometheus.Desc
	members, rows, endpoints, dnsQueries                                        *prometheus.Desc
	leftOut, dnsTCPConns, dnsTCPRefused                                         *prometheus.Desc
	serviceFlows, serviceMoved, serviceEvicted                                  *prometheus.Desc
	storeUp                                                                     *prometheus.Desc
}

func newMetrics(src Sources) *metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vxnet_"+name, help, labels, nil)
	}
	return &metrics{src: src,
		packets:        d("dataplane_packets_total", "Packets through the switch, by direction (port_rx, port_tx, underlay_rx, underlay_tx).", "direction"),
		bytes:          d("dataplane_underlay_bytes_total", "VXLAN UDP payload bytes, by direction (rx, tx).", "direction"),
		drops:          d("dataplane_drops_total", "Packets dropped by the switch, by reason.", "reason"),
		flooded:        d("dataplane_flooded_total", "Packets replicated head-end to every VTEP of a network."),
		coalesced:      d("dataplane_coalesced_total", "Received TCP segments and UDP datagrams written to containers merged into super-packets, and pure TCP ACKs left out as a later ACK of their flow said more."),
		neighborIn:     d("dataplane_neighbor_learned_total", "ARP replies and announcements and IPv6 neighbour advertisements from other hosts taken in to learn addresses no table lists."),
		icmpTooBig:     d("dataplane_icmp_too_big_total", "ICMP \"fragmentation needed\" and ICMPv6 \"packet too big\" messages sent to containers whose packets exceeded the MTU or a narrower underlay path."),
		neighbor:       d("dataplane_neighbor_replies_total", "ARP and IPv6 neighbour messages sent: replies answered from the tables, and uplinks' ARP requests."),
		members:        d("gossip_members", "Live cluster members, this host included."),
		rows:           d("table_rows", "Rows of the replicated tables this host holds (every owner's)."),
		endpoints:      d("endpoints", "Endpoints in sight, by where they run (local, remote).", "where"),
		dnsQueries:     d("dns_queries_total", "DNS queries by result (answered, nxdomain, forwarded, servfail, malformed, truncated, held: a name not known yet while the agent catches up with the cluster, left unanswered).", "result"),
		dnsTCPConns:    d("dns_tcp_connections", "TCP connections to the DNS server open now (capped in all and per client address)."),
		dnsTCPRefused:  d("dns_tcp_refused_total", "TCP connections to the DNS server closed at once: past the cap in all or per client address."),
		serviceFlows:   d("service_flows_total", "Connections (TCP, UDP and ICMP echo flows) this host's containers made to a service's VIP, by service (NETWORK/NAME) and the task (NAME@HOST) the consistent hash chose.", "service", "task"),
		serviceMoved:   d("service_flows_moved_total", "Flows to a service's VIP whose task went away while they lasted: the next packet chose another (a TCP connection is reset), by service.", "service"),
		serviceEvicted: d("service_flow_table_evictions_total", "Live flows to VIPs pushed out of a full per-container flow table (16384 flows)."),
		storeUp:        d("store_up", "1 while the store of the replicated tables takes writes (gossip: always; etcd: reachable, this host's lease held), else 0; by backend.", "backend"),
		leftOut:        d("table_rows_left_out", "Bad rows (networks, endpoints) the tables rebuilt from the replicated ones leave out, by table (forwarding, dns, hns, and plan: what the plan leaves out of all of them); the log says why, once per row.", "table"),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.packets, m.bytes, m.drops, m.flooded, m.neighbor, m.coalesced, m.icmpTooBig, m.neighborIn, m.members, m.rows, m.endpoints, m.dnsQueries, m.leftOut, m.dnsTCPConns, m.dnsTCPRefused, m.serviceFlows, m.serviceMoved, m.serviceEvicted, m.storeUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	s := m.src.Switch()
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
	c(m.icmpTooBig, s.ICMPTooBig)
	c(m.neighborIn, s.NeighborIn)
	c(m.neighbor, s.NeighborReplies)
	g(m.members, m.src.Members())
	g(m.rows, m.src.Rows())
	local, remote := m.src.Endpoints()
	g(m.endpoints, local, "local")
	g(m.endpoints, remote, "remote")
	ds := m.src.DNS()
	c(m.dnsQueries, ds.Queries-min(ds.Queries, ds.NXDomain+ds.Forwarded+ds.Held), "answered")
	c(m.dnsQueries, ds.Held, "held")
	c(m.dnsQueries, ds.NXDomain, "nxdomain")
	c(m.dnsQueries, ds.Forwarded, "forwarded")
	c(m.dnsQueries, ds.ForwardFailed, "servfail")
	c(m.dnsQueries, ds.Malformed, "malformed")
	c(m.dnsQueries, ds.Truncated, "truncated")
	c(m.dnsTCPRefused, ds.TCPRefused)
	g(m.dnsTCPConns, m.src.DNSTCPConns())
	for table, n := range m.src.LeftOut() {
		g(m.leftOut, n, table)
	}
	c(m.serviceEvicted, s.FlowsEvicted)
	if m.src.Store != nil {
		backend, up := m.src.Store()
		g(m.storeUp, map[bool]int{true: 1}[up], backend)
	}
	if m.src.Services != nil {
		for _, sf := range m.src.Services() {
			for task, n := range sf.ByTask {
				c(m.serviceFlows, n, sf.Service, task)
			}
			c(m.serviceMoved, sf.Moved, sf.Service)
		}
	}
}
