package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Create creates a TUN device inside cfg.Netns, assigns its addresses and
// brings it up. The returned Device can be used from any goroutine: the file
// descriptor stays bound to the device whichever namespace reads it.
func Create(cfg Config) (Device, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var dev Device
	err := inNetns(cfg.Netns, func() error {
		d, err := wgtun.CreateTUN(cfg.Name, cfg.MTU)
		if err != nil {
			if l, lerr := netlink.LinkByName(cfg.Name); lerr == nil {
				// Another device holds the name: another endpoint's
				// (busy), the loopback, a veth.
				return fmt.Errorf("tun: create %s: %w (a %s device): %w", cfg.Name, ErrNameTaken, l.Type(), err)
			}
			return fmt.Errorf("tun: create %s: %w", cfg.Name, err)
		}
		if err := configure(cfg); err != nil {
			d.Close()
			return err
		}
		dev = d
		return nil
	})
	return dev, err
}

// configure runs in the target namespace.
func configure(cfg Config) error {
	link, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return fmt.Errorf("tun: find %s: %w", cfg.Name, err)
	}
	if err := limitSegments(link, cfg.MTU); err != nil {
		return err
	}
	for _, p := range cfg.Addresses {
		if err := addAddress(link, cfg.Name, p); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tun: set %s up: %w", cfg.Name, err)
	}
	for _, p := range cfg.Routes {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: prefixToIPNet(p.Masked())}
		err := netlink.RouteAdd(r)
		for metric := 100; errors.Is(err, unix.EEXIST) && p.Bits() == 0 && metric < 116; metric++ {
			// A container on a second network that has a way out: the
			// first's default route stays the one used; this one, at a
			// higher metric, takes over if the first network goes.
			r.Priority = metric
			err = netlink.RouteAdd(r)
		}
		if err != nil {
			return fmt.Errorf("tun: add route %v via %s: %w", p, cfg.Name, err)
		}
	}
	return nil
}

// limitSegments caps the TCP super-packets the kernel hands the device
// (gso_max_segs) at what one train of the underlay carries
// (vxlan.SegmentsPerTrain), so each leaves in one UDP GSO message and is
// written to the receiving port in one piece. The kernel cuts larger sends
// itself; nothing else changes for the container.
func limitSegments(link netlink.Link, mtu int) error {
	n := vxlan.SegmentsPerTrain(mtu)
	if err := netlink.LinkSetGSOMaxSegs(link, n); err != nil {
		return fmt.Errorf("tun: set gso_max_segs %d on %s: %w", n, link.Attrs().Name, err)
	}
	return nil
}

func linkAddr(p netip.Prefix) *netlink.Addr {
	addr := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if p.Addr().Is4() {
		addr.Broadcast = BroadcastOf(p).AsSlice()
	}
	return addr
}

func addAddress(link netlink.Link, name string, p netip.Prefix) error {
	if err := netlink.AddrAdd(link, linkAddr(p)); err != nil {
		return fmt.Errorf("tun: add address %v to %s: %w", p, name, err)
	}
	return nil
}

// Readdress changes the addresses of the device name in namespace netns:
// the old ones go first, so that the container sends from them no more,
// then the new ones come, then routes are put back (the kernel drops a
// device's routes with its last address). An old address already gone and
// a route already there are not errors.
func Readdress(netns, name string, remove, add, routes []netip.Prefix) error {
	return inNetns(netns, func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("tun: find %s: %w", name, err)
		}
		for _, p := range remove {
			err := netlink.AddrDel(link, linkAddr(p))
			if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("tun: remove address %v from %s: %w", p, name, err)
			}
		}
		for _, p := range add {
			if err := addAddress(link, name, p); err != nil {
				return err
			}
		}
		for _, p := range routes {
			r := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: prefixToIPNet(p.Masked())}
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("tun: route %v via %s: %w", p, name, err)
			}
		}
		return nil
	})
}

// inNetns runs fn on a locked OS thread switched into the named namespace.
// The thread is returned to the caller's namespace afterwards; if that fails
// the thread stays locked so the runtime discards it.
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	path := NetnsPath(name)
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("tun: config Netns %q: %w", name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("tun: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("tun: enter namespace %q: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return errors.Join(ferr, fmt.Errorf("tun: return from namespace %q: %w", name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// NetnsPath turns a namespace name as `ip netns` knows it into a path;
// anything containing a '/' is taken as a path already.
func NetnsPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return filepath.Join("/var/run/netns", name)
}
