package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
)

// fakeCluster is the cluster's state as the agents share it: networks,
// reservations and every host's endpoints. Each host's agent is a
// fakeBackend over it. Errors are *api.Error, as the agent's.
type fakeCluster struct {
	mu        sync.Mutex
	networks  map[string]api.Network           // by name
	aux       map[string][]netip.Addr          // network → its aux addresses
	reserved  map[string]map[netip.Addr]string // network → address → holder (endpoint key, "" for none)
	since     map[string]time.Time             // network/address → when reserved (zero: before a restart)
	endpoints map[string]*fakeEndpoint         // by key (network/name)
	aliases   map[string][]string              // endpoint key → aliases set
	epReqs    []api.EndpointCreate             // every CreateEndpoint asked
	creates   int                              // networks created
	attempts  int                              // CreateNetwork calls
	removes   int                              // endpoints removed
	reserveFn func(network string) error       // when set, ReserveAddress fails with what it returns
}

type fakeEndpoint struct {
	ep       api.Endpoint
	addr     netip.Addr
	reserved bool // holds a reservation (EndpointCreate.Reserved)
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{
		networks:  map[string]api.Network{},
		aux:       map[string][]netip.Addr{},
		reserved:  map[string]map[netip.Addr]string{},
		since:     map[string]time.Time{},
		endpoints: map[string]*fakeEndpoint{},
		aliases:   map[string][]string{},
	}
}

// knownDrivers are the vxnet drivers the fake's CheckNetwork accepts.
var knownDrivers = map[string]bool{"": true, "overlay": true, "nat": true, "transparent": true, "l2bridge": true, "l2tunnel": true}

func epKey(network, name string) string { return network + "/" + strings.ToLower(name) }

func apiErr(code, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// fakeBackend is one host's agent over the cluster.
type fakeBackend struct {
	c     *fakeCluster
	host  string
	lists atomic.Int32 // Endpoints calls
}

var _ Backend = (*fakeBackend)(nil)

func copyNetwork(n api.Network) api.Network {
	if n.Options != nil {
		o := make(map[string]string, len(n.Options))
		for k, v := range n.Options {
			o[k] = v
		}
		n.Options = o
	}
	return n
}

func (b *fakeBackend) Network(name string) (api.Network, bool) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	n, ok := b.c.networks[name]
	return copyNetwork(n), ok
}

func (b *fakeBackend) Networks() []api.Network {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	out := make([]api.Network, 0, len(b.c.networks))
	for _, n := range b.c.networks {
		out = append(out, copyNetwork(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b *fakeBackend) CheckNetwork(req api.NetworkCreate) error {
	if !knownDrivers[req.Driver] {
		return apiErr(api.CodeBadRequest, "driver", "unknown driver %q: want l2bridge, l2tunnel, nat, overlay, transparent", req.Driver)
	}
	if req.Subnet != "" {
		if _, err := netip.ParsePrefix(req.Subnet); err != nil {
			return apiErr(api.CodeBadRequest, "subnet", "subnet %q: %v", req.Subnet, err)
		}
	}
	return nil
}

func (b *fakeBackend) CreateNetwork(_ context.Context, req api.NetworkCreate) (api.Network, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.attempts++
	if err := b.CheckNetwork(req); err != nil {
		return api.Network{}, err
	}
	if req.Name == "" {
		return api.Network{}, apiErr(api.CodeBadRequest, "name", "network name \"\": empty")
	}
	if _, ok := b.c.networks[req.Name]; ok {
		return api.Network{}, apiErr(api.CodeConflict, "name", "network %q exists", req.Name)
	}
	subnet, err := netip.ParsePrefix(req.Subnet)
	if err != nil {
		return api.Network{}, apiErr(api.CodeBadRequest, "subnet", "subnet %q is required", req.Subnet)
	}
	for _, n := range b.c.networks {
		if o, err := netip.ParsePrefix(n.Subnet); err == nil && o.Overlaps(subnet) {
			return api.Network{}, apiErr(api.CodeConflict, "subnet", "subnet %s overlaps network %q (%s)", subnet, n.Name, n.Subnet)
		}
	}
	gw := subnet.Masked().Addr().Next() // the agent's default
	if req.Gateway != "" {
		if gw, err = netip.ParseAddr(req.Gateway); err != nil || !subnet.Contains(gw) {
			return api.Network{}, apiErr(api.CodeBadRequest, "gateway", "gateway %q is not in subnet %s", req.Gateway, subnet)
		}
	}
	driver := req.Driver
	if driver == "" {
		driver = "overlay"
	}
	n := api.Network{Name: req.Name, Driver: driver, Scope: "global", Subnet: subnet.String(), Gateway: gw.String(),
		IPRange: req.IPRange, Internal: req.Internal, Egress: !req.Internal, Options: req.Options, Creator: b.host,
		ContainerGateway: gw.String(), AssignedBy: req.AssignedBy, Subnet6: req.Subnet6} // overlay: the way out, or to DNS alone when internal
	b.c.networks[n.Name] = copyNetwork(n)
	for _, a := range req.AuxAddresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			b.c.aux[n.Name] = append(b.c.aux[n.Name], ip)
		}
	}
	b.c.creates++
	return copyNetwork(n), nil
}

func (b *fakeBackend) Endpoints() []api.Endpoint {
	b.lists.Add(1)
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	out := make([]api.Endpoint, 0, len(b.c.endpoints))
	for _, e := range b.c.endpoints {
		ep := e.ep
		ep.Aliases = append([]string(nil), b.c.aliases[epKey(ep.Network, ep.Name)]...)
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return epKey(out[i].Network, out[i].Name) < epKey(out[j].Network, out[j].Name) })
	return out
}

func (b *fakeBackend) CreateEndpoint(_ context.Context, req api.EndpointCreate) (api.Endpoint, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	b.c.epReqs = append(b.c.epReqs, req)
	n, ok := b.c.networks[req.Network]
	if !ok {
		return api.Endpoint{}, apiErr(api.CodeNotFound, "network", "no network %q", req.Network)
	}
	if req.Name == "" {
		return api.Endpoint{}, apiErr(api.CodeBadRequest, "name", "endpoint name \"\": empty")
	}
	if req.Handover && (req.Netns == "" || req.Ifname == "") {
		return api.Endpoint{}, apiErr(api.CodeBadRequest, "netns", "netns and ifname are required with handover")
	}
	subnet, _ := netip.ParsePrefix(n.Subnet)
	ip, err := netip.ParseAddr(req.IP)
	if err != nil || !subnet.Contains(ip) {
		return api.Endpoint{}, apiErr(api.CodeBadRequest, "ip", "ip %q is not an address of %s", req.IP, subnet)
	}
	key := epKey(req.Network, req.Name)
	if _, ok := b.c.endpoints[key]; ok {
		return api.Endpoint{}, apiErr(api.CodeConflict, "name", "endpoint %q exists on network %q", req.Name, req.Network)
	}
	if req.Assigned != (n.AssignedBy != "") {
		return api.Endpoint{}, apiErr(api.CodeBadRequest, "assigned", "assigned %v on a network assigned by %q", req.Assigned, n.AssignedBy)
	}
	if req.Reserved {
		holder, ok := b.c.reserved[req.Network][ip]
		if !ok || holder != "" {
			return api.Endpoint{}, apiErr(api.CodeConflict, "ip", "address %s is not reserved, or taken", ip)
		}
		b.c.reserved[req.Network][ip] = key
	} else if b.inUseLocked(req.Network, ip) {
		return api.Endpoint{}, apiErr(api.CodeConflict, "ip", "address %s is in use", ip)
	}
	labels := map[string]string{}
	for k, v := range req.Labels {
		labels[k] = v
	}
	ep := api.Endpoint{Name: req.Name, Network: req.Network, Host: b.host, Addresses: []string{netip.PrefixFrom(ip, subnet.Bits()).String()},
		Netns: req.Netns, Ifname: req.Ifname, Publish: req.Publish, Labels: labels}
	b.c.endpoints[key] = &fakeEndpoint{ep: ep, addr: ip, reserved: req.Reserved}
	return ep, nil
}

func (b *fakeBackend) RemoveEndpoint(network, name string) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	key := epKey(network, name)
	e, ok := b.c.endpoints[key]
	switch {
	case !ok:
		return apiErr(api.CodeNotFound, "name", "no endpoint %q on network %q", name, network)
	case e.ep.Host != b.host:
		return apiErr(api.CodeConflict, "name", "endpoint %q on network %q lives on host %s: remove it there", name, network, e.ep.Host)
	}
	delete(b.c.endpoints, key)
	delete(b.c.aliases, key)
	if e.reserved {
		if holder, ok := b.c.reserved[network][e.addr]; ok && holder == key {
			b.c.reserved[network][e.addr] = "" // the runtime releases it
		}
	}
	b.c.removes++
	return nil
}

// inUseLocked reports whether ip of network is the gateway, an aux
// address, reserved or an endpoint's.
func (b *fakeBackend) inUseLocked(network string, ip netip.Addr) bool {
	if gw, err := netip.ParseAddr(b.c.networks[network].Gateway); err == nil && gw == ip {
		return true
	}
	if _, ok := b.c.reserved[network][ip]; ok {
		return true
	}
	for _, a := range b.c.aux[network] {
		if a == ip {
			return true
		}
	}
	for _, e := range b.c.endpoints {
		if e.ep.Network == network && e.addr == ip {
			return true
		}
	}
	return false
}

func (b *fakeBackend) ReserveAddress(_ context.Context, network string, ip netip.Addr) (netip.Prefix, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.c.reserveFn != nil {
		if err := b.c.reserveFn(network); err != nil {
			return netip.Prefix{}, err
		}
	}
	n, ok := b.c.networks[network]
	if !ok {
		return netip.Prefix{}, apiErr(api.CodeNotFound, "network", "no network %q", network)
	}
	subnet, _ := netip.ParsePrefix(n.Subnet)
	if ip.Is6() && n.Subnet6 != "" {
		subnet, _ = netip.ParsePrefix(n.Subnet6)
		if ip.IsUnspecified() {
			ip = netip.Addr{}
		}
	}
	if ip.IsValid() {
		if !subnet.Contains(ip) {
			return netip.Prefix{}, apiErr(api.CodeBadRequest, "ip", "address %s is not in subnet %s", ip, subnet)
		}
		if b.inUseLocked(network, ip) {
			return netip.Prefix{}, apiErr(api.CodeConflict, "ip", "address %s is in use", ip)
		}
	} else {
		r := subnet
		if n.IPRange != "" && subnet.Addr().Is4() {
			r, _ = netip.ParsePrefix(n.IPRange)
		}
		for a := r.Masked().Addr(); r.Contains(a); a = a.Next() {
			last := !a.Next().IsValid() || !subnet.Contains(a.Next())
			if a != subnet.Masked().Addr() && !last && !b.inUseLocked(network, a) {
				ip = a
				break
			}
		}
		if !ip.IsValid() {
			return netip.Prefix{}, apiErr(api.CodeConflict, "network", "no free address in network %q", network)
		}
	}
	if b.c.reserved[network] == nil {
		b.c.reserved[network] = map[netip.Addr]string{}
	}
	b.c.reserved[network][ip] = ""
	b.c.since[network+"/"+ip.String()] = time.Now()
	return netip.PrefixFrom(ip, subnet.Bits()), nil
}

func (b *fakeBackend) ReleaseAddress(network string, ip netip.Addr) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	holder, ok := b.c.reserved[network][ip]
	if !ok {
		return nil // not reserved: left alone, as the agent does
	}
	delete(b.c.reserved[network], ip)
	if len(b.c.reserved[network]) == 0 {
		delete(b.c.reserved, network)
	}
	if e := b.c.endpoints[holder]; holder != "" && e != nil {
		e.reserved = false // the endpoint releases it when removed
	}
	return nil
}

func (b *fakeBackend) Reservations() []api.Reservation {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	var out []api.Reservation
	for network, addrs := range b.c.reserved {
		for ip, holder := range addrs {
			out = append(out, api.Reservation{Network: network, Address: ip.String(), Held: holder != "", Since: b.c.since[network+"/"+ip.String()]})
		}
	}
	return out
}

func (b *fakeBackend) SetAliases(network, name string, aliases []string) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	key := epKey(network, name)
	if e, ok := b.c.endpoints[key]; !ok || e.ep.Host != b.host {
		return apiErr(api.CodeNotFound, "name", "no endpoint %q on network %q on this host", name, network)
	}
	b.c.aliases[key] = append([]string(nil), aliases...)
	return nil
}

func (b *fakeBackend) SetPublish(network, name string, publish []string) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	key := epKey(network, name)
	e, ok := b.c.endpoints[key]
	if !ok || e.ep.Host != b.host {
		return apiErr(api.CodeNotFound, "name", "no endpoint %q on network %q on this host", name, network)
	}
	e.ep.Publish = append([]string(nil), publish...)
	return nil
}

func (b *fakeBackend) Host() string { return b.host }

// Helpers for the tests' checks.

// addNetwork makes a network as another host or vxnet's CLI would.
func (c *fakeCluster) addNetwork(t testing.TB, req api.NetworkCreate) {
	t.Helper()
	b := &fakeBackend{c: c, host: "cli"}
	if _, err := b.CreateNetwork(context.Background(), req); err != nil {
		t.Fatalf("making network %q: %v", req.Name, err)
	}
	c.mu.Lock()
	c.creates, c.attempts = 0, 0
	c.mu.Unlock()
}

func (c *fakeCluster) network(name string) (api.Network, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.networks[name]
	return copyNetwork(n), ok
}

func (c *fakeCluster) endpoint(network, name string) (api.Endpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.endpoints[epKey(network, name)]
	if !ok {
		return api.Endpoint{}, false
	}
	return e.ep, true
}

func (c *fakeCluster) numEndpoints() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.endpoints)
}

// reservations lists "network ip" of every reservation, sorted.
func (c *fakeCluster) reservations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n, addrs := range c.reserved {
		for ip := range addrs {
			out = append(out, n+" "+ip.String())
		}
	}
	sort.Strings(out)
	return out
}

func (c *fakeCluster) endpointRequests() []api.EndpointCreate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]api.EndpointCreate(nil), c.epReqs...)
}

func (c *fakeCluster) aliasesOf(network, name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.aliases[epKey(network, name)]...)
}

func (c *fakeCluster) counts() (creates, attempts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creates, c.attempts
}

func (c *fakeCluster) setReserveFn(fn func(string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserveFn = fn
}

// dump is the cluster's state as text, to compare before and after a call.
func (c *fakeCluster) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for _, n := range c.networks {
		lines = append(lines, fmt.Sprintf("network %s subnet=%s gw=%s range=%s driver=%s internal=%v options=%v",
			n.Name, n.Subnet, n.Gateway, n.IPRange, n.Driver, n.Internal, n.Options))
	}
	for network, addrs := range c.reserved {
		for ip, holder := range addrs {
			lines = append(lines, fmt.Sprintf("reserved %s %s holder=%q", network, ip, holder))
		}
	}
	for key, e := range c.endpoints {
		lines = append(lines, fmt.Sprintf("endpoint %s host=%s addr=%s reserved=%v aliases=%v", key, e.ep.Host, e.addr, e.reserved, c.aliases[key]))
	}
	sort.Strings(lines)
	lines = append(lines, fmt.Sprintf("creates=%d attempts=%d removes=%d", c.creates, c.attempts, c.removes))
	return strings.Join(lines, "\n")
}

// fakeEngine is Docker's API: networks by ID (or name), containers by
// name (or ID). Answers are copies, as decoded from Docker's JSON.
type fakeEngine struct {
	mu         sync.Mutex
	networks   map[string]EngineNetwork // by ID
	containers map[string]EngineContainer
	// onNetwork, when set, is called once by the next Network call with
	// the answer it is about to give, before it gives it.
	onNetwork func(EngineNetwork)
	listed    atomic.Int32                 // successful Networks calls
	labels    map[string]map[string]string // by container name
	// away: every call times out, as while dockerd restores its
	// containers; started: the containers Start started, by ID.
	away    atomic.Bool
	started []string
}

// errFakeTimeout is a call to the fake engine while it is away.
var errFakeTimeout = fmt.Errorf("docker's API: %w", context.DeadlineExceeded)

var _ Engine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{networks: map[string]EngineNetwork{}, containers: map[string]EngineContainer{}}
}

// clone copies v through JSON, as each answer of Docker's API is new.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (e *fakeEngine) Network(_ context.Context, id string) (EngineNetwork, error) {
	if e.away.Load() {
		return EngineNetwork{}, errFakeTimeout
	}
	e.mu.Lock()
	n, ok := e.networks[id]
	if !ok {
		for _, x := range e.networks {
			if x.Name == id {
				n, ok = x, true
			}
		}
	}
	hook := e.onNetwork
	e.onNetwork = nil
	e.mu.Unlock()
	if !ok {
		return EngineNetwork{}, ErrNotFound
	}
	n = clone(n)
	if hook != nil {
		hook(n)
	}
	return n, nil
}

func (e *fakeEngine) Networks(context.Context) ([]EngineNetwork, error) {
	if e.away.Load() {
		return nil, errFakeTimeout
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]EngineNetwork, 0, len(e.networks))
	for _, n := range e.networks {
		n = clone(n)
		n.Containers = nil // Docker's list leaves them out
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	e.listed.Add(1)
	return out, nil
}

func (e *fakeEngine) Container(_ context.Context, id string) (EngineContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.containers[strings.TrimPrefix(id, "/")]; ok {
		return clone(c), nil
	}
	for _, c := range e.containers {
		if c.ID == id {
			return clone(c), nil
		}
	}
	return EngineContainer{}, ErrNotFound
}

func (e *fakeEngine) Exited(context.Context) ([]string, error) {
	if e.away.Load() {
		return nil, errFakeTimeout
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, c := range e.containers {
		if !c.State.Running {
			ids = append(ids, c.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (e *fakeEngine) Start(_ context.Context, id string) error {
	if e.away.Load() {
		return errFakeTimeout
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, c := range e.containers {
		if c.ID == id {
			c.State.Running, c.State.Error = true, ""
			e.containers[name] = c
			e.started = append(e.started, id)
			return nil
		}
	}
	return ErrNotFound
}

// startedIDs are the containers Start started.
func (e *fakeEngine) startedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.started)
}

// stopped stores a container that is not running, with the restart
// policy and the error of its last start, on network.
func (e *fakeEngine) stopped(t testing.TB, id, name, network, policy, startErr string) {
	t.Helper()
	e.storeContainer(t, name, map[string]any{"Id": id, "Name": "/" + name, "State": map[string]any{"Running": false, "Error": startErr},
		"HostConfig":      map[string]any{"RestartPolicy": map[string]any{"Name": policy}},
		"NetworkSettings": map[string]any{"Networks": map[string]any{network: map[string]any{}}}})
}

// storeContainer stores container name as Docker's JSON doc shows it.
func (e *fakeEngine) storeContainer(t testing.TB, name string, doc map[string]any) {
	t.Helper()
	b, _ := json.Marshal(doc)
	var c EngineContainer
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[name] = c
}

func (e *fakeEngine) Labels(_ context.Context, name string) (map[string]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.labels[strings.TrimPrefix(name, "/")], nil
}

// label gives container name a label, as docker run --label does.
func (e *fakeEngine) label(name, k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.labels == nil {
		e.labels = map[string]map[string]string{}
	}
	name = strings.TrimPrefix(name, "/")
	if e.labels[name] == nil {
		e.labels[name] = map[string]string{}
	}
	e.labels[name][k] = v
}

// storeNetwork stores a network as Docker does once its driver made it,
// from the JSON of docker network inspect.
func (e *fakeEngine) storeNetwork(t testing.TB, id, name, subnet, gateway string, internal bool, opts map[string]string) {
	t.Helper()
	doc := map[string]any{
		"Name": name, "Id": id, "Driver": Name, "EnableIPv6": false, "Internal": internal,
		"IPAM": map[string]any{"Driver": Name, "Options": map[string]string{},
			"Config": []map[string]string{{"Subnet": subnet, "Gateway": gateway}}},
		"Options": opts, "Containers": map[string]any{},
	}
	b, _ := json.Marshal(doc)
	var n EngineNetwork
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.networks[id] = n
}

// storeDualNetwork stores a Docker network with --ipv6 and two subnets.
func (e *fakeEngine) storeDualNetwork(t testing.TB, id, name, subnet, subnet6 string) {
	t.Helper()
	e.storeNetwork(t, id, name, subnet, "", false, nil)
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.networks[id]
	n.EnableIPv6 = true
	n.IPAM.Config = append(n.IPAM.Config, n.IPAM.Config[0])
	n.IPAM.Config[1].Subnet, n.IPAM.Config[1].Gateway = subnet6, ""
	e.networks[id] = n
}

// join shows container name's endpoint on network id, as Docker's network
// inspect does during Join.
func (e *fakeEngine) join(t testing.TB, networkID, endpointID, name, address string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.networks[networkID]
	if !ok {
		t.Fatalf("fake engine: no network %s", networkID)
	}
	n = clone(n)
	var c struct{ Name, EndpointID, IPv4Address, IPv6Address string }
	c.Name, c.EndpointID, c.IPv4Address = name, endpointID, address
	c.IPv4Address, c.IPv6Address, _ = strings.Cut(address, ",") // "v4,v6" on a dual-stack network
	if n.Containers == nil {
		n.Containers = map[string]struct {
			Name        string
			EndpointID  string
			IPv4Address string
			IPv6Address string
		}{}
	}
	n.Containers["ep-"+endpointID] = c
	e.networks[networkID] = n
}

// leave takes the endpoint off network id, as Docker does after Leave.
func (e *fakeEngine) leave(networkID, endpointID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := clone(e.networks[networkID])
	delete(n.Containers, "ep-"+endpointID)
	e.networks[networkID] = n
}

// runContainer stores a running container with its aliases on network.
func (e *fakeEngine) runContainer(t testing.TB, id, name, network string, aliases []string) {
	t.Helper()
	e.storeContainer(t, name, map[string]any{"Id": id, "Name": "/" + name, "State": map[string]any{"Running": true},
		"NetworkSettings": map[string]any{"Networks": map[string]any{network: map[string]any{"Aliases": aliases}}}})
}

func (e *fakeEngine) setOnNetwork(fn func(EngineNetwork)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onNetwork = fn
}

// env is one host: its plugin over a backend of the cluster, its Docker
// API, and the plugin's handler served over HTTP.
type env struct {
	t       testing.TB
	c       *fakeCluster
	b       *fakeBackend
	eng     *fakeEngine
	p       *Plugin
	srv     *httptest.Server
	closeMu sync.Once
}

const testMTU = 1450

func newEnv(t testing.TB, c *fakeCluster, host string, cfg func(*Config)) *env {
	t.Helper()
	if c == nil {
		c = newFakeCluster()
	}
	e := &env{t: t, c: c, b: &fakeBackend{c: c, host: host}, eng: newFakeEngine()}
	conf := Config{Backend: e.b, Engine: e.eng, MTU: testMTU}
	if cfg != nil {
		cfg(&conf)
	}
	e.p = New(conf)
	e.srv = httptest.NewServer(e.p.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		e.close()
	})
	return e
}

// close stops the plugin's background work and waits for it.
func (e *env) close() { e.closeMu.Do(e.p.Close) }

// post calls path with body; it returns the status and the answer.
func (e *env) post(path, body string) (int, map[string]json.RawMessage) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.plugins.v1.2+json" {
		e.t.Errorf("POST %s: Content-Type %q", path, ct)
	}
	out, err := jsonObject(raw)
	if err != nil {
		e.t.Fatalf("POST %s: answer %q: %v", path, raw, err)
	}
	return resp.StatusCode, out
}

// ok calls path, fails the test on an Err, and decodes the answer into out
// (if not nil).
func (e *env) ok(path, body string, out any) {
	e.t.Helper()
	status, ans := e.post(path, body)
	if status != http.StatusOK || errOf(ans) != "" {
		e.t.Fatalf("POST %s %s: %d %s", path, body, status, errOf(ans))
	}
	if out != nil {
		b, _ := json.Marshal(ans)
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("POST %s: decoding the answer: %v", path, err)
		}
	}
}

// fails calls path and returns its Err, failing the test without one.
func (e *env) fails(path, body string) string {
	e.t.Helper()
	status, ans := e.post(path, body)
	msg := errOf(ans)
	if status != http.StatusOK || msg == "" {
		e.t.Fatalf("POST %s %s: %d %v, want 200 with an Err", path, body, status, ans)
	}
	return msg
}

// jsonObject decodes an answer: exactly one JSON object.
func jsonObject(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var out map[string]json.RawMessage
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("not an object")
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return out, nil
}

// errOf is an answer's Err ("" without one).
func errOf(ans map[string]json.RawMessage) string {
	raw, ok := ans["Err"]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "<Err not a string: " + string(raw) + ">"
	}
	return s
}
