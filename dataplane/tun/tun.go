// Package tun creates the layer-3 ports of the vxnet switch: TUN devices on
// Linux (created inside a container's network namespace) and Wintun adapters
// on Windows, both through golang.zx2c4.com/wireguard/tun.
//
// A Device is read and written in batches at an offset, so the switch can
// prepend the inner Ethernet and VXLAN headers in place (see
// dataplane.Headroom). On Linux the device is opened with IFF_VNET_HDR, so
// the kernel hands over TCP segments of up to 64 KB (TSO) that Read splits,
// and Write coalesces consecutive segments again (GRO).
package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Device is a batched layer-3 port. It is the subset of wireguard's
// tun.Device that the switch uses, so fakes (see tuntest) stay small.
type Device interface {
	// Read reads one or more packets into bufs, each starting at offset,
	// and sets sizes[i] to the length of packet i. len(sizes) >= len(bufs)
	// and len(bufs) >= BatchSize(). It blocks until a packet arrives and
	// returns os.ErrClosed (wrapped or not) after Close.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write writes the packets bufs[i][offset:]. offset must be at least
	// 10 (a virtio-net header is written in front of the packet). Write may
	// reorder the elements of bufs and grow them up to their capacity while
	// it coalesces segments; callers pass a scratch slice they own.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the largest number of packets Read returns at once. It
	// never changes.
	BatchSize() int
	// Close closes the device; it is safe to call more than once.
	Close() error
}

// Config describes a port to create.
type Config struct {
	// Name is the interface name inside the namespace. Default "vxnet0".
	Name string
	// Netns is the network namespace to create the device in: a name
	// managed by `ip netns` (looked up under /var/run/netns) or a path such
	// as /proc/PID/ns/net. Empty means the caller's namespace.
	Netns string
	// MTU of the device in bytes. Default 1450 (a 1500-byte underlay minus
	// 50 bytes of VXLAN encapsulation).
	MTU int
	// Addresses to assign, with their prefix lengths; the kernel adds the
	// connected routes. IPv6 addresses skip duplicate address detection.
	Addresses []netip.Prefix
	// Routes go through the device besides the connected ones: 0.0.0.0/0
	// gives the container a default route (the nat driver's gateway). A
	// default route the namespace has already (the container's first
	// network's) stays the one used: this device's gets a higher metric.
	Routes []netip.Prefix
}

// DefaultMTU is the inner MTU for a 1500-byte IPv4 underlay (50 bytes
// of VXLAN, UDP and IPv4 headers).
const DefaultMTU = 1450

// DefaultMTU6 is the inner MTU for a 1500-byte IPv6 underlay (70 bytes:
// an IPv6 header is 20 bytes longer).
const DefaultMTU6 = 1430

// DefaultMTUFor is the default inner MTU for a 1500-byte underlay of
// vtep's family.
func DefaultMTUFor(vtep netip.Addr) int {
	if vtep.Is6() && !vtep.Is4In6() {
		return DefaultMTU6
	}
	return DefaultMTU
}

// DefaultName is the interface name used when Config.Name is empty.
const DefaultName = "vxnet0"

// MaxNameLen is the longest interface name Linux accepts (IFNAMSIZ-1).
const MaxNameLen = 15

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
}

func (c *Config) validate() error {
	if len(c.Name) > MaxNameLen || strings.ContainsAny(c.Name, "/ \t\n") {
		return fmt.Errorf("tun: config Name %q: must be 1-%d characters without '/' or spaces", c.Name, MaxNameLen)
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return fmt.Errorf("tun: config MTU %d out of range 576-65535", c.MTU)
	}
	for _, p := range c.Addresses {
		if !p.IsValid() {
			return fmt.Errorf("tun: config Addresses: invalid prefix %v", p)
		}
	}
	for _, p := range c.Routes {
		if !p.IsValid() {
			return fmt.Errorf("tun: config Routes: invalid prefix %v", p)
		}
	}
	return nil
}

// ErrNameTaken: the namespace has a device of the name asked for that is
// not a TUN device this package can open.
var ErrNameTaken = errors.New("the namespace has a device of that name")
