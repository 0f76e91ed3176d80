package dns

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vxnet/vxnet/internal/bindretry"
)

// Namespaces serves the server's records in containers' network
// namespaces: one listener per namespace, at ContainerAddr, answering for
// the networks that namespace's endpoints are on. A namespace whose
// address is in use (the resolver of an agent still exiting) gets its
// listener in the background, once the address is free.
type Namespaces struct {
	srv   *Server
	log   *slog.Logger
	retry time.Duration // how long an address in use is retried; 0 or less: not at all

	mu sync.Mutex
	ns map[string]*nsEntry // by namespace path
}

// nsEntry is one namespace: the endpoints it has per network, and its
// listener (nil while none could be opened).
type nsEntry struct {
	networks map[string]int
	l        *Listener
	waiting  bool // a background bind is under way
}

// NewNamespaces serves srv's records in namespaces; an address in use is
// retried for retry.
func NewNamespaces(srv *Server, retry time.Duration, log *slog.Logger) *Namespaces {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Namespaces{srv: srv, log: log, retry: retry, ns: map[string]*nsEntry{}}
}

// Join counts one more endpoint of network in the namespace at path, and
// opens the namespace's listener with its first. An error says the
// namespace has no DNS (yet: an address in use is retried meanwhile).
func (n *Namespaces) Join(path, network string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.ns[path]
	if e == nil {
		e = &nsEntry{networks: map[string]int{}}
		n.ns[path] = e
	}
	e.networks[network]++
	if e.l != nil {
		e.l.SetView(e.view())
		return nil
	}
	if e.waiting {
		return nil
	}
	conns, err := ListenNetns(path, ContainerAddr)
	if err != nil {
		if !bindretry.InUse(err) || n.retry <= 0 {
			return err
		}
		e.waiting = true
		go n.whenFree(path)
		return fmt.Errorf("%w; retrying in the background for up to %v", err, n.retry)
	}
	e.l, err = n.srv.Serve(conns, e.view())
	return err
}

// Leave undoes one Join; the namespace's listener closes with its last
// endpoint, and Leave reports that it was the last.
func (n *Namespaces) Leave(path, network string) (last bool) {
	n.mu.Lock()
	e := n.ns[path]
	if e == nil {
		n.mu.Unlock()
		return false
	}
	if e.networks[network]--; e.networks[network] <= 0 {
		delete(e.networks, network)
	}
	var closing *Listener
	last = len(e.networks) == 0
	if last {
		delete(n.ns, path)
		closing = e.l
	} else if e.l != nil {
		e.l.SetView(e.view())
	}
	n.mu.Unlock()
	if closing != nil {
		closing.Close() // unlocked: it may wait for queries in flight
	}
	return last
}

// Close closes every listener.
func (n *Namespaces) Close() {
	n.mu.Lock()
	entries := n.ns
	n.ns = map[string]*nsEntry{}
	n.mu.Unlock()
	for _, e := range entries {
		if e.l != nil {
			e.l.Close()
		}
	}
}

// whenFree retries the namespace's sockets until they bind, then serves
// there, if endpoints still use the namespace by then.
func (n *Namespaces) whenFree(path string) {
	conns, err := bindretry.Retry(n.log, "dns", path+" "+ContainerAddr.String(), n.retry, func() (Conns, error) {
		return ListenNetns(path, ContainerAddr)
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.ns[path]
	if e != nil {
		e.waiting = false
	}
	if err != nil {
		n.log.Error("no DNS in the container's namespace", "netns", path, "error", err)
		return
	}
	if e == nil || e.l != nil {
		conns.Close()
		return
	}
	if e.l, err = n.srv.Serve(conns, e.view()); err != nil {
		n.log.Warn("no DNS in the container's namespace", "netns", path, "error", err)
		return
	}
	n.log.Info("DNS serving in the container's namespace", "netns", path)
}

// view is the networks of the namespace's endpoints, by name.
func (e *nsEntry) view() View {
	names := make([]string, 0, len(e.networks))
	for name := range e.networks {
		names = append(names, name)
	}
	sort.Strings(names)
	return View{Networks: names}
}
