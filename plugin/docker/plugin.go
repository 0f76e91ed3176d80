// Package docker serves Docker's plugin protocol for vxnet: a network
// driver and an IPAM driver, both called "vxnet", so that
//
//	docker network create -d vxnet --ipam-driver vxnet --subnet 10.0.9.0/24 web
//	docker run --network web ...
//
// put Docker's containers on the vxnet network "web", on every host of the
// cluster. The agent serves it on /run/docker/plugins/vxnet.sock, where
// Docker looks for plugins.
//
// A Docker network on the vxnet driver is the vxnet network of the same
// name: the first host whose Docker uses it creates it in the cluster, the
// others find it and check that their options agree. Docker does not tell a
// driver the name of the network it creates, and stores the network only
// once its driver has made it, so the plugin reads the name from Docker's
// API (Engine) just after, and ties the two then; a conflict found at that
// point is the error of the first container that tries the network.
//
// Addresses come from vxnet's cluster IPAM: RequestAddress reserves one
// (Backend.ReserveAddress), the endpoint takes the reservation over, and
// ReleaseAddress ends it, after the endpoint is gone.
//
// At Join the container's namespace is not made yet: the plugin asks the
// agent for a device on the host (EndpointCreate.Handover), and Docker
// moves it into the container and gives it its address and routes. The
// endpoint is named after the container.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/names"
)

// Name is the plugin's name: the driver name Docker users give (-d vxnet,
// --ipam-driver vxnet), and its socket's name under /run/docker/plugins.
const Name = "vxnet"

// DefaultSocket is where Docker looks for the plugin.
const DefaultSocket = "/run/docker/plugins/vxnet.sock"

// Labels vxnet keeps with the endpoint of a Docker container.
const (
	LabelEndpoint  = "docker.endpoint"  // Docker's endpoint ID
	LabelNetwork   = "docker.network"   // Docker's network ID
	LabelContainer = "docker.container" // the container's name
)

// LabelService is the container label (docker run --label
// vxnet.service=NAME) that makes the container's endpoint one of the
// service NAME: NAME answers with every such container's address, in a new
// order each time, and tasks.NAME with all of them.
const LabelService = "vxnet.service"

// Options of a Docker network (-o KEY=VALUE) that vxnet reads.
const (
	// OptDriver picks the vxnet driver: overlay (the default), nat,
	// transparent, l2bridge or l2tunnel.
	OptDriver = "vxnet.driver"
	// OptPrefix: -o vxnet.KEY=VALUE is the vxnet network's option KEY
	// (vxnet network create -o KEY=VALUE).
	OptPrefix = "vxnet."
)

// Backend is what the plugin needs of the agent.
type Backend interface {
	Network(name string) (api.Network, bool)
	Networks() []api.Network
	CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error)
	// CheckNetwork checks a request, but for its name, without creating.
	CheckNetwork(req api.NetworkCreate) error
	Endpoints() []api.Endpoint
	CreateEndpoint(ctx context.Context, req api.EndpointCreate) (api.Endpoint, error)
	RemoveEndpoint(network, name string) error
	ReserveAddress(ctx context.Context, network string, ip netip.Addr) (netip.Prefix, error)
	ReleaseAddress(network string, ip netip.Addr) error
	// Reservations lists the addresses reserved and not released.
	Reservations() []api.Reservation
	SetAliases(network, name string, aliases []string) error
	// SetPublish replaces the ports an endpoint publishes.
	SetPublish(network, name string, publish []string) error
	// Host is this host's name in the cluster.
	Host() string
}

// Config configures a Plugin.
type Config struct {
	Backend Backend
	Engine  Engine
	// Ready is closed when the backend can take calls; calls wait for it
	// (the socket is served from the agent's start, so that Docker finds
	// the plugin while the agent joins its cluster).
	Ready <-chan struct{}
	// Stopping is closed when the agent begins to stop: calls are refused
	// from then on, so that nothing changes after its last save.
	Stopping <-chan struct{}
	// Scope is "local" (default: a legacy plugin, Docker without swarm) or
	// "global" (a managed plugin in a swarm).
	Scope string
	// MTU is the agent's: the largest a network's MTU option may be.
	MTU int
	// NetworkMTU, if set, is the MTU of the containers of a network with
	// the given vxnet options (an encrypted network's is lower): the
	// largest its MTU option may be. Nil: MTU for every network.
	NetworkMTU func(options map[string]string) int
	// NetnsRoot is where dockerd's root directory is seen from the agent
	// ("" when they share a mount namespace): a container's namespace,
	// which Docker names by a path of its own, is NetnsRoot+path. A
	// managed plugin, in a container of its own, sees the host's root
	// bind-mounted at /host.
	NetnsRoot string
	Logger    *slog.Logger
}

// Plugin serves the protocol. Its state is Docker's and vxnet's: it keeps
// only the networks whose name it has not read from Docker yet.
type Plugin struct {
	cfg Config
	log *slog.Logger
	// bg is the plugin's own work after a call (naming a network, learning
	// a container's aliases); it ends with Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	tieMu sync.Mutex // one tie at a time
	mu    sync.Mutex
	// tied: Docker network ID → vxnet network name, once read.
	tied map[string]string
	// pools are the swarm manager's (swarm.go).
	pools swarmPools
	// engineAway: a call to Docker's API timed out (dockerd starting
	// and restoring its containers, which calls the plugin before its
	// API answers): calls that need it fail at once, until the API
	// answers again and restartRefused has started what they refused.
	engineAway atomic.Bool
	// collecting: a collect runs (at start-up and when Docker activates
	// the plugin): a second one has nothing to add.
	collecting atomic.Bool
}

// New returns a Plugin; Close stops its work in the background.
func New(cfg Config) *Plugin {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Scope == "" {
		cfg.Scope = "local"
	}
	if cfg.Ready == nil {
		ready := make(chan struct{})
		close(ready)
		cfg.Ready = ready
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.Stopping != nil {
		// The agent stopping ends the plugin's work in the background
		// too: nothing is written after its last save.
		go func() {
			select {
			case <-cfg.Stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return &Plugin{cfg: cfg, log: cfg.Logger.With("plugin", "docker"), ctx: ctx, cancel: cancel,
		tied: map[string]string{}}
}

// Close stops the plugin's work in the background and waits for it.
func (p *Plugin) Close() {
	p.cancel()
	p.wg.Wait()
}

func (p *Plugin) goBG(fn func()) {
	p.wg.Add(1)
	go func() { defer p.wg.Done(); fn() }()
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// reservationGrace is how long an address reserved and not taken over
// by an endpoint is left alone: Docker joins its container within it.
const reservationGrace = time.Minute

// readyWait is how long a call waits for the agent to be ready.
const readyWait = 30 * time.Second

// Handler returns the protocol's routes.
func (p *Plugin) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]func(context.Context, []byte) (any, error){
		"/Plugin.Activate":                           p.activate,
		"/NetworkDriver.GetCapabilities":             p.capabilities,
		"/NetworkDriver.CreateNetwork":               p.createNetwork,
		"/NetworkDriver.DeleteNetwork":               p.deleteNetwork,
		"/NetworkDriver.CreateEndpoint":              p.createEndpoint,
		"/NetworkDriver.DeleteEndpoint":              p.deleteEndpoint,
		"/NetworkDriver.EndpointOperInfo":            p.operInfo,
		"/NetworkDriver.Join":                        p.join,
		"/NetworkDriver.Leave":                       empty,
		"/NetworkDriver.DiscoverNew":                 empty,
		"/NetworkDriver.DiscoverDelete":              empty,
		"/NetworkDriver.ProgramExternalConnectivity": p.programExternal,
		"/NetworkDriver.RevokeExternalConnectivity":  p.revokeExternal,
		"/NetworkDriver.AllocateNetwork":             p.allocateNetwork,
		"/NetworkDriver.FreeNetwork":                 p.freeNetwork,
		"/IpamDriver.GetCapabilities":                ipamCapabilities,
		"/IpamDriver.GetDefaultAddressSpaces":        addressSpaces,
		"/IpamDriver.RequestPool":                    p.requestPool,
		"/IpamDriver.ReleasePool":                    p.releasePool,
		"/IpamDriver.RequestAddress":                 p.requestAddress,
		"/IpamDriver.ReleaseAddress":                 p.releaseAddress,
	}
	for path, fn := range routes {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			var out any
			switch {
			case err != nil:
				err = fmt.Errorf("reading the request: %w", err)
			case len(body) > maxBody:
				err = fmt.Errorf("request body over %d bytes", maxBody)
			case p.stopping():
				err = errors.New("the vxnet agent on this host is stopping; start it again")
			case path != "/Plugin.Activate" && !p.waitReady(r.Context()):
				err = errors.New("the vxnet agent on this host is starting and not ready yet (joining its cluster); try again, or see its log")
			default:
				out, err = fn(r.Context(), body)
			}
			w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
			if p.log.Enabled(r.Context(), slog.LevelDebug) {
				resp, _ := json.Marshal(out)
				p.log.Debug("docker call", "call", strings.TrimPrefix(path, "/"), "request", string(body), "answer", string(resp), "error", err)
			}
			if err != nil {
				p.log.Info("docker call refused", "call", strings.TrimPrefix(path, "/"), "error", err)
				out = errResponse{Err: err.Error(), Error: err.Error()}
			}
			json.NewEncoder(w).Encode(out)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
		w.WriteHeader(http.StatusNotFound)
		msg := fmt.Sprintf("vxnet's Docker plugin has no call %s %s", r.Method, r.URL.Path)
		json.NewEncoder(w).Encode(errResponse{Err: msg, Error: msg})
	})
	return mux
}

func (p *Plugin) stopping() bool {
	select {
	case <-p.cfg.Stopping:
		return true
	default:
		return false
	}
}

func (p *Plugin) waitReady(ctx context.Context) bool {
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-p.cfg.Ready:
		return !p.stopping()
	case <-ctx.Done():
	case <-p.ctx.Done():
	case <-t.C:
	}
	return false
}

// decode reads a request body: one JSON object; fields Docker adds in
// later versions are ignored.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return errors.New("malformed request: empty body, want a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed request: %v", err)
	}
	return nil
}

func empty(context.Context, []byte) (any, error) { return struct{}{}, nil }

// freeNetwork is the swarm manager removing a network.
func (p *Plugin) freeNetwork(_ context.Context, body []byte) (any, error) {
	var req networkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	p.pools.unclaim(req.NetworkID)
	return struct{}{}, nil
}

// allocateNetwork is the swarm manager making a network, before any host
// does: its options are checked here, so that the network fails at once
// (in the manager's log, and at its first container) rather than on every
// node.
func (p *Plugin) allocateNetwork(_ context.Context, body []byte) (any, error) {
	var req allocateNetworkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	opts := map[string]string{}
	for k, v := range req.Options {
		if !strings.HasPrefix(k, "com.docker.network.") || k == optMTU {
			opts[k] = v
		}
	}
	spec, err := p.specOf(opts, false, len(req.IPv6Data) > 0)
	if err != nil {
		return nil, err
	}
	var subnet netip.Prefix
	if len(req.IPv4Data) == 1 {
		if subnet, err = netip.ParsePrefix(req.IPv4Data[0].Pool); err == nil {
			spec.req.Subnet = subnet.String()
		}
	}
	if err := p.cfg.Backend.CheckNetwork(spec.req); err != nil {
		return nil, describe(err)
	}
	if subnet.IsValid() {
		if err := p.pools.claim(subnet.Masked(), req.NetworkID); err != nil {
			return nil, err
		}
	}
	// The nodes' Docker gives the driver the options answered here, and
	// no others.
	return map[string]any{"Options": opts}, nil
}

func (p *Plugin) activate(context.Context, []byte) (any, error) {
	// Docker activates the plugin when it starts and when it first needs
	// it: a good time to drop what a Docker that went away left behind.
	p.goBG(p.collect)
	return activateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}}, nil
}

func (p *Plugin) capabilities(context.Context, []byte) (any, error) {
	return capabilitiesResponse{Scope: p.cfg.Scope, ConnectivityScope: "global"}, nil
}

func ipamCapabilities(context.Context, []byte) (any, error) {
	return ipamCapabilitiesResponse{}, nil
}

func addressSpaces(context.Context, []byte) (any, error) {
	return addressSpacesResponse{LocalDefaultAddressSpace: Name, GlobalDefaultAddressSpace: SwarmSpace}, nil
}

// Pools. A pool's ID is its subnet, and its range after a comma: the same
// on every host, so that one subnet is one vxnet network everywhere.

func (p *Plugin) requestPool(_ context.Context, body []byte) (any, error) {
	var req requestPoolRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.V6 {
		// Checked at CreateNetwork, whose error Docker shows (it loses
		// one of RequestPool's for IPv6 and says "invalid CIDR
		// address"). A pool it does not name is one no network gets.
		if req.Pool == "" {
			req.Pool = unusedV6Pool
		}
		return requestPoolResponse{PoolID: req.Pool, Pool: req.Pool, Data: map[string]string{}}, nil
	}
	if req.Pool == "" {
		return nil, errors.New("--subnet is required: vxnet's IPAM hands out addresses of a subnet that is the same on every host; give the network's subnet (vxnet network ls shows those of existing networks)")
	}
	pool, err := netip.ParsePrefix(req.Pool)
	if err != nil {
		return nil, fmt.Errorf("--subnet %q is not a network address with its prefix length, such as 10.0.9.0/24", req.Pool)
	}
	if pool != pool.Masked() {
		return nil, fmt.Errorf("--subnet %q has host bits set; did you mean %s?", req.Pool, pool.Masked())
	}
	if !pool.Addr().Is4() {
		return nil, fmt.Errorf("--subnet %q: vxnet networks made through Docker are IPv4", req.Pool)
	}
	if pool.Bits() > 30 {
		return nil, fmt.Errorf("--subnet %s is too small: a vxnet network needs at least a /30 (a gateway and a container)", pool)
	}
	for k, v := range req.Options {
		return nil, fmt.Errorf("--ipam-opt %s=%s: vxnet's IPAM takes no options (network options go in -o vxnet.KEY=VALUE)", k, v)
	}
	id := pool.String()
	if req.SubPool != "" {
		sub, err := netip.ParsePrefix(req.SubPool)
		if err != nil || !pool.Contains(sub.Addr()) || sub.Bits() < pool.Bits() {
			return nil, fmt.Errorf("--ip-range %q is not a range inside --subnet %s", req.SubPool, pool)
		}
		id += "," + sub.Masked().String()
	}
	if req.AddressSpace == SwarmSpace { // the swarm manager's allocator
		rng := pool
		if req.SubPool != "" {
			rng = netip.MustParsePrefix(req.SubPool).Masked()
		}
		if first, last := usable(pool, rng); first.Compare(last) > 0 {
			return nil, fmt.Errorf("--ip-range %s holds no address a container may have (not %s's network or broadcast address)", rng, pool)
		}
		id = p.pools.add(id, pool, rng)
	}
	return requestPoolResponse{PoolID: id, Pool: pool.String(), Data: map[string]string{}}, nil
}

// unusedV6Pool answers a request for an IPv6 pool Docker does not name;
// CreateNetwork refuses it before it is used.
const unusedV6Pool = "fd00:0:0:7e57::/64"

// parsePoolID reads a pool ID back: the subnet.
func parsePoolID(id string) (netip.Prefix, error) {
	subnet, _, _ := strings.Cut(poolAddrs(id), ",")
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("pool %q is not one of vxnet's", id)
	}
	return p, nil
}

func (p *Plugin) requestAddress(ctx context.Context, body []byte) (any, error) {
	var req requestAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	pool, err := parsePoolID(req.PoolID)
	if err != nil {
		return nil, err
	}
	var ip netip.Addr
	if req.Address != "" {
		if ip, err = netip.ParseAddr(req.Address); err != nil || !pool.Contains(ip) {
			return nil, fmt.Errorf("address %q is not in the network's subnet %s", req.Address, pool)
		}
	}
	if isSwarmPool(req.PoolID) {
		got, err := p.pools.take(req.PoolID, ip, req.Options[optAddressType] == addressGateway, p.endpointAddrs)
		if err != nil {
			return nil, fmt.Errorf("vxnet: %w", err)
		}
		return requestAddressResponse{Address: got.String()}, nil
	}
	if req.Options[optAddressType] == addressGateway {
		// The gateway is the vxnet network's: its own, or the one it will
		// have; nothing is reserved for it here.
		if !ip.IsValid() {
			ip = p.gatewayOf(pool)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(ip, pool.Bits()).String()}, nil
	}
	if p.swarm() {
		// The address the swarm's manager chose: the endpoint takes it
		// as given (the agent checks that no endpoint holds it).
		if !ip.IsValid() {
			return nil, fmt.Errorf("vxnet: subnet %s: on a swarm network the swarm's manager hands out the addresses; this host's Docker asked for one of its own", pool)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(ip, pool.Bits()).String()}, nil
	}
	if err := p.engineAnswers(); err != nil {
		return nil, err
	}
	dn, ok, err := p.engineNetworkOfPool(ctx, pool)
	if err != nil {
		return nil, p.engineFailed(err)
	}
	if !ok {
		// Before Docker stores the network: its --aux-address, kept out
		// of use by the vxnet network itself.
		if !ip.IsValid() {
			return nil, fmt.Errorf("no Docker network on the vxnet driver has subnet %s on this host", pool)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(ip, pool.Bits()).String()}, nil
	}
	name, err := p.tie(ctx, dn)
	if err != nil {
		return nil, err
	}
	if !ip.IsValid() && pool.Addr().Is6() {
		ip = netip.IPv6Unspecified() // the next free IPv6 address
	}
	got, err := p.cfg.Backend.ReserveAddress(ctx, name, ip)
	var ae *api.Error
	switch {
	case err != nil && (!ip.IsValid() || ip.IsUnspecified()) && errors.As(err, &ae):
		return nil, fmt.Errorf("vxnet: %s", ae.Message) // no --ip was given
	case err != nil:
		return nil, describe(err)
	}
	return requestAddressResponse{Address: got.String()}, nil
}

// gatewayOf is the gateway of the vxnet network of subnet pool, or the
// first address of pool, which vxnet networks take by default.
func (p *Plugin) gatewayOf(pool netip.Prefix) netip.Addr {
	for _, n := range p.cfg.Backend.Networks() {
		gw := n.Gateway
		if n.Subnet6 == pool.String() {
			gw = n.Gateway6
		} else if n.Subnet != pool.String() {
			continue
		}
		if a, err := netip.ParseAddr(gw); err == nil {
			return a
		}
	}
	return pool.Masked().Addr().Next()
}

func (p *Plugin) releasePool(_ context.Context, body []byte) (any, error) {
	var req releasePoolRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if isSwarmPool(req.PoolID) {
		p.pools.release(req.PoolID)
	}
	return struct{}{}, nil
}

func (p *Plugin) releaseAddress(ctx context.Context, body []byte) (any, error) {
	var req releaseAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	pool, err := parsePoolID(req.PoolID)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(req.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q is not an IP address", req.Address)
	}
	switch {
	case isSwarmPool(req.PoolID):
		p.pools.free(req.PoolID, ip)
		return struct{}{}, nil
	case p.swarm():
		return struct{}{}, nil // the manager's: nothing was reserved here
	}
	// Every vxnet network of that subnet: the reservation is in one of
	// them, or in none (a gateway, an aux address, one released already).
	for _, n := range p.cfg.Backend.Networks() {
		if n.Subnet == pool.String() || n.Subnet6 == pool.String() {
			if err := p.cfg.Backend.ReleaseAddress(n.Name, ip); err != nil {
				return nil, describe(err)
			}
		}
	}
	return struct{}{}, nil
}

// errEngineAway is a call refused at once while Docker's API is away.
var errEngineAway = errors.New(engineAwayText + " (dockerd is starting, and restores its containers before it answers): vxnet starts a container with a restart policy that this refused once it does")

const engineAwayText = "Docker's API does not answer"

// engineAnswers refuses a call that needs Docker's API while it is away.
func (p *Plugin) engineAnswers() error {
	if p.engineAway.Load() {
		return errEngineAway
	}
	return nil
}

// engineFailed passes on err, a failed call to Docker's API; a timeout
// takes the API as away (engineAway) until it answers again.
func (p *Plugin) engineFailed(err error) error {
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		return err
	}
	if p.engineAway.CompareAndSwap(false, true) {
		p.log.Warn("Docker's API does not answer: calls that need it are refused until it does", "error", err)
		p.goBG(p.restartRefused)
	}
	return fmt.Errorf("%w (%v)", errEngineAway, err)
}

// restartRefused waits for Docker's API to answer again, then starts the
// containers with a restart policy (always, unless-stopped) on vxnet's
// networks that dockerd could not start meanwhile: it starts them before
// its API answers, and the plugin, which needs that API for a container's
// name, refused them.
func (p *Plugin) restartRefused() {
	var ours map[string]bool // Docker network IDs and names on vxnet
	if !p.retry(p.ctx, 24*time.Hour, func() bool {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		ns, err := p.cfg.Engine.Networks(ctx)
		if err != nil {
			return false
		}
		ours = map[string]bool{}
		for _, n := range ns {
			if isOurs(n.Driver) {
				ours[n.ID], ours[n.Name] = true, true
			}
		}
		return true
	}) {
		return
	}
	p.engineAway.Store(false)
	p.log.Info("Docker's API answers again")
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	ids, err := p.cfg.Engine.Exited(ctx)
	if err != nil {
		p.log.Warn("listing Docker's stopped containers", "error", err)
		return
	}
	for _, id := range ids {
		c, err := p.cfg.Engine.Container(ctx, id)
		if err != nil || c.State.Running || !strings.Contains(c.State.Error, engineAwayText) {
			continue // running, or stopped for a reason of its own
		}
		if pol := c.HostConfig.RestartPolicy.Name; pol != "always" && pol != "unless-stopped" {
			continue
		}
		onOurs := false
		for name, n := range c.NetworkSettings.Networks {
			onOurs = onOurs || ours[name] || ours[n.NetworkID]
		}
		if !onOurs {
			continue
		}
		if err := p.cfg.Engine.Start(ctx, id); err != nil {
			p.log.Warn("starting a container dockerd could not start", "container", strings.TrimPrefix(c.Name, "/"), "error", err)
			continue
		}
		p.log.Info("started a container dockerd could not start while its API was away", "container", strings.TrimPrefix(c.Name, "/"))
	}
}

// engineNetworkOfPool finds the Docker network of this host on the vxnet
// driver with subnet pool.
func (p *Plugin) engineNetworkOfPool(ctx context.Context, pool netip.Prefix) (EngineNetwork, bool, error) {
	ns, err := p.cfg.Engine.Networks(ctx)
	if err != nil {
		return EngineNetwork{}, false, fmt.Errorf("reading Docker's networks: %w", err)
	}
	for _, n := range ns {
		if !isOurs(n.Driver) {
			continue
		}
		for _, c := range n.IPAM.Config {
			if c.Subnet == pool.String() {
				return n, true, nil
			}
		}
	}
	return EngineNetwork{}, false, nil
}

// Networks.

// networkSpec is what a Docker network asks of its vxnet network.
type networkSpec struct {
	req api.NetworkCreate
	mtu int
}

// specOf reads the options of a Docker network (-o, --internal) into a
// vxnet network request; errors name the option.
func (p *Plugin) specOf(opts map[string]string, internal, ipv6 bool) (networkSpec, error) {
	s := networkSpec{req: api.NetworkCreate{Internal: internal, Options: map[string]string{}, AssignedBy: p.assignedBy()}}
	if ipv6 && p.swarm() {
		return s, errors.New("--ipv6: vxnet's swarm networks carry IPv4 alone for now; leave --ipv6 out")
	}
	for _, k := range sortedKeys(opts) {
		v := opts[k]
		switch {
		case k == OptDriver:
			s.req.Driver = v
		case k == optMTU:
			mtu, err := strconv.Atoi(v)
			least := 576
			if ipv6 {
				least = 1280 // IPv6's minimum link MTU
			}
			if err != nil || mtu < least || (p.cfg.MTU > 0 && mtu > p.cfg.MTU) {
				return s, fmt.Errorf("-o %s=%s: want a number from %d to %d (this host's vxnet MTU%s)", k, v, least, p.cfg.MTU, map[bool]string{true: "; 1280 is IPv6's least"}[ipv6])
			}
			s.mtu = mtu
		case strings.HasPrefix(k, OptPrefix) && len(k) > len(OptPrefix):
			if v == "" {
				v = "true" // --opt vxnet.KEY alone, as the CLI's -o KEY
			}
			s.req.Options[strings.TrimPrefix(k, OptPrefix)] = v
		case k == optEncrypted:
			// Docker's overlay takes --opt encrypted; so does vxnet's.
			if v == "" {
				v = "true"
			}
			s.req.Options[optEncrypted] = v // the vxnet option has Docker's name
		default:
			hint := ""
			if !strings.Contains(k, ".") {
				hint = fmt.Sprintf(" (did you mean -o %s%s?)", OptPrefix, k)
			}
			return s, fmt.Errorf("-o %s: vxnet knows no such option%s; it takes %s=overlay|nat|transparent|l2bridge|l2tunnel, %sKEY=VALUE for the vxnet network's own options, %s and %s", k, hint, OptDriver, OptPrefix, optEncrypted, optMTU)
		}
	}
	if s.mtu > 0 && p.cfg.NetworkMTU != nil {
		// Checked once every option is read: encryption lowers the bound.
		if most := p.cfg.NetworkMTU(s.req.Options); s.mtu > most {
			return s, fmt.Errorf("-o %s=%d: want a number from 576 to %d (this host's vxnet MTU, less what encryption takes on an encrypted network)", optMTU, s.mtu, most)
		}
	}
	if len(s.req.Options) == 0 {
		s.req.Options = nil
	}
	return s, nil
}

func (p *Plugin) createNetwork(ctx context.Context, body []byte) (any, error) {
	var req createNetworkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.NetworkID == "" {
		return nil, errors.New("malformed request: NetworkID is empty")
	}
	var generic map[string]string
	var internal, ipv6 bool
	for k, raw := range req.Options {
		var err error
		switch k {
		case optGeneric:
			err = json.Unmarshal(raw, &generic)
		case optInternal:
			err = json.Unmarshal(raw, &internal)
		case optEnableIPv6:
			err = json.Unmarshal(raw, &ipv6)
		}
		if err != nil {
			return nil, fmt.Errorf("malformed request: option %s: %v", k, err)
		}
	}
	spec, err := p.specOf(generic, internal, ipv6)
	if err != nil {
		return nil, err
	}
	if len(req.IPv4Data) != 1 {
		return nil, fmt.Errorf("a vxnet network has one subnet; this one has %d", len(req.IPv4Data))
	}
	d := req.IPv4Data[0]
	if d.AddressSpace != Name {
		return nil, fmt.Errorf("--ipam-driver %s is required: vxnet hands out the addresses of its networks so that no two hosts give out one", Name)
	}
	pool, err := netip.ParsePrefix(d.Pool)
	if err != nil {
		return nil, fmt.Errorf("malformed request: pool %q is not a subnet", d.Pool)
	}
	spec.req.Subnet = pool.String()
	if d.Gateway != "" {
		gw, err := netip.ParsePrefix(d.Gateway)
		if err != nil {
			return nil, fmt.Errorf("--gateway %q is not an address", d.Gateway)
		}
		spec.req.Gateway = gw.Addr().String()
	}
	if ipv6 && len(req.IPv6Data) == 0 {
		return nil, errors.New("--ipv6 needs an IPv6 --subnet beside the IPv4 one (--subnet 10.0.9.0/24 --subnet fd00:9::/64)")
	}
	if err := ipv6Side(&spec.req, req.IPv6Data); err != nil {
		return nil, err
	}
	if !ipv6 && spec.req.Subnet6 != "" {
		return nil, fmt.Errorf("--subnet %s is IPv6: a dual-stack network needs --ipv6 too (or leave the IPv6 subnet out)", spec.req.Subnet6)
	}
	for _, data := range append(req.IPv4Data, req.IPv6Data...) {
		for k, v := range data.AuxAddresses {
			a, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("--aux-address %s=%s is not an address", k, v)
			}
			if spec.req.AuxAddresses == nil {
				spec.req.AuxAddresses = map[string]string{}
			}
			spec.req.AuxAddresses[k] = a.Addr().String()
		}
	}
	// A vxnet network of this subnet already: it is this one, by another
	// host's Docker or vxnet's CLI, if the options agree.
	for _, n := range p.cfg.Backend.Networks() {
		if n.Subnet == spec.req.Subnet {
			if err := agrees(n, spec.req); err != nil {
				return nil, fmt.Errorf("--subnet %s is vxnet network %q's, so a Docker network of that subnet is that network: %w", spec.req.Subnet, n.Name, err)
			}
		}
	}
	if err := p.cfg.Backend.CheckNetwork(spec.req); err != nil {
		return nil, describe(err)
	}
	// One Docker network per subnet on a host: a pool is known by its
	// subnet. (Docker stores this one only after this call.)
	if dn, ok, err := p.engineNetworkOfPool(ctx, pool); err != nil {
		return nil, err
	} else if ok && dn.ID != req.NetworkID {
		return nil, fmt.Errorf("--subnet %s is the subnet of Docker network %q on this host already", d.Pool, dn.Name)
	}
	p.goBG(func() { p.tieWhenStored(req.NetworkID) })
	return struct{}{}, nil
}

// tieWhenStored reads the new network's name once Docker has stored it,
// and ties it to its vxnet network.
func (p *Plugin) tieWhenStored(id string) {
	var dn EngineNetwork
	var err error
	if !p.retry(p.ctx, time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		dn, err = p.cfg.Engine.Network(ctx, id)
		return err == nil
	}) {
		if p.ctx.Err() == nil {
			p.log.Warn("could not read a new network from Docker's API", "dockerNetwork", id, "error", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := p.tie(ctx, dn); err != nil {
		p.log.Warn("docker network is not usable", "dockerNetwork", dn.Name, "error", err)
	}
}

// tie makes sure Docker network dn has its vxnet network, creating it in
// the cluster if need be, and returns its name.
func (p *Plugin) tie(ctx context.Context, dn EngineNetwork) (string, error) {
	p.mu.Lock()
	name, ok := p.tied[dn.ID]
	p.mu.Unlock()
	if ok {
		if _, exists := p.cfg.Backend.Network(name); exists {
			return name, nil
		}
	}
	spec, err := p.specOf(dn.Options, dn.Internal, dn.EnableIPv6)
	if err != nil {
		return "", err
	}
	if len(dn.IPAM.Config) < 1 || len(dn.IPAM.Config) > 2 || !isOurs(dn.IPAM.Driver) {
		return "", fmt.Errorf("network %q: --ipam-driver %s and one --subnet (two with --ipv6: an IPv4 and an IPv6 one) are required", dn.Name, Name)
	}
	spec.req.Name = dn.Name
	for _, c := range dn.IPAM.Config {
		p, err := netip.ParsePrefix(c.Subnet)
		switch {
		case err != nil:
			return "", fmt.Errorf("network %q: --subnet %q is not a subnet", dn.Name, c.Subnet)
		case p.Addr().Is4() && spec.req.Subnet == "":
			spec.req.Subnet, spec.req.IPRange, spec.req.Gateway = p.String(), canonical(c.IPRange), canonical(c.Gateway)
		case p.Addr().Is6() && spec.req.Subnet6 == "" && dn.EnableIPv6:
			spec.req.Subnet6, spec.req.IPRange6, spec.req.Gateway6 = p.String(), canonical(c.IPRange), canonical(c.Gateway)
		default:
			return "", fmt.Errorf("network %q: --subnet %s: vxnet takes one IPv4 subnet, and one IPv6 subnet with --ipv6", dn.Name, c.Subnet)
		}
		for k, v := range c.AuxiliaryAddresses {
			if spec.req.AuxAddresses == nil {
				spec.req.AuxAddresses = map[string]string{}
			}
			spec.req.AuxAddresses[k] = v
		}
	}
	// One at a time: the naming in the background and a container's
	// first call may tie the same network at once.
	p.tieMu.Lock()
	defer p.tieMu.Unlock()
	// A vxnet network of the subnet under another name is this one (as
	// CreateNetwork took it): Docker's names are each host's own.
	for _, n := range p.cfg.Backend.Networks() {
		if n.Subnet == spec.req.Subnet && n.Name != spec.req.Name {
			spec.req.Name = n.Name
		}
	}
	if err := p.ensure(ctx, spec.req); err != nil {
		return "", err
	}
	p.mu.Lock()
	p.tied[dn.ID] = spec.req.Name
	p.mu.Unlock()
	return spec.req.Name, nil
}

// ensure makes sure the vxnet network req names exists as req asks:
// found, or created. Another host may create it at the same moment: its
// row then arrives within moments, and is checked.
func (p *Plugin) ensure(ctx context.Context, req api.NetworkCreate) error {
	if n, ok := p.cfg.Backend.Network(req.Name); ok {
		return agrees(n, req)
	}
	_, err := p.cfg.Backend.CreateNetwork(ctx, req)
	if err == nil {
		p.log.Info("vxnet network created for Docker", "network", req.Name)
		return nil
	}
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || ae.Field != "name" {
		return describe(err)
	}
	var n api.Network
	if p.retry(ctx, 15*time.Second, func() bool {
		var ok bool
		n, ok = p.cfg.Backend.Network(req.Name)
		return ok
	}) {
		return agrees(n, req)
	}
	return describe(err)
}

// agrees checks that existing network n is what req asks for; the error
// names the first option that differs.
func agrees(n api.Network, req api.NetworkCreate) error {
	want := req.Driver
	if want == "" {
		want = "overlay"
	}
	differ := func(opt, have, asked string) error {
		return fmt.Errorf("network %q exists in vxnet with %s %s; this Docker network asks for %s: make it with the same options (vxnet network inspect %s)", n.Name, opt, orNone(have), orNone(asked), n.Name)
	}
	switch {
	case req.Name != "" && req.Name != n.Name:
		return fmt.Errorf("--subnet %s is the subnet of vxnet network %q: a Docker network on it must have that name", n.Subnet, n.Name)
	case n.Subnet != req.Subnet:
		return differ("--subnet", n.Subnet, req.Subnet)
	case n.Driver != want:
		return differ("-o "+OptDriver, n.Driver, want)
	case req.IPRange != "" && n.IPRange != req.IPRange:
		return differ("--ip-range", n.IPRange, req.IPRange)
	case req.Gateway != "" && n.Gateway != "" && n.Gateway != req.Gateway:
		return differ("--gateway", n.Gateway, req.Gateway)
	case n.Internal != req.Internal:
		return differ("--internal", strconv.FormatBool(n.Internal), strconv.FormatBool(req.Internal))
	case n.Subnet6 != req.Subnet6:
		return differ("--ipv6 --subnet", n.Subnet6, req.Subnet6)
	case req.IPRange6 != "" && n.IPRange6 != req.IPRange6:
		return differ("--ip-range (IPv6)", n.IPRange6, req.IPRange6)
	case req.Gateway6 != "" && n.Gateway6 != "" && n.Gateway6 != req.Gateway6:
		return differ("--gateway (IPv6)", n.Gateway6, req.Gateway6)
	case n.AssignedBy != req.AssignedBy:
		return fmt.Errorf("network %q exists in vxnet with its addresses from %s; this Docker network's come from %s: a network is either Docker swarm's (a plugin with --docker-scope global) or not", n.Name, orVxnet(n.AssignedBy), orVxnet(req.AssignedBy))
	}
	for _, k := range sortedKeys(req.Options) {
		if v, ok := n.Options[k]; !ok || api.OptionValue(v) != api.OptionValue(req.Options[k]) {
			return differ("-o "+OptPrefix+k, n.Options[k], req.Options[k])
		}
	}
	for _, k := range sortedKeys(n.Options) {
		if _, ok := req.Options[k]; !ok {
			return differ("-o "+OptPrefix+k, n.Options[k], "")
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (p *Plugin) deleteNetwork(_ context.Context, body []byte) (any, error) {
	var req networkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	// The vxnet network stays: other hosts' Docker may use it (vxnet
	// network rm removes it from the cluster).
	p.mu.Lock()
	delete(p.tied, req.NetworkID)
	p.mu.Unlock()
	return struct{}{}, nil
}

// Endpoints.

func (p *Plugin) createEndpoint(ctx context.Context, body []byte) (any, error) {
	var req createEndpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.NetworkID == "" || req.EndpointID == "" {
		return nil, errors.New("malformed request: NetworkID and EndpointID are required")
	}
	if req.Interface == nil || req.Interface.Address == "" {
		return nil, fmt.Errorf("the endpoint has no address: the network must use --ipam-driver %s", Name)
	}
	if req.Interface.MacAddress != "" {
		return nil, errors.New("--mac-address: vxnet's container devices are layer 3 (a TUN device) and have no MAC address to set")
	}
	if _, err := netip.ParsePrefix(req.Interface.Address); err != nil {
		return nil, fmt.Errorf("address %q is not an address with its prefix length", req.Interface.Address)
	}
	// The endpoint is made at Join, when the container's name is known;
	// its ports are published with its gateway
	// (ProgramExternalConnectivity).
	return struct{}{}, nil
}

// publishOf reads the ports published with docker run -p.
func publishOf(opts map[string]json.RawMessage) ([]string, error) {
	raw, ok := opts[optPortMap]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var pm []portBinding
	if err := json.Unmarshal(raw, &pm); err != nil {
		return nil, fmt.Errorf("malformed request: option %s: %v", optPortMap, err)
	}
	var out []string
	for _, b := range pm {
		proto := map[int]string{6: "tcp", 17: "udp"}[b.Proto]
		if proto == "" {
			return nil, fmt.Errorf("-p %d: protocol %d: vxnet publishes tcp and udp ports", b.Port, b.Proto)
		}
		if b.HostIP != "" && b.HostIP != "0.0.0.0" && b.HostIP != "::" {
			return nil, fmt.Errorf("-p %s:%d:%d: vxnet publishes ports on every address of the host; leave the address out", b.HostIP, b.HostPort, b.Port)
		}
		if b.HostPort == 0 {
			return nil, fmt.Errorf("-p %d: give the host port (-p HOSTPORT:%d): vxnet does not pick one", b.Port, b.Port)
		}
		// 0.0.0.0 and :: (Docker binds both families) are one spec.
		if spec := fmt.Sprintf("%d:%d/%s", b.HostPort, b.Port, proto); !slices.Contains(out, spec) {
			out = append(out, spec)
		}
	}
	return out, nil
}

func (p *Plugin) join(ctx context.Context, body []byte) (any, error) {
	var req joinRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.NetworkID == "" || req.EndpointID == "" || req.SandboxKey == "" {
		return nil, errors.New("malformed request: NetworkID, EndpointID and SandboxKey are required")
	}
	if len(req.EndpointID) < 12 {
		return nil, fmt.Errorf("malformed request: EndpointID %q is too short", req.EndpointID)
	}
	if err := p.engineAnswers(); err != nil {
		return nil, err
	}
	dn, err := p.cfg.Engine.Network(ctx, req.NetworkID)
	if err != nil {
		return nil, fmt.Errorf("reading network %s from Docker's API: %w", short(req.NetworkID), p.engineFailed(err))
	}
	name, err := p.tie(ctx, dn)
	if err != nil {
		return nil, err
	}
	var container, address, address6 string
	for _, c := range dn.Containers {
		if c.EndpointID == req.EndpointID {
			container, address, address6 = c.Name, c.IPv4Address, c.IPv6Address
		}
	}
	if container == "" || address == "" {
		return nil, fmt.Errorf("Docker's API does not show endpoint %s on network %q", short(req.EndpointID), dn.Name)
	}
	ip, err := netip.ParsePrefix(address)
	if err != nil {
		return nil, fmt.Errorf("Docker's API shows address %q for the endpoint", address)
	}
	n, ok := p.cfg.Backend.Network(name)
	if !ok {
		return nil, fmt.Errorf("no vxnet network %q", name)
	}
	var ip6 string
	if n.Subnet6 != "" {
		p6, err := netip.ParsePrefix(address6)
		if err != nil || !p6.Addr().Is6() {
			return nil, fmt.Errorf("Docker's API shows IPv6 address %q for the endpoint on dual-stack network %q", address6, dn.Name)
		}
		ip6 = p6.Addr().String()
	}
	spec, err := p.specOf(dn.Options, dn.Internal, dn.EnableIPv6)
	if err != nil {
		return nil, err
	}
	if dn.Internal {
		// Docker publishes through the container's gateway network only,
		// never an internal one: a container on internal networks alone
		// answers its -p nowhere. Not refused (its other networks may
		// publish them), but said.
		if pub, err := publishOf(req.Options); err == nil && len(pub) > 0 {
			p.log.Warn("a container publishes ports, and this network is --internal: they answer only if another network of the container publishes them", "container", container, "network", dn.Name, "publish", strings.Join(pub, ","))
		}
	}
	labels, err := p.cfg.Engine.Labels(ctx, container)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading container %s's labels from Docker's API: %w", container, err)
	}
	service := labels[LabelService]
	if service != "" {
		if err := names.Service(service); err != nil {
			return nil, fmt.Errorf("--label %s=%s: %v", LabelService, service, err)
		}
	}
	src := api.HandoverPrefix + req.EndpointID[:12]
	ep := api.EndpointCreate{Network: name, Name: EndpointName(container), Netns: p.cfg.NetnsRoot + req.SandboxKey, Ifname: src, IP: ip.Addr().String(), IP6: ip6,
		Reserved: !p.swarm(), Assigned: p.swarm(), Handover: true, MTU: spec.mtu, Service: service,
		Labels: map[string]string{LabelEndpoint: req.EndpointID, LabelNetwork: req.NetworkID, LabelContainer: container}}
	_, err = p.cfg.Backend.CreateEndpoint(ctx, ep)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeConflict && (ae.Field == "ip" || ae.Field == "ip6" && ip6 != "") && !p.swarm() {
		// Not reserved (any more): the agent restarted between Docker's
		// RequestAddress and this Join, and let it go. Take it again if
		// it is free.
		// Both families: they go together.
		_, rerr := p.cfg.Backend.ReserveAddress(ctx, name, ip.Addr())
		if ip6 != "" {
			if _, rerr6 := p.cfg.Backend.ReserveAddress(ctx, name, netip.MustParseAddr(ip6)); rerr == nil {
				rerr = rerr6
			}
		}
		if rerr == nil || errors.As(rerr, &ae) && ae.Code == api.CodeConflict {
			_, err = p.cfg.Backend.CreateEndpoint(ctx, ep)
		}
	}
	if err != nil {
		return nil, describe(err)
	}
	p.goBG(func() { p.learnAliases(container, name, dn.Name) })
	resp := joinResponse{InterfaceName: interfaceName{SrcName: src, DstPrefix: "eth"}, DisableGatewayService: true}
	// The gateway: the way out, and, on an internal network, the way to
	// vxnet's DNS for what Docker's resolver forwards (the host refuses
	// the rest).
	resp.Gateway, resp.GatewayIPv6 = n.ContainerGateway, n.ContainerGateway6
	return resp, nil
}

// learnAliases reads a container's aliases on a network (--network-alias,
// and its short ID, as Docker's own DNS answers them) once it runs, and
// gives them to its endpoint.
func (p *Plugin) learnAliases(container, network, dockerNetwork string) {
	name := EndpointName(container)
	p.retry(p.ctx, time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		c, err := p.cfg.Engine.Container(ctx, container)
		cancel()
		if errors.Is(err, ErrNotFound) {
			return true // gone already
		}
		if err != nil || !c.State.Running {
			return false
		}
		var aliases []string
		for _, a := range c.NetworkSettings.Networks[dockerNetwork].Aliases {
			if names.Alias(a) == nil && !names.Same(a, name) && !containsFold(aliases, a) {
				aliases = append(aliases, a)
			}
		}
		if len(aliases) == 0 {
			return true
		}
		err = p.cfg.Backend.SetAliases(network, name, aliases)
		if isBusy(err) {
			return false // its device being recorded: again in a moment
		}
		if err != nil && !isNotFound(err) {
			p.log.Warn("setting a container's aliases", "container", container, "error", err)
		}
		return true
	})
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if names.Same(x, s) {
			return true
		}
	}
	return false
}

func (p *Plugin) deleteEndpoint(_ context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	for _, e := range p.cfg.Backend.Endpoints() {
		if e.Labels[LabelEndpoint] == req.EndpointID && req.EndpointID != "" && e.Host == p.cfg.Backend.Host() {
			if err := p.removeEndpoint(e.Network, e.Name); err != nil && !isNotFound(err) {
				return nil, describe(err)
			}
		}
	}
	return struct{}{}, nil // gone already: Docker may ask twice
}

// externalRequest is the body of Program- and
// RevokeExternalConnectivity.
type externalRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]json.RawMessage
}

// programExternal publishes the container's ports (docker run -p): Docker
// asks the network that gives the container its gateway, once.
func (p *Plugin) programExternal(_ context.Context, body []byte) (any, error) {
	var req externalRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	publish, err := publishOf(req.Options)
	if err != nil {
		return nil, err
	}
	if len(publish) == 0 {
		return struct{}{}, nil
	}
	e, ok := p.endpointOf(req.EndpointID)
	if !ok {
		return nil, fmt.Errorf("no vxnet endpoint for Docker endpoint %s on this host", short(req.EndpointID))
	}
	if err := p.whenNotBusy(func() error { return p.cfg.Backend.SetPublish(e.Network, e.Name, publish) }); err != nil {
		return nil, describe(err)
	}
	return struct{}{}, nil
}

// revokeExternal withdraws the container's published ports.
func (p *Plugin) revokeExternal(_ context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if e, ok := p.endpointOf(req.EndpointID); ok && len(e.Publish) > 0 {
		if err := p.cfg.Backend.SetPublish(e.Network, e.Name, nil); err != nil && !isNotFound(err) {
			return nil, describe(err)
		}
	}
	return struct{}{}, nil
}

// endpointOf finds this host's endpoint of Docker endpoint id.
func (p *Plugin) endpointOf(id string) (api.Endpoint, bool) {
	if id == "" {
		return api.Endpoint{}, false
	}
	for _, e := range p.cfg.Backend.Endpoints() {
		if e.Labels[LabelEndpoint] == id && e.Host == p.cfg.Backend.Host() {
			return e, true
		}
	}
	return api.Endpoint{}, false
}

// removeEndpoint removes an endpoint, waiting a while for one that is
// busy (being readdressed): Docker does not ask twice.
func (p *Plugin) removeEndpoint(network, name string) error {
	return p.whenNotBusy(func() error { return p.cfg.Backend.RemoveEndpoint(network, name) })
}

// whenNotBusy calls fn again, for up to 10 s, while the endpoint it
// changes is busy (api.CodeBusy: being readdressed).
func (p *Plugin) whenNotBusy(fn func() error) error {
	var err error
	p.retry(context.Background(), 10*time.Second, func() bool {
		err = fn()
		return !isBusy(err)
	})
	return err
}

// retry calls fn until it reports done: again after 20 ms, then twice as
// long each time up to a second, for at most timeout, and not after ctx
// or the plugin ends. It reports whether fn was done.
func (p *Plugin) retry(ctx context.Context, timeout time.Duration, fn func() bool) bool {
	deadline := time.Now().Add(timeout)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		if fn() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-p.ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

func (p *Plugin) operInfo(_ context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, e := range p.cfg.Backend.Endpoints() {
		if e.Labels[LabelEndpoint] == req.EndpointID && req.EndpointID != "" {
			info["vxnet.endpoint"], info["vxnet.network"], info["vxnet.host"] = e.Name, e.Network, e.Host
		}
	}
	return operInfoResponse{Value: info}, nil
}

// collect removes the endpoints of Docker containers that Docker no longer
// has (a Docker that died without leaving its networks).
func (p *Plugin) collect() {
	if !p.collecting.CompareAndSwap(false, true) {
		return
	}
	defer p.collecting.Store(false)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if !p.waitReady(ctx) {
		return
	}
	// The endpoints and reservations first: one made meanwhile is in
	// Docker's answer below (Join reads Docker before it makes the
	// endpoint; a reservation is younger than the grace).
	eps, reservations := p.cfg.Backend.Endpoints(), p.cfg.Backend.Reservations()
	// Docker answers its API only after it activated its plugins; wait
	// for it to answer.
	var ns []EngineNetwork
	if !p.retry(ctx, time.Minute, func() bool {
		var err error
		ns, err = p.cfg.Engine.Networks(ctx)
		return err == nil
	}) {
		return
	}
	live := map[string]bool{}
	inDocker := map[string]bool{} // network/address Docker shows a container with
	for _, n := range ns {
		if !isOurs(n.Driver) {
			continue
		}
		full, err := p.cfg.Engine.Network(ctx, n.ID)
		if err != nil {
			return // not sure: leave everything
		}
		for _, c := range full.Containers {
			live[c.EndpointID] = true
			for _, addr := range []string{c.IPv4Address, c.IPv6Address} {
				if a, err := netip.ParsePrefix(addr); err == nil {
					inDocker[full.Name+"/"+a.Addr().String()] = true
				}
			}
		}
	}
	now := map[string]string{} // network/name → its Docker endpoint now
	for _, e := range p.cfg.Backend.Endpoints() {
		now[e.Network+"/"+e.Name] = e.Labels[LabelEndpoint]
	}
	for _, e := range eps {
		id := e.Labels[LabelEndpoint]
		if id == "" || e.Host != p.cfg.Backend.Host() || live[id] {
			continue
		}
		if now[e.Network+"/"+e.Name] != id {
			// Gone meanwhile, or made again for another Docker endpoint
			// (a container restarted since the list was read): not the
			// stale one.
			continue
		}
		p.log.Info("removing the endpoint of a container Docker no longer has", "endpoint", e.Name, "network", e.Network)
		if err := p.removeEndpoint(e.Network, e.Name); err != nil && !isNotFound(err) {
			p.log.Warn("removing endpoint", "endpoint", e.Name, "error", err)
		}
	}
	// Then the reservations listed before Docker was read, as they are
	// now (those of the endpoints just removed are free): one no endpoint
	// holds, no container of Docker's has, unchanged since (not released
	// and made again) and from before the agent started or older than
	// the grace (no Join on its way) is one Docker forgot.
	before := map[string]time.Time{}
	for _, r := range reservations {
		before[r.Network+"/"+r.Address] = r.Since
	}
	for _, r := range p.cfg.Backend.Reservations() {
		k := r.Network + "/" + r.Address
		since, listed := before[k]
		if !listed || !since.Equal(r.Since) || r.Held || inDocker[k] || (!r.Since.IsZero() && time.Since(r.Since) < reservationGrace) {
			continue
		}
		if ip, err := netip.ParseAddr(r.Address); err == nil {
			p.log.Info("releasing an address reserved for a container Docker no longer has", "network", r.Network, "address", r.Address)
			if err := p.cfg.Backend.ReleaseAddress(r.Network, ip); err != nil {
				p.log.Warn("releasing address", "network", r.Network, "address", r.Address, "error", err)
			}
		}
	}
}

// isOurs reports whether a Docker network's driver name is this plugin's:
// vxnet, as a legacy plugin; vxnet:TAG or REPO/vxnet:TAG, as a managed one.
func isOurs(driver string) bool {
	name := driver[strings.LastIndexByte(driver, '/')+1:]
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return name == Name
}

// EndpointName is the vxnet endpoint name of a Docker container: its name,
// with the characters DNS labels lack ('_' and '.') as '-'.
func EndpointName(container string) string {
	b := []byte(strings.TrimPrefix(container, "/"))
	for i, c := range b {
		if c == '_' || c == '.' {
			b[i] = '-'
		}
	}
	return names.ShortenOf(strings.TrimRight(string(b), "-"), container)
}

// dockerFlags are the API's field names as a Docker user spells them.
var dockerFlags = map[string]string{
	"driver": "-o " + OptDriver, "subnet": "--subnet", "gateway": "--gateway",
	"ip-range": "--ip-range", "ipRange": "--ip-range", "aux-address": "--aux-address", "auxAddresses": "--aux-address",
	"ip": "--ip", "mtu": "-o " + optMTU, "publish": "-p", "block-size": "-o " + OptPrefix + "block-size",
}

// describe turns a backend error into a message for a Docker user, naming
// the Docker flag of the field at fault.
func describe(err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return err
	}
	if flag, ok := dockerFlags[ae.Field]; ok && !strings.Contains(ae.Message, flag) {
		return fmt.Errorf("vxnet: %s: %s", flag, ae.Message)
	}
	if ae.Field == "options" && !strings.HasPrefix(ae.Message, "option "+optEncrypted+":") {
		// The message names the option; Docker spells it -o vxnet.KEY
		// (but encrypted, which it takes as its own overlay does).
		return fmt.Errorf("vxnet: %s (a vxnet network's options are -o %sKEY=VALUE)", ae.Message, OptPrefix)
	}
	return errors.New("vxnet: " + ae.Message)
}

func isBusy(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == api.CodeBusy
}

func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == api.CodeNotFound
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// orVxnet names who hands out a network's addresses.
func orVxnet(assignedBy string) string {
	if assignedBy == "" {
		return "vxnet"
	}
	return "Docker swarm's manager"
}

// ipv6Side puts a network's IPv6 pool (--ipv6) into req: the vxnet
// network is then dual stack.
func ipv6Side(req *api.NetworkCreate, data []ipamData) error {
	switch {
	case len(data) == 0:
		return nil
	case len(data) > 1:
		return fmt.Errorf("--ipv6: a vxnet network has one IPv6 subnet; this one has %d", len(data))
	case data[0].Pool == unusedV6Pool:
		return fmt.Errorf("--ipv6 needs an IPv6 --subnet: vxnet's IPAM hands out addresses of a subnet that is the same on every host (--subnet 10.0.9.0/24 --subnet fd00:9::/64)")
	}
	p, err := netip.ParsePrefix(data[0].Pool)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p != p.Masked() {
		return fmt.Errorf("--subnet %q (IPv6) is not an IPv6 network address with its prefix length", data[0].Pool)
	}
	req.Subnet6 = p.String()
	if data[0].Gateway != "" {
		gw, err := netip.ParsePrefix(data[0].Gateway)
		if err != nil {
			return fmt.Errorf("--gateway %q (IPv6) is not an address", data[0].Gateway)
		}
		req.Gateway6 = gw.Addr().String()
	}
	return nil
}

// canonical is an address or prefix as vxnet writes it (Docker keeps what
// the user typed); anything else as it is.
func canonical(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.String()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}
