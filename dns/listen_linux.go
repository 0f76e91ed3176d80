package dns

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ListenNetns opens UDP and TCP sockets on addr (usually ContainerAddr)
// inside the network namespace at nsPath (/var/run/netns/NAME,
// /proc/PID/ns/net), bringing its loopback up if it is down. The sockets
// stay in that namespace and serve from any goroutine.
func ListenNetns(nsPath string, addr netip.AddrPort) (Conns, error) {
	type result struct {
		c   Conns
		err error
	}
	done := make(chan result, 1)
	// A thread of its own: if switching back fails, the goroutine exits
	// still locked and the runtime discards the thread.
	go func() {
		c, err := listenIn(nsPath, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

func listenIn(nsPath string, addr netip.AddrPort) (Conns, error) {
	runtime.LockOSThread()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return Conns{}, fmt.Errorf("dns: netns %s: %w", nsPath, err)
	}
	defer target.Close()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return Conns{}, fmt.Errorf("dns: own netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return Conns{}, fmt.Errorf("dns: setns %s: %w", nsPath, err)
	}
	c, err := listenUp(addr)
	if e := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); e != nil {
		c.Close()
		return Conns{}, fmt.Errorf("dns: setns back from %s: %w", nsPath, e) // thread stays locked: discarded
	}
	runtime.UnlockOSThread()
	if err != nil {
		return Conns{}, fmt.Errorf("dns: in netns %s: %w", nsPath, err)
	}
	return c, nil
}

// listenUp brings lo up if addr is a loopback address, then listens.
func listenUp(addr netip.AddrPort) (Conns, error) {
	if addr.Addr().IsLoopback() {
		if err := loopbackUp(); err != nil {
			return Conns{}, err
		}
	}
	return Listen(addr)
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}
