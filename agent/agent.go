package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/internal/bindretry"
	"github.com/vxnet/vxnet/internal/jobs"
	"github.com/vxnet/vxnet/internal/leftout"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/ipam/kvstable"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// clusterTables are the kvs tables whose rows belong to the cluster
// (kvs.Config.ClusterTables): networks, services, join tokens, the
// gossip key rotation, and IPAM's subnet claims. The endpoints table is host-scoped, first claim wins (kvs.Config.FirstClaim).
var clusterTables = append([]string{tables.Networks, tables.Services, tables.Tokens, tables.GossipKeys, tables.Forgotten}, kvstable.ClusterTables...)

// hostTables are the kvs tables whose rows are their host's: endpoints
// and IPAM's address blocks. Every table is one of these or a cluster
// table.
var hostTables = []string{tables.Endpoints, kvstable.TableName}

// Agent is one host's vxnet: cluster membership and tables, IPAM, DNS and
// the data plane, and the API.
type Agent struct {
	cfg   config.Config
	log   *slog.Logger
	vtep  netip.Addr
	store *hoststate.Store
	kv    kvs.Tables
	fatal chan error // a reason to stop that a routine found
	// leaving: Leave has left the cluster; Run returns.
	leaving chan struct{}
	left    bool // Leave began: no endpoint is made any more (under mu)
	// losingSince: when each local endpoint was first seen losing its
	// name to another host's (settleConflicts; under mu).
	losingSince map[string]time.Time
	table       *kvstable.Table
	ipam        *ipam.Global
	dns         *dns.Server
	// resolvers serve DNS in the namespaces of this host's endpoints.
	resolvers *dns.Namespaces
	sw        *dataplane.Switch
	// join is the join service's certificate; nil without one.
	join *joinService
	seal *sealing // this host's keys for encrypted networks, and its peers' (seal.go)
	// gossipEncrypted: the cluster's gossip is encrypted and authenticated
	// (a gossip key), which encrypted networks' keys rely on.
	gossipEncrypted bool
	// rotationAwaits: a gossip key rotation row waits for its initiator to
	// be in sight (routineGossipKeys tries it again).
	rotationAwaits atomic.Bool
	host           *hostnet.Host // gateways and netfilter rules of this host's nat networks
	// hnsProg programs the Host Networking Service (Windows); nil elsewhere.
	hnsProg *hns.Programmer

	recMu sync.Mutex                    // one reconcileNow at a time; taken before mu
	gwDNS map[netip.AddrPort]gatewayDNS // resolvers on gateways (handover.go); under recMu
	// readdressHook, for tests, is called in each round of a readdress
	// with the new addresses, once leased and before the endpoint has them.
	readdressHook func(key string, fresh []netip.Prefix)
	// heldTimer rebuilds when the first name hold of a down host's
	// endpoints ends (DNS stops answering those names). Under recMu.
	heldTimer *time.Timer
	retrying  atomic.Bool  // a reconcile is due (retryReconcile)
	retryWait atomic.Int64 // how long the next retryReconcile waits, as a time.Duration; 0: a second
	mu        sync.Mutex
	// The tables, decoded (view.go).
	networks  map[string]tables.Network  // every network by name: the winning creation
	creations map[string]tables.Network  // every creation, by key
	rows      map[string]tables.Endpoint // every endpoint row, by key
	owners    map[string]string          // the writer of every endpoint row, by key, decoded or not
	services  map[string]tables.Service  // every service row, by key (services.go)
	// vipLeases are the VIPs this host leased for services, by service
	// key (services.go).
	vipLeases map[string][]netip.Addr
	// meshAddrs are this host's routing-mesh addresses, by network
	// (mesh.go).
	meshAddrs map[string][]netip.Addr
	down      map[string]tables.Endpoint // this host's endpoints taken out of service, by key
	local     map[string]*localEndpoint
	pending   map[string]struct{} // endpoints being created
	ports     map[string]string   // host ports ("8080/tcp") reserved by endpoints being created
	// reserved: addresses reserved for a runtime (handover.go), by
	// network.
	reserved map[string]map[netip.Addr]*reservation
	resSave  sync.Mutex          // one saveReserved at a time: a later list is never overwritten by an earlier
	creating map[string]struct{} // names of networks and endpoints being created (names.go)
	skipped  *leftout.Reporter   // bad rows the rebuilt tables leave out (internal/leftout)
	kick     chan struct{}
	// svcCounters and taskCounters count services' flows in the switch,
	// by service key and by service key|endpoint (services.go).
	svcMu        sync.Mutex
	vipMu        sync.Mutex // one settleVIPs at a time (services.go)
	svcCounters  map[string]*dataplane.ServiceCounters
	taskCounters map[string]*dataplane.TaskCounters

	awayLong   bool              // back after long enough for its blocks to have passed to others
	claims     map[string]uint64 // the state file's endpoint rows' claims to their names (kvs.Row.Claim), by key
	nameSettle time.Duration     // how long endpoint create waits for a competing claim of its name
	// startKeys are the gossip keys the agent started with.
	startKeys [][]byte
	// gossipKeyMu orders the steps of gossip key rotations this host
	// follows; rotation is the last one (kept in the data directory).
	gossipKeyMu sync.Mutex
	rotation    rotationState
	// forgetMu orders the handing of the Forgotten table to the store;
	// forgetSeen is the version of the last row naming this host (each
	// has its endpoints claim anew once).
	forgetMu   sync.Mutex
	forgetSeen uint64
	// wasForgotten: a row of the Forgotten table names this host, and its
	// endpoints have not claimed their names anew yet (until then, they
	// lose those claimed before the forget).
	wasForgotten atomic.Bool
	// forgetKept are the local endpoints made before this host was
	// forgotten (keptThroughForget). Under mu.
	forgetKept map[string]bool
	// caughtUp is closed once a joining agent has the cluster's tables
	// (or gave up waiting), at once without --join.
	caughtUp chan struct{}
	// announceMu serializes the gossip metadata's announcements.
	announceMu sync.Mutex
	// rotatingGossip: a gossip key rotation started here is under way.
	rotatingGossip atomic.Bool
	recovering     atomic.Bool // rebuilding this host's state from the cluster (Config.Recover)
	// runCtx ends when Run returns (stopRun); bg runs work started
	// outside the request path (readdressing), waited for before closing.
	ready   chan struct{} // closed once Run has restored the endpoints and serves the API
	runCtx  context.Context
	stopRun context.CancelFunc
	bg      jobs.Group
}

// localEndpoint is an endpoint of this host: its port on the switch.
type localEndpoint struct {
	rec  tables.Endpoint
	port *dataplane.Port
	dev  tun.Device // the port's device, when handed over (its end is ours)
	// handOnce: a handed-over device is recorded in its container once
	// (handover.go).
	handOnce sync.Once
	// writeMu is held by a runtime's change of the record and row
	// (handover.go: own); an owner (removing) waits for it once
	// (waitWriters), so that nothing is written after it takes over.
	writeMu  sync.Mutex
	ns       string // namespace path
	removing bool   // a RemoveEndpoint, readdress or takeDown owns it
	// relost: IPAM took addresses of the endpoint's network while it was
	// being readdressed (its new ones among them, maybe): the readdress
	// checks its leases again before it lets go.
	relost bool
	// busy: being created or restored; conflicts wait until it is done
	// (settled), since its row may not be written yet.
	busy bool
	// dhcpRetry: the renewal routine leaves a lost lease alone until then.
	dhcpRetry time.Time
}

// waitWriters waits for a runtime's change of le in progress; called by
// a new owner (le.removing just set), after which none starts.
func (le *localEndpoint) waitWriters() {
	le.writeMu.Lock() // a barrier: held by a change in progress, if any
	le.writeMu.Unlock()
}

// New prepares an agent: the data directory, the tables with this host's
// own rows put back, IPAM, DNS and the switch. Run starts it.
func New(cfg config.Config) (*Agent, error) {
	cfg.SetDefaults()
	vtep, keys, profile, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, vtep: vtep, networks: map[string]tables.Network{}, rows: map[string]tables.Endpoint{}, owners: map[string]string{},
		creations: map[string]tables.Network{}, down: map[string]tables.Endpoint{},
		services: map[string]tables.Service{}, vipLeases: map[string][]netip.Addr{}, meshAddrs: map[string][]netip.Addr{},
		svcCounters: map[string]*dataplane.ServiceCounters{}, taskCounters: map[string]*dataplane.TaskCounters{}, losingSince: map[string]time.Time{},
		local: map[string]*localEndpoint{}, reserved: map[string]map[netip.Addr]*reservation{}, pending: map[string]struct{}{}, ports: map[string]string{}, kick: make(chan struct{}, 1), ready: make(chan struct{}), fatal: make(chan error, 1), leaving: make(chan struct{}, 1), gwDNS: map[netip.AddrPort]gatewayDNS{}, caughtUp: make(chan struct{})}
	a.runCtx, a.stopRun = context.WithCancel(context.Background())
	if err := a.openJoin(); err != nil {
		return nil, err
	}
	var recovering bool
	a.store, recovering, err = hoststate.OpenAgent(cfg.DataDir, cfg.Recover, len(cfg.Join) > 0, cfg.Logger)
	if errors.Is(err, hoststate.ErrRecoveryNeedsJoin) {
		return nil, &config.Error{Field: "join", Reason: err.Error()}
	} else if err != nil {
		return nil, err
	}
	a.recovering.Store(recovering)
	if a.join != nil {
		// The first host of a cluster set up with init names no member
		// to join, and a host that joined names those of that moment,
		// who may be gone since: after a restart it joins those it last
		// saw too (not for --recover alone, which needs members the
		// settings name).
		var more []string
		for _, s := range rememberedSeeds(cfg.DataDir, a.join.pin) {
			if !slices.Contains(cfg.Join, s) {
				more = append(more, s)
			}
		}
		if len(more) > 0 {
			cfg.Join = append(slices.Clone(cfg.Join), more...)
			a.cfg.Join = cfg.Join
			a.log.Info("joining the members this host last saw", "peerAddr", strings.Join(more, ","))
		}
	}
	a.nameSettle = 300 * time.Millisecond
	if profile == gossip.ProfileFast {
		a.nameSettle = 150 * time.Millisecond
	}
	if a.seal, err = openSealing(cfg.DataDir); err != nil {
		return nil, &config.Error{Field: "data-dir", Reason: err.Error()}
	}
	a.gossipEncrypted, a.startKeys = len(keys) > 0, keys
	a.rotation = loadRotationState(cfg.DataDir)
	kc, err := a.openTables(keys, profile)
	if err != nil {
		return nil, err
	}
	if err := a.openParts(kc, profile); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// namespaceLives reports whether an endpoint row of host's has its
// namespace still (or none: an HNS endpoint, or a row that does not
// decode).
func namespaceLives(r kvs.Row, host string) bool {
	ep, err := tables.DecodeEndpoint(r.Key, host, r.Value)
	if err != nil || ep.Netns == "" {
		return true
	}
	_, err = os.Stat(netnsPath(ep.Netns))
	return err == nil
}

// openTables joins gossip with this host's rows put back: all of them, but
// its endpoints' when it was away long enough for its blocks to have
// passed to others (they wait until their addresses are checked).
func (a *Agent) openTables(keys [][]byte, profile gossip.Profile) (kvs.Config, error) {
	cfg, st := a.cfg, a.store.Snapshot()
	kc := kvs.DefaultConfig()
	if profile == gossip.ProfileFast {
		kc = kvs.FastTimings()
	}
	a.awayLong = !st.SavedAt.IsZero() && len(cfg.Join) > 0 && time.Since(st.SavedAt) > kc.ReapAfter/2
	// An endpoint keeps the claim to its name it had, so that one made
	// elsewhere while this host was down does not win it, unless this
	// host was away so long that the others dropped its rows (then it is
	// new to them), or the endpoint's namespace is gone (its row goes at
	// once and must not take the name from a live one meanwhile).
	reaped := !st.SavedAt.IsZero() && time.Since(st.SavedAt) > kc.ReapAfter
	a.claims = map[string]uint64{}
	rows := make([]kvs.Row, 0, len(st.Rows))
	for _, r := range st.Rows {
		if r.Table == tables.Endpoints {
			if reaped || !namespaceLives(r, cfg.Name) {
				r.Claim = 0
			}
			a.claims[r.Key] = r.Claim
			if a.awayLong {
				continue // put back once their addresses are checked
			}
		}
		rows = append(rows, r)
	}
	kc.InitialClock, kc.InitialRows, kc.InitialEntries, kc.InitialOthers, kc.Logger = st.Clock, rows, st.Cluster, st.Others, cfg.Logger
	kc.ClusterTables, kc.FirstClaim, kc.AdoptOwnRows = clusterTables, []string{tables.Endpoints}, a.recovering.Load()
	gc := gossip.Config{Name: cfg.Name, BindAddr: a.vtep.String(), BindPort: cfg.GossipPort, Seeds: cfg.Join, Profile: profile,
		Keys: keys, Meta: a.seal.meta(a.baseMeta()), Logger: cfg.Logger}
	gossipAddr := net.JoinHostPort(a.vtep.String(), strconv.Itoa(cfg.GossipPort))
	var err error
	if cfg.Store != config.StoreEtcd {
		a.kv, err = bindretry.Retry(a.log, "gossip", gossipAddr, cfg.BindTimeout, func() (kvs.Tables, error) { return kvs.NewGossip(kc, gc) })
		return kc, err
	}
	tlsCfg, err := cfg.EtcdTLS()
	if err != nil {
		return kc, err
	}
	ec := kvs.EtcdConfig{Endpoints: cfg.EtcdEndpoints, Prefix: cfg.EtcdPrefix, TLS: tlsCfg, LeaseTTL: cfg.EtcdLeaseTTL}
	a.kv, err = bindretry.Retry(a.log, "gossip", gossipAddr, cfg.BindTimeout, func() (kvs.Tables, error) { return kvs.NewEtcd(kc, ec, gc) })
	if err == nil {
		a.log.Info("the tables are kept in etcd; gossip tells who is alive", "endpoints", strings.Join(cfg.EtcdEndpoints, ","), "prefix", kvs.EtcdPrefix(cfg.EtcdPrefix))
	}
	return kc, err
}

// openParts makes IPAM, DNS, the switch and the host side over the tables.
func (a *Agent) openParts(kc kvs.Config, profile gossip.Profile) error {
	cfg := a.cfg
	a.table = kvstable.New(a.kv)
	gcfg := ipam.GlobalConfig{Table: a.table, Store: a.store, Logger: cfg.Logger, OnLost: a.onLost, Forgotten: a.forgottenHost,
		Avoid: a.avoidForSubnets}
	if profile == gossip.ProfileFast {
		gcfg.Settle, gcfg.InheritAfter = 300*time.Millisecond, kc.ReapAfter
	}
	var err error
	if a.ipam, err = ipam.NewGlobal(gcfg); err != nil {
		return err
	}
	dc := dns.DefaultConfig()
	if cfg.DNSUpstreams != nil {
		dc.Upstreams = cfg.DNSUpstreams
	}
	dc.Logger = cfg.Logger
	if a.dns, err = dns.New(dc); err != nil {
		return err
	}
	a.resolvers = dns.NewNamespaces(a.dns, cfg.BindTimeout, cfg.Logger)
	vxlanAddr := net.JoinHostPort(a.vtep.String(), strconv.Itoa(cfg.VXLANPort))
	if a.sw, err = bindretry.Retry(a.log, "vxlan", vxlanAddr, cfg.BindTimeout, func() (*dataplane.Switch, error) {
		return dataplane.Listen(dataplane.ListenConfig{Addr: a.vtep, Port: uint16(cfg.VXLANPort), MTU: cfg.MTU, RxQueues: cfg.RxQueues, Logger: cfg.Logger})
	}); err != nil {
		return err
	}
	a.host = hostnet.NewHost(a.sw, cfg.MTU, cfg.Logger, hostnet.Guard{VXLANPort: uint16(cfg.VXLANPort), GossipPort: uint16(cfg.GossipPort), SysctlDir: cfg.SysctlDir})
	if err := a.openHNS(); err != nil {
		return err
	}
	leftOut := []string{tableForwarding, tableDNS, tablePlan, tableKeys}
	if a.hnsProg != nil {
		leftOut = append(leftOut, tableHNS)
	}
	a.skipped = leftout.New(a.log, leftOut...)
	return nil
}

// openHNS opens the Host Networking Service, on Windows or when given.
func (a *Agent) openHNS() error {
	if a.cfg.HNS == nil && runtime.GOOS == "windows" {
		var err error
		if a.cfg.HNS, err = hns.NewHCN(); err != nil {
			return fmt.Errorf("host networking service: %w", err)
		}
	}
	if a.cfg.HNS == nil {
		return nil
	}
	a.hnsProg = hns.NewProgrammer(a.cfg.HNS, a.log)
	// Endpoints a previous run left behind (moby#39098): gone before
	// anything attaches.
	if err := a.hnsProg.Cleanup(); err != nil {
		a.log.Warn("removing HNS endpoints left by a previous run", "error", err)
	}
	return nil
}

// Run joins the cluster, brings back this host's endpoints, serves the API
// and reconciles until ctx ends; then it stops: it saves its state and
// leaves its rows in the cluster, as a host that is down and will be back
// (the endpoints' devices go with the process).
func (a *Agent) Run(ctx context.Context) error {
	// Deferred in this order so that, on every return, the goroutines are
	// told to stop (cancel), waited for, and only then is everything closed.
	defer a.close()
	defer a.bg.Close()
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
	nets, eps, svcs, stopWatch := a.watchTables()
	defer stopWatch()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineReconcile(ctx, nets, eps, svcs) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routinePersist(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineKeys(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineGossipKeys(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineForgotten(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineRememberMembers(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineDHCPRenew(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.routineGoneNamespaces(ctx) }()

	if len(a.cfg.Join) > 0 {
		joined := make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); a.routineJoin(ctx, cancel, joined) }()
		// Until it has the cluster's tables, DNS leaves names it does not
		// know unanswered (a restarted agent would otherwise deny, for a
		// moment, the names of other hosts' containers).
		a.dns.SetCatchingUp(true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(a.caughtUp)
			defer a.dns.SetCatchingUp(false)
			t := time.NewTimer(catchUpMax)
			defer t.Stop()
			select {
			case <-joined:
				// The tables flow in from the join on: caught up once
				// they stop changing (the DNS records are rebuilt by
				// then), or after dnsCatchUpMax of steady churn.
				a.kv.WaitQuiet(ctx, catchUpQuiet, dnsCatchUpMax)
			case <-t.C:
			case <-ctx.Done():
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
			a.log.Info("this host was away long enough that its address blocks may have passed to others; restoring its endpoints once it has caught up with the cluster",
				"reason", "away since "+a.store.Snapshot().SavedAt.Format(time.RFC3339))
			a.catchUp(ctx, joined, false)
		}
	} else {
		close(a.caughtUp) // nothing to catch up with
	}
	a.restoreEndpoints()
	// resolv.conf files an earlier run wrote for namespaces that are gone
	// (deleted while their endpoint lived, or a lost state's). Not on
	// Windows (HNS), which has none.
	if a.hnsProg == nil {
		if cleaned, err := dns.SweepNetnsResolvConfs(dns.NetnsConfDir, netnsDir); err != nil {
			a.log.Warn("sweeping resolv.conf files of namespaces that are gone", "error", err)
		} else if len(cleaned) > 0 {
			a.log.Info("removed resolv.conf files of namespaces that are gone", "count", len(cleaned))
		}
	}
	stopAPI, err := a.serveAPI(a.cfg.APISocket)
	if err != nil {
		return err
	}
	defer stopAPI()
	a.seedTokens()
	stopJoin, err := a.serveJoin()
	if err != nil {
		return err
	}
	defer stopJoin()
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	a.log.Info("agent running", "node", a.cfg.Name, "underlayAddr", a.vtep.String(), "apiSocket", a.cfg.APISocket, "mtu", a.cfg.MTU, "mtuFrom", a.cfg.MTUFrom)
	close(a.ready)
	a.kickReconcile() // what waits for ready (services' VIPs, the routing mesh)

	var swErr error
	select {
	case <-ctx.Done():
	case swErr = <-swDone:
	case <-a.leaving: // Leave did the rest
		stopAPI()
		a.persist()
		a.log.Info("agent stopped", "node", a.cfg.Name)
		return nil
	}
	// A routine that found a reason to stop sent it, then stopped the
	// run, which stops the switch too: either may be seen first.
	select {
	case err := <-a.fatal:
		// Refused by the cluster (another store, say) or broken: this
		// run leaves, so the others do not wait for it (a stop, below,
		// does not).
		for _, why := range a.leaveCluster(2 * time.Second) {
			a.log.Warn("leaving the cluster", "reason", why)
		}
		return err
	default:
	}
	if swErr != nil {
		return fmt.Errorf("dataplane: %w", swErr)
	}
	stopAPI() // no request may change state after the last save
	a.persist()
	// A stop is not a leave: the host is down, not gone (a restart, an
	// upgrade). Its rows stay in the cluster as a crashed host's do, so
	// its names are not handed to others and its networks are not
	// removed while it is away; the others see it down once failure
	// detection notices.
	a.log.Info("agent stopped", "node", a.cfg.Name)
	return nil
}

// checkStores makes sure every member keeps the tables where this host
// does: a cluster keeps them in one store at a time.
func (a *Agent) checkStores() error {
	me := a.baseMeta()
	for _, m := range a.kv.Node().Members() {
		if m.Meta.Store != me.Store {
			return &config.Error{Field: "store", Value: storeName(me.Store), Reason: fmt.Sprintf(
				"host %s of the cluster keeps the tables in %s: a cluster keeps them in one store at a time. Start this agent with --store %s, or move the whole cluster (vxnet store export, then vxnet store import, then every agent restarted with the same --store)",
				m.Name, storeName(m.Meta.Store), storeName(m.Meta.Store))}
		}
		if m.Meta.StorePrefix != me.StorePrefix && m.Meta.StorePrefix != "" {
			return &config.Error{Field: "etcd-prefix", Value: me.StorePrefix, Reason: fmt.Sprintf(
				"host %s of the cluster keeps the tables under %s: every agent of a cluster uses the same --etcd-prefix (and etcd)", m.Name, m.Meta.StorePrefix)}
		}
	}
	return nil
}

// etcdPrefix is the etcd prefix the tables are under, as the etcd
// backend spells it.
func (a *Agent) etcdPrefix() string { return kvs.EtcdPrefix(a.cfg.EtcdPrefix) }

func storeName(s string) string {
	if s == "" {
		return config.StoreGossip
	}
	return s
}

// Ready is closed once the agent serves its API, its endpoints restored:
// a plugin served before then waits for it.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// MTU is the containers' MTU on this host (--mtu, or the default the
// agent worked out from the underlay interface).
func (a *Agent) MTU() int { return a.cfg.MTU }

// NetworkMTU is the containers' MTU on a network with options opts on this
// host: MTU, less what sealing takes on an encrypted network.
func (a *Agent) NetworkMTU(opts map[string]string) int { return plan.NetworkMTU(a.cfg.MTU, opts) }

// routineJoin joins the cluster, retrying until it can or ctx ends, in
// short attempts so that a shutdown is not held up by an unreachable seed.
func (a *Agent) routineJoin(ctx context.Context, stop context.CancelFunc, joined chan<- struct{}) {
	var said string
	var saidAt time.Time
	for ctx.Err() == nil {
		k, err := a.kv.Node().Join(2 * time.Second)
		if err == nil {
			if by := a.kv.Node().NameTakenBy(); by != "" {
				// The others ignore this host: it would take the member's
				// rows for its own.
				a.fatal <- fmt.Errorf("the name %q is taken by a live member at %s: give this host a name of its own (--name); if that was this host's own address before, start again once the others have seen it fail", a.cfg.Name, hostOf(by))
				stop()
				return
			}
			if err := a.checkStores(); err != nil {
				a.fatal <- err
				stop()
				return
			}
			a.log.Info("joined the cluster", "nodes", k)
			close(joined)
			return
		}
		if ctx.Err() != nil {
			return // stopping: not a failure to report
		}
		// Said again when it changes, else every half minute.
		if msg := err.Error(); msg != said || time.Since(saidAt) >= 30*time.Second {
			said, saidAt = msg, time.Now()
			args := []any{"peerAddr", fmt.Sprint(a.cfg.Join), "error", err}
			if hint := joinHint(msg); hint != "" {
				args = append(args, "hint", hint)
			}
			a.log.Warn("join failed; retrying", args...)
		}
	}
}

// joinHint says what a join failure's usual cause is, when it is known.
func joinHint(msg string) string {
	switch {
	case strings.Contains(msg, "encryption is not configured"):
		return "the cluster encrypts its gossip: start this agent with --gossip-key-file holding the cluster's key, or join with a join token (vxnet cluster join --help)"
	case strings.Contains(msg, "no installed keys could decrypt"):
		return "this agent's gossip key is not the cluster's: give --gossip-key-file the key the other hosts use, or join with a join token"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "no route to host"):
		return "no agent answers at the join address: is it running, and is its gossip port open?"
	}
	return ""
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
	if a.resolvers != nil {
		a.resolvers.Close()
	}
	a.closeGatewayDNS()
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
	// The snapshot is taken under the store's lock, so that two saves
	// never write an older snapshot over a newer one.
	err := a.store.Update(func(st *hoststate.State) {
		st.Rows, st.Cluster, st.Others, st.Clock = a.kv.OwnRows(), a.kv.ClusterEntries(), a.kv.OthersEntries(), a.kv.Clock()
	})
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// routinePersist saves this host's rows whenever it writes one (ipam's
// grants come from its own goroutine), and the cluster's rows whenever one
// changes (with etcd, any row), at most every 50 ms.
func (a *Agent) routinePersist(ctx context.Context) {
	_, events, cancel := a.kv.Watch("")
	defer cancel()
	t := time.NewTimer(time.Hour)
	t.Stop()
	// With etcd, the other hosts' rows are saved too (they are what a
	// restart while etcd is down serves, State.Others), at most once a
	// second: a cluster's churn does not rewrite the file at its pace.
	others := time.NewTimer(time.Hour)
	others.Stop()
	othersDue := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch {
			case ev.Entry.Owner == a.cfg.Name || a.kv.IsCluster(ev.Entry.Table):
				t.Reset(50 * time.Millisecond)
			case a.cfg.Store == config.StoreEtcd && !othersDue:
				others.Reset(time.Second)
				othersDue = true
			}
		case <-t.C:
			a.persist()
		case <-others.C:
			othersDue = false
			a.persist()
		}
	}
}
