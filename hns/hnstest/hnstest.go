// Package hnstest is an in-memory stand-in for Windows' Host Networking
// Service, for tests of code that programs it through hns.Client.
//
// A Fake keeps networks and endpoints as HNS would, where it matters to
// vxnet:
//
//   - it assigns GUID-like IDs (upper-case, as HNS writes them), in order;
//   - it refuses a network whose subnet has a route without a next hop or no
//     default route, as hcn does before calling HNS;
//   - it refuses an Overlay network without a VSID in 4096-65535 on each
//     subnet or without a VxlanPort policy of 4789, and a policy whose
//     settings are not a JSON object;
//   - it refuses an endpoint on a network that does not exist, an address
//     outside the network's subnets or already taken on that network, and a
//     remote endpoint on an Overlay without a ProviderAddress policy;
//   - it refuses to delete a network that still has endpoints, and deleting
//     a missing object returns an error wrapping hns.ErrNotFound;
//   - Restart forgets the networks that are non-persistent, with their
//     endpoints, as HNS does when its service restarts.
//
// Fail injects one error into the next call of an operation, and Calls
// counts the calls of each. A Fake stores and returns copies. The zero value
// is ready to use; all methods are safe for concurrent use.
package hnstest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/vxnet/vxnet/hns"
)

var _ hns.Client = (*Fake)(nil)

// Operation names, for Fail and Calls: the names of hns.Client's methods.
const (
	OpNetworks        = "Networks"
	OpCreateNetwork   = "CreateNetwork"
	OpDeleteNetwork   = "DeleteNetwork"
	OpEndpoints       = "Endpoints"
	OpCreateEndpoint  = "CreateEndpoint"
	OpDeleteEndpoint  = "DeleteEndpoint"
	OpAttachNamespace = "AttachNamespace"
)

var ops = []string{OpNetworks, OpCreateNetwork, OpDeleteNetwork, OpEndpoints, OpCreateEndpoint, OpDeleteEndpoint, OpAttachNamespace}

// Fake is an in-memory HNS. See the package documentation.
type Fake struct {
	mu       sync.Mutex
	seq      uint64
	networks []hns.Network  // in creation order
	eps      []hns.Endpoint // in creation order
	fail     map[string][]error
	calls    map[string]int
}

// Fail makes the next call of op (one of the Op constants) return err,
// once. Several Fails of one op fail that many calls, in order. An unknown
// op panics: it is a mistake in the test.
func (f *Fake) Fail(op string, err error) {
	if !slices.Contains(ops, op) {
		panic(fmt.Sprintf("hnstest: Fail: unknown operation %q; want one of %v", op, ops))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string][]error{}
	}
	f.fail[op] = append(f.fail[op], err)
}

// Calls returns how many times op was called, failed calls included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Restart forgets the networks with hns.EnableNonPersistent set and their
// endpoints, keeping the persistent ones, as HNS does when it restarts.
func (f *Fake) Restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	gone := map[string]bool{}
	f.networks = slices.DeleteFunc(f.networks, func(n hns.Network) bool {
		gone[n.ID] = !n.Persistent()
		return gone[n.ID]
	})
	f.eps = slices.DeleteFunc(f.eps, func(e hns.Endpoint) bool { return gone[e.HostComputeNetwork] })
}

// beginLocked counts a call of op and returns the error injected for it,
// if any.
func (f *Fake) beginLocked(op string) error {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	if q := f.fail[op]; len(q) > 0 {
		f.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

// newIDLocked returns the next GUID-like ID.
func (f *Fake) newIDLocked() string {
	f.seq++
	return fmt.Sprintf("%08X-0000-4000-8000-%012X", f.seq, f.seq)
}

// ByName is what the fake holds, networks and endpoints by name, for a
// test to look at: not counted in Calls, and never failed.
func (f *Fake) ByName() (map[string]hns.Network, map[string]hns.Endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nets, eps := map[string]hns.Network{}, map[string]hns.Endpoint{}
	for _, n := range clone(f.networks) {
		nets[n.Name] = n
	}
	for _, e := range clone(f.eps) {
		eps[e.Name] = e
	}
	return nets, eps
}

// Networks implements hns.Client.
func (f *Fake) Networks() ([]hns.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpNetworks); err != nil {
		return nil, err
	}
	return clone(f.networks), nil
}

// CreateNetwork implements hns.Client.
func (f *Fake) CreateNetwork(n hns.Network) (hns.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpCreateNetwork); err != nil {
		return hns.Network{}, err
	}
	if err := checkNetwork(n); err != nil {
		return hns.Network{}, fmt.Errorf("hnstest: network %q: %w", n.Name, err)
	}
	n = clone(n)
	n.ID = f.newIDLocked()
	f.networks = append(f.networks, n)
	return clone(n), nil
}

// DeleteNetwork implements hns.Client.
func (f *Fake) DeleteNetwork(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpDeleteNetwork); err != nil {
		return err
	}
	i := slices.IndexFunc(f.networks, func(n hns.Network) bool { return n.ID == id })
	if i < 0 {
		return fmt.Errorf("hnstest: network %s: %w", id, hns.ErrNotFound)
	}
	if k := f.endpointsOfLocked(id); k > 0 {
		return fmt.Errorf("hnstest: network %q (%s) has %d endpoints", f.networks[i].Name, id, k)
	}
	f.networks = slices.Delete(f.networks, i, i+1)
	return nil
}

// endpointsOfLocked counts the endpoints of network id.
func (f *Fake) endpointsOfLocked(id string) int {
	k := 0
	for _, e := range f.eps {
		if e.HostComputeNetwork == id {
			k++
		}
	}
	return k
}

// Endpoints implements hns.Client.
func (f *Fake) Endpoints() ([]hns.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpEndpoints); err != nil {
		return nil, err
	}
	return clone(f.eps), nil
}

// CreateEndpoint implements hns.Client.
func (f *Fake) CreateEndpoint(e hns.Endpoint) (hns.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpCreateEndpoint); err != nil {
		return hns.Endpoint{}, err
	}
	i := slices.IndexFunc(f.networks, func(n hns.Network) bool { return n.ID == e.HostComputeNetwork })
	if i < 0 {
		return hns.Endpoint{}, fmt.Errorf("hnstest: endpoint %q: network %q does not exist", e.Name, e.HostComputeNetwork)
	}
	if err := f.checkEndpointLocked(f.networks[i], e); err != nil {
		return hns.Endpoint{}, fmt.Errorf("hnstest: endpoint %q: %w", e.Name, err)
	}
	e = clone(e)
	e.ID = f.newIDLocked()
	f.eps = append(f.eps, e)
	return clone(e), nil
}

// AttachNamespace implements hns.Client.
func (f *Fake) AttachNamespace(id, namespace string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpAttachNamespace); err != nil {
		return err
	}
	i := slices.IndexFunc(f.eps, func(e hns.Endpoint) bool { return e.ID == id })
	switch {
	case i < 0:
		return fmt.Errorf("hnstest: endpoint %s: %w", id, hns.ErrNotFound)
	case namespace == "":
		return fmt.Errorf("hnstest: endpoint %s: empty namespace", id)
	case f.eps[i].HostComputeNamespace != "" && f.eps[i].HostComputeNamespace != namespace:
		return fmt.Errorf("hnstest: endpoint %s is attached to namespace %s already", id, f.eps[i].HostComputeNamespace)
	}
	f.eps[i].HostComputeNamespace = namespace
	return nil
}

// DeleteEndpoint implements hns.Client.
func (f *Fake) DeleteEndpoint(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked(OpDeleteEndpoint); err != nil {
		return err
	}
	i := slices.IndexFunc(f.eps, func(e hns.Endpoint) bool { return e.ID == id })
	if i < 0 {
		return fmt.Errorf("hnstest: endpoint %s: %w", id, hns.ErrNotFound)
	}
	f.eps = slices.Delete(f.eps, i, i+1)
	return nil
}

// checkEndpointLocked validates e against its network n.
func (f *Fake) checkEndpointLocked(n hns.Network, e hns.Endpoint) error {
	if e.HostComputeNamespace != "" {
		return fmt.Errorf("HostComputeNamespace %q is read-only", e.HostComputeNamespace)
	}
	if err := checkPolicies(e.Policies, func(p hns.EndpointPolicy) (string, json.RawMessage) { return string(p.Type), p.Settings }); err != nil {
		return err
	}
	var prefixes []netip.Prefix
	for _, s := range subnets(n) {
		if p, err := netip.ParsePrefix(s.IpAddressPrefix); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	for _, ip := range e.IpConfigurations {
		a, err := netip.ParseAddr(ip.IpAddress)
		if err != nil {
			return fmt.Errorf("address %q: %v", ip.IpAddress, err)
		}
		if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return fmt.Errorf("address %s outside the subnets of network %q", a, n.Name)
		}
		for _, o := range f.eps {
			if o.HostComputeNetwork == n.ID && slices.ContainsFunc(o.IpConfigurations, func(c hns.IpConfig) bool { return c.IpAddress == a.String() }) {
				return fmt.Errorf("address %s already taken by endpoint %q on network %q", a, o.Name, n.Name)
			}
		}
	}
	if e.Remote() && n.Type == hns.Overlay && !slices.ContainsFunc(e.Policies, func(p hns.EndpointPolicy) bool {
		return p.Type == hns.EndpointPolicyProviderAddress
	}) {
		return fmt.Errorf("remote endpoint without a ProviderAddress policy")
	}
	return nil
}

// clone deep-copies v through its JSON, as HNS hands out documents.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hnstest: clone: " + err.Error())
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic("hnstest: clone: " + err.Error())
	}
	return out
}
