package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/ipam/kvstable"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// clusterTables are the kvs tables whose rows belong to the cluster
// (kvs.Config.ClusterTables): networks, and IPAM's subnet claims. The
// endpoints table is host-scoped, first claim wins (kvs.Config.FirstClaim).
var clusterTables = append([]string{tables.Networks}, kvstable.ClusterTables...)

func isClusterTable(t string) bool {
	for _, c := range clusterTables {
		if c == t {
			return true
		}
	}
	return false
}

// Defaults of Config, for the flags that set them.
const (
	DefaultVXLANPort = vxlan.DefaultPort // IANA's VXLAN port, the same on every host
	DefaultMTU       = tun.DefaultMTU    // a 1500-byte underlay less VXLAN's 50 bytes
)

// Config configures an agent. Flags of `vxnet agent` map onto it.
type Config struct {
	// Name of this host in the cluster. Default: the hostname.
	Name string
	// AdvertiseAddr is this host's underlay address: gossip and VXLAN
	// listen on it and other hosts send to it. Required.
	AdvertiseAddr string
	// GossipPort is the gossip port (TCP and UDP). Default 7946.
	GossipPort int
	// Join lists host:port of agents to join; none starts a cluster.
	Join []string
	// DataDir keeps this host's own state. Default /var/lib/vxnet.
	DataDir string
	// GossipKey, base64 of 16, 24 or 32 bytes, encrypts gossip.
	GossipKey string
	// GossipKeyFile names a file holding GossipKey on its first line
	// (instead of GossipKey, which a command line shows to every user of
	// the host). On Unix the file must not be readable by its group or by
	// others.
	GossipKeyFile string
	// VXLANPort is the underlay UDP port. Default 4789.
	VXLANPort int
	// APISocket is the unix socket of the API. Default
	// /run/vxnet/vxnet.sock.
	APISocket string
	// MTU of endpoints. Default 1450.
	MTU int
	// RxQueues is the number of VXLAN receive sockets (and loops) sharing
	// the port; flows spread over them. Default: one per four cores, up
	// to 4.
	RxQueues int
	// MetricsAddr, host:port, serves Prometheus metrics at /metrics;
	// empty serves none.
	MetricsAddr string
	// PprofAddr, host:port, serves Go's profiler at /debug/pprof/ (for
	// speed work; keep it on loopback); empty serves none.
	PprofAddr string
	// Profile: "lan" (default) or "fast" (small clusters, tests: failures
	// seen in about a second).
	Profile string
	// DNSUpstreams for names vxnet does not own; nil: the host's
	// resolv.conf; an empty non-nil list: none.
	DNSUpstreams []netip.AddrPort
	// HNS, when set, is programmed with every network and endpoint in use
	// on this host (see hns.Programmer). On Windows New opens the real one
	// (hns.NewHCN) when it is nil; tests pass a fake (hnstest).
	HNS hns.Client
	// Logger receives structured logs; nil discards.
	Logger *slog.Logger
	// Version is reported to other members.
	Version string
	// Recover rebuilds this host's state from the cluster when the state
	// file is damaged or missing: the file is set aside, and the host's
	// own rows (endpoints, address blocks) are taken back from the other
	// hosts instead of being deleted. Needs Join.
	Recover bool
	// BindTimeout is how long a bind whose address is in use (gossip,
	// VXLAN, the API socket, metrics, DNS in a container's namespace) is
	// retried: a restarted agent may find its predecessor still shutting
	// down. Default DefaultBindTimeout; negative: no retry.
	BindTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.GossipPort == 0 {
		c.GossipPort = 7946
	}
	if c.DataDir == "" {
		c.DataDir = "/var/lib/vxnet"
	}
	if c.VXLANPort == 0 {
		c.VXLANPort = DefaultVXLANPort
	}
	if c.APISocket == "" {
		c.APISocket = api.DefaultSocket
	}
	if c.RxQueues <= 0 {
		c.RxQueues = dataplane.DefaultRxQueues()
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.Profile == "" {
		c.Profile = "lan"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BindTimeout == 0 {
		c.BindTimeout = DefaultBindTimeout
	}
}

// ConfigError names a bad setting.
type ConfigError struct {
	Field, Value, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("agent: %s %q: %s", e.Field, e.Value, e.Reason)
}

func (c *Config) validate() (advertise netip.Addr, keys [][]byte, profile gossip.Profile, err error) {
	if c.Name == "" {
		return advertise, nil, 0, &ConfigError{"name", c.Name, "is empty and the hostname is unknown"}
	}
	advertise, perr := netip.ParseAddr(c.AdvertiseAddr)
	if perr != nil || advertise.IsUnspecified() || advertise.Zone() != "" {
		return advertise, nil, 0, &ConfigError{"advertise-addr", c.AdvertiseAddr, "want this host's underlay IP address, e.g. 198.18.0.1"}
	}
	if c.GossipPort < 1 || c.GossipPort > 65535 {
		return advertise, nil, 0, &ConfigError{"gossip-port", strconv.Itoa(c.GossipPort), "want 1-65535"}
	}
	if c.VXLANPort < 1 || c.VXLANPort > 65535 {
		return advertise, nil, 0, &ConfigError{"vxlan-port", strconv.Itoa(c.VXLANPort), "want 1-65535"}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return advertise, nil, 0, &ConfigError{"join", j, "want host:port, e.g. 198.18.0.2:7946"}
		}
	}
	key, keyField, keyValue := c.GossipKey, "gossip-key", "(hidden)"
	if c.GossipKeyFile != "" {
		if c.GossipKey != "" {
			return advertise, nil, 0, &ConfigError{"gossip-key-file", c.GossipKeyFile, "give the key either in a file or as a value, not both"}
		}
		if key, err = readKeyFile("gossip-key-file", c.GossipKeyFile); err != nil {
			return advertise, nil, 0, err
		}
		keyField, keyValue = "gossip-key-file", c.GossipKeyFile
	}
	if key != "" {
		k, derr := base64.StdEncoding.DecodeString(key)
		if derr != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return advertise, nil, 0, &ConfigError{keyField, keyValue, "want base64 of 16, 24 or 32 bytes (e.g. `head -c32 /dev/urandom | base64`)"}
		}
		keys = [][]byte{k}
	}
	switch c.Profile {
	case "lan":
		profile = gossip.ProfileLAN
	case "fast":
		profile = gossip.ProfileFast
	default:
		return advertise, nil, 0, &ConfigError{"profile", c.Profile, "want lan or fast"}
	}
	if c.MTU < 576 || c.MTU > 9000 {
		return advertise, nil, 0, &ConfigError{"mtu", strconv.Itoa(c.MTU), "want 576-9000"}
	}
	return advertise, keys, profile, nil
}

// Agent is one host's vxnet: cluster membership and tables, IPAM, DNS and
// the data plane, and the API.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	vtep  netip.Addr
	store *localStore
	kv    *kvs.Gossip
	table *kvstable.Table
	ipam  *ipam.Global
	dns   *dns.Server
	sw    *dataplane.Switch
	host  *hostnet.Host // gateways and netfilter rules of this host's nat networks
	// hnsProg programs the Host Networking Service (Windows); nil elsewhere.
	hnsProg *hns.Programmer

	recMu sync.Mutex // one reconcileNow at a time; taken before mu
	mu    sync.Mutex
	// The tables, decoded (view.go).
	networks   map[string]tables.Network  // every network by name: the winning creation
	creations  map[string]tables.Network  // every creation, by key
	rows       map[string]tables.Endpoint // every endpoint row, by key
	down       map[string]tables.Endpoint // this host's endpoints taken out of service, by key
	local      map[string]*localEndpoint
	pending    map[string]struct{}    // endpoints being created
	ports      map[string]string      // host ports ("8080/tcp") reserved by endpoints being created
	netns      map[string]*nsResolver // DNS listeners by namespace path
	creating   map[string]struct{}    // names of networks and endpoints being created (names.go)
	dnsWaiting map[string]bool        // namespaces whose DNS address is in use, retried (bind.go)
	skipped    skippedRows            // bad rows the rebuilt tables leave out (skipped.go)
	kick       chan struct{}

	awayLong   bool          // back after long enough for its blocks to have passed to others
	nameSettle time.Duration // how long endpoint create waits for a competing claim of its name
	recovering atomic.Bool   // rebuilding this host's state from the cluster (Config.Recover)
	// runCtx ends when Run returns (stopRun); bg tracks work started
	// outside the request path (readdressing), waited for before closing.
	runCtx   context.Context
	stopRun  context.CancelFunc
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	bgClosed bool // no new background jobs (stopBackground)
}

// localEndpoint is an endpoint of this host: its port on the switch.
type localEndpoint struct {
	rec      tables.Endpoint
	port     *dataplane.Port
	ns       string // namespace path
	removing bool   // a RemoveEndpoint, readdress or takeDown owns it
	// busy: being created or restored; conflicts wait until it is done
	// (settled), since its row may not be written yet.
	busy bool
	// dhcpRetry: the renewal routine leaves a lost lease alone until then.
	dhcpRetry time.Time
}

// nsResolver is the DNS listener in one container namespace.
type nsResolver struct {
	l        *dns.Listener
	networks map[string]int // endpoints per network in the namespace
}

// New prepares an agent: the data directory, the tables with this host's
// own rows put back, IPAM, DNS and the switch. Run starts it.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	vtep, keys, profile, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, vtep: vtep, networks: map[string]tables.Network{}, rows: map[string]tables.Endpoint{},
		creations: map[string]tables.Network{}, down: map[string]tables.Endpoint{},
		local: map[string]*localEndpoint{}, pending: map[string]struct{}{}, ports: map[string]string{}, netns: map[string]*nsResolver{}, kick: make(chan struct{}, 1)}
	a.runCtx, a.stopRun = context.WithCancel(context.Background())
	a.store, err = openLocalStore(cfg.DataDir)
	var se *StateError
	if cfg.Recover && len(cfg.Join) == 0 {
		return nil, &ConfigError{"recover", "true", "needs --join: the hosts to rebuild this host's state from"}
	}
	if errors.As(err, &se) && cfg.Recover {
		to, aerr := setAside(cfg.DataDir, time.Now())
		if aerr != nil {
			return nil, aerr
		}
		a.log.Warn("the state file is damaged; set aside, rebuilding from the cluster", "reason", se.Reason, "path", to)
		a.store, err = openLocalStore(cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	st := a.store.snapshot()
	// Recovery: asked for on a fresh state, or one that an interrupted
	// recovery left (its mark is still there).
	marked := recoveryMarked(cfg.DataDir)
	if (cfg.Recover && st.SavedAt.IsZero()) || marked {
		if err := markRecovery(cfg.DataDir); err != nil {
			return nil, err
		}
		if len(cfg.Join) == 0 {
			return nil, &ConfigError{"join", "", "an interrupted recovery must finish: start again with --recover --join HOST:PORT"}
		}
		a.recovering.Store(true)
	} else if cfg.Recover {
		a.log.Warn("--recover: the state file is sound; starting normally")
	}
	// Back after long enough for its blocks to have passed to others: its
	// endpoint rows wait until their addresses are checked (restore).
	inheritAfter := 24 * time.Hour
	if profile == gossip.ProfileFast {
		inheritAfter = kvs.FastTimings().ReapAfter
	}
	a.nameSettle = 300 * time.Millisecond
	if profile == gossip.ProfileFast {
		a.nameSettle = 150 * time.Millisecond
	}
	a.awayLong = !st.SavedAt.IsZero() && len(cfg.Join) > 0 && time.Since(st.SavedAt) > inheritAfter/2
	rows := st.Rows
	if a.awayLong {
		rows = nil
		for _, r := range st.Rows {
			if r.Table != tables.Endpoints {
				rows = append(rows, r)
			}
		}
	}

	kc := kvs.DefaultConfig()
	if profile == gossip.ProfileFast {
		kc = kvs.FastTimings()
	}
	kc.InitialClock, kc.InitialRows, kc.InitialEntries, kc.Logger = st.Clock, rows, st.Cluster, cfg.Logger
	kc.ClusterTables, kc.FirstClaim, kc.AdoptOwnRows = clusterTables, []string{tables.Endpoints}, a.recovering.Load()
	gc := gossip.Config{Name: cfg.Name, BindAddr: vtep.String(), BindPort: cfg.GossipPort, Seeds: cfg.Join, Profile: profile,
		Keys: keys, Meta: gossip.Meta{VTEP: vtep.String(), Version: cfg.Version}, Logger: cfg.Logger}
	gossipAddr := net.JoinHostPort(vtep.String(), strconv.Itoa(cfg.GossipPort))
	if a.kv, err = retryBind(a.log, "gossip", gossipAddr, cfg.BindTimeout, func() (*kvs.Gossip, error) { return kvs.NewGossip(kc, gc) }); err != nil {
		return nil, err
	}
	fail := func(err error) (*Agent, error) {
		a.close()
		return nil, err
	}
	a.table = kvstable.New(a.kv)
	gcfg := ipam.GlobalConfig{Table: a.table, Store: a.store, Logger: cfg.Logger, OnLost: a.onLost}
	if profile == gossip.ProfileFast {
		gcfg.Settle, gcfg.InheritAfter = 300*time.Millisecond, kc.ReapAfter
	}
	if a.ipam, err = ipam.NewGlobal(gcfg); err != nil {
		return fail(err)
	}
	dc := dns.DefaultConfig()
	if cfg.DNSUpstreams != nil {
		dc.Upstreams = cfg.DNSUpstreams
	}
	dc.Logger = cfg.Logger
	if a.dns, err = dns.New(dc); err != nil {
		return fail(err)
	}
	vxlanAddr := net.JoinHostPort(vtep.String(), strconv.Itoa(cfg.VXLANPort))
	if a.sw, err = retryBind(a.log, "vxlan", vxlanAddr, cfg.BindTimeout, func() (*dataplane.Switch, error) {
		return dataplane.Listen(dataplane.ListenConfig{Addr: vtep, Port: uint16(cfg.VXLANPort), MTU: cfg.MTU, RxQueues: cfg.RxQueues, Logger: cfg.Logger})
	}); err != nil {
		return fail(err)
	}
	a.host = hostnet.NewHost(a.sw, cfg.MTU, cfg.Logger)
	if cfg.HNS == nil && runtime.GOOS == "windows" {
		if cfg.HNS, err = hns.NewHCN(); err != nil {
			return fail(fmt.Errorf("host networking service: %w", err))
		}
	}
	if cfg.HNS != nil {
		a.hnsProg = hns.NewProgrammer(cfg.HNS, cfg.Logger)
		// Endpoints a previous run left behind (moby#39098): gone before
		// anything attaches.
		if err := a.hnsProg.Cleanup(); err != nil {
			a.log.Warn("removing HNS endpoints left by a previous run", "error", err)
		}
	}
	return a, nil
}

// Run joins the cluster, brings back this host's endpoints, serves the API
// and reconciles until ctx ends; then it leaves the cluster gracefully
// (the endpoints' devices go with the process).
func (a *Agent) Run(ctx context.Context) error {
	// Deferred in this order so that, on every return, the goroutines are
	// told to stop (cancel), waited for, and only then is everything closed.
	defer a.close()
	defer a.stopBackground()
	defer a.stopRun()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	swDone := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); swDone <- a.sw.Run(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); kvstable.Run(ctx, a.table, a.ipam) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineReconcile(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routinePersist(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineDHCPRenew(ctx) }()

	joined := make(chan struct{})
	if len(a.cfg.Join) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// Short attempts, so that a shutdown is not held up by an
				// unreachable seed.
				if k, err := a.kv.Node().Join(2 * time.Second); err == nil {
					a.log.Info("joined the cluster", "nodes", k)
					close(joined)
					return
				} else {
					a.log.Warn("join failed; retrying", "peerAddr", fmt.Sprint(a.cfg.Join), "error", err)
				}
			}
		}()
		if a.recovering.Load() {
			a.log.Info("recovering this host's state from the cluster: waiting to join")
			if a.catchUp(ctx, joined, true) {
				a.adoptFromCluster()
			}
		} else if a.awayLong {
			// Its address blocks may have passed to other hosts: learn
			// that before any container sends from them.
			a.log.Info("this host was away long enough for its address blocks to pass to others; restoring its endpoints once it has caught up with the cluster",
				"reason", "away since "+a.store.snapshot().SavedAt.Format(time.RFC3339))
			a.catchUp(ctx, joined, false)
		}
	}
	a.restoreEndpoints()
	stopAPI, err := a.serveAPI(a.cfg.APISocket)
	if err != nil {
		return err
	}
	defer stopAPI()
	if a.cfg.MetricsAddr != "" {
		stopMetrics, err := a.serveMetrics(a.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if a.cfg.PprofAddr != "" {
		stopPprof, err := a.servePprof(a.cfg.PprofAddr)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	a.log.Info("agent running", "node", a.cfg.Name, "underlayAddr", a.vtep.String(), "apiSocket", a.cfg.APISocket)

	select {
	case <-ctx.Done():
	case err := <-swDone:
		if err != nil {
			return fmt.Errorf("dataplane: %w", err)
		}
	}
	stopAPI() // no request may change state after the last save
	a.persist()
	if err := a.kv.Node().Leave(5 * time.Second); err != nil {
		a.log.Warn("leave", "error", err)
	}
	a.log.Info("agent stopped", "node", a.cfg.Name)
	return nil
}

func (a *Agent) close() {
	a.stopRun()
	if a.host != nil {
		if err := a.host.Close(); err != nil {
			a.log.Warn("removing the nat rules", "error", err)
		}
	}
	if a.sw != nil {
		a.sw.Close()
	}
	a.mu.Lock()
	resolvers := a.netns
	a.netns = map[string]*nsResolver{}
	a.mu.Unlock()
	for _, r := range resolvers {
		r.l.Close()
	}
	if a.dns != nil {
		a.dns.Close()
	}
	if a.kv != nil {
		a.kv.Close()
	}
}

// persist saves this host's own rows and clock.
func (a *Agent) persist() {
	if a.recovering.Load() {
		return // nothing of this host's is known yet: the file would lie
	}
	self := a.cfg.Name
	// The snapshot is taken under the store's lock, so that two saves
	// never write an older snapshot over a newer one.
	err := a.store.update(func(st *localState) {
		var rows []kvs.Row
		for _, e := range a.kv.List("") {
			if e.Owner == self && !isClusterTable(e.Table) {
				rows = append(rows, kvs.Row{Table: e.Table, Key: e.Key, Value: e.Value})
			}
		}
		st.Rows, st.Cluster, st.Clock = rows, a.kv.ClusterEntries(), a.kv.Clock()
	})
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// routinePersist saves this host's rows whenever it writes one (ipam's
// grants come from its own goroutine), and the cluster's rows whenever one
// changes, at most every 50 ms.
func (a *Agent) routinePersist(ctx context.Context) {
	_, events, cancel := a.kv.Watch("")
	defer cancel()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Entry.Owner == a.cfg.Name || isClusterTable(ev.Entry.Table) {
				t.Reset(50 * time.Millisecond)
			}
		case <-t.C:
			a.persist()
		}
	}
}
