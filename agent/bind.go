package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/dns"
)

// A restarted agent may find its addresses still held: by the process it
// replaces, still shutting down (a graceful leave, requests finishing), or
// exiting after kill -9. Each bind (gossip TCP and UDP, VXLAN, the API
// socket, the metrics and profiler servers, DNS in each container's
// namespace) is retried while its address is in use, for
// Config.BindTimeout, with one log line when the wait starts; then the
// agent fails with an error that says so.

// DefaultBindTimeout is how long a bind whose address is in use is
// retried by default.
const DefaultBindTimeout = 30 * time.Second

// errInUse says an address is held by another process.
var errInUse = errors.New("address in use")

// addrInUse reports whether err is a bind failing because another socket
// holds the address. Some libraries (memberlist) keep only the message.
func addrInUse(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errInUse) || errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	var errno syscall.Errno
	if runtime.GOOS == "windows" && errors.As(err, &errno) && errno == 10048 { // WSAEADDRINUSE
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "Only one usage of each socket address")
}

// retryBind calls bind until it succeeds, fails otherwise than with an
// address in use, or timeout has passed (a timeout of 0 or less: no
// retry). what names the socket in the log and the error, addr its
// address.
func retryBind[T any](log *slog.Logger, what, addr string, timeout time.Duration, bind func() (T, error)) (T, error) {
	start := time.Now()
	wait, waited := 50*time.Millisecond, false
	for {
		v, err := bind()
		if err == nil {
			if waited {
				log.Info(what+": bound once the address was free", "listenAddr", addr)
			}
			return v, nil
		}
		if !addrInUse(err) {
			return v, err
		}
		if time.Since(start) >= timeout {
			if timeout <= 0 {
				return v, err
			}
			return v, fmt.Errorf("%w (still in use after %v: another process holds %s; is another vxnet agent running? --bind-timeout sets the wait)", err, timeout, addr)
		}
		if !waited {
			log.Warn(what+": address in use, perhaps by an agent still shutting down; retrying", "listenAddr", addr, "timeout", timeout.String(), "error", err)
			waited = true
		}
		time.Sleep(min(wait, timeout-time.Since(start)))
		wait = min(2*wait, time.Second)
	}
}

// listenAPISocket listens on the unix socket at path. A socket file there
// that answers is another agent's (in use: retried by the caller); one
// that does not is left from a process that died, and is replaced.
func listenAPISocket(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: a running process answers on it", errInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

// removeOwnSocket removes the socket file at path if it is still the one
// this agent made (mine), not a successor's.
func removeOwnSocket(path string, mine os.FileInfo) {
	if fi, err := os.Lstat(path); err == nil && mine != nil && os.SameFile(fi, mine) {
		os.Remove(path)
	}
}

// listenDNS opens the DNS sockets in a container's namespace at path.
// Their address in use (the resolver of an agent still exiting) is
// retried in the background, and the listener made then (dnsWhenFree);
// the error returned says so. Called with a.mu held.
func (a *Agent) listenDNS(path string) (dns.Conns, error) {
	conns, err := dns.ListenNetns(path, dns.ContainerAddr)
	if err == nil || !addrInUse(err) || a.cfg.BindTimeout <= 0 {
		return conns, err
	}
	if a.dnsWaiting == nil {
		a.dnsWaiting = map[string]bool{}
	}
	if !a.dnsWaiting[path] {
		a.dnsWaiting[path] = true
		go a.dnsWhenFree(path)
	}
	return conns, fmt.Errorf("%w; retrying in the background for up to %v", err, a.cfg.BindTimeout)
}

// dnsWhenFree retries the DNS sockets of the namespace at path until they
// bind, then serves the namespace's networks there, if endpoints of this
// host still use it and nothing else serves it by then.
func (a *Agent) dnsWhenFree(path string) {
	defer func() {
		a.mu.Lock()
		delete(a.dnsWaiting, path)
		a.mu.Unlock()
	}()
	conns, err := retryBind(a.log, "dns", path+" "+dns.ContainerAddr.String(), a.cfg.BindTimeout, func() (dns.Conns, error) {
		return dns.ListenNetns(path, dns.ContainerAddr)
	})
	if err != nil {
		a.log.Error("no DNS in the container's namespace", "netns", path, "error", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	nets := map[string]int{}
	for _, le := range a.local {
		if le.ns == path {
			nets[le.rec.Network]++
		}
	}
	if len(nets) == 0 || a.netns[path] != nil {
		conns.Close()
		return
	}
	l, err := a.dns.Serve(conns, dns.View{Networks: sortedNames(nets)})
	if err != nil {
		a.log.Warn("no DNS in the container's namespace", "netns", path, "error", err)
		return
	}
	a.netns[path] = &nsResolver{l: l, networks: nets}
	a.log.Info("DNS serving in the container's namespace", "netns", path)
}
