package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// A handover device is made in the caller's namespace, unconfigured, for a
// container runtime to move into a container and configure (Docker's
// network plugins hand over an interface this way: the container's
// namespace does not exist yet when the plugin is asked for one). It is
// persistent, so that it stays in the container while the agent restarts;
// Remove ends it.

// CreateHandover creates a persistent TUN device called name in the
// caller's namespace, down and without addresses.
func CreateHandover(name string, mtu int) (Device, error) {
	cfg := Config{Name: name, MTU: mtu}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d, err := wgtun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("tun: create %s: %w", cfg.Name, err)
	}
	if err := setPersist(d, true); err != nil {
		d.Close()
		return nil, fmt.Errorf("tun: make %s persistent: %w", cfg.Name, err)
	}
	link, err := netlink.LinkByName(cfg.Name)
	if err == nil {
		err = limitSegments(link, cfg.MTU)
	}
	if err != nil {
		setPersist(d, false)
		d.Close()
		return nil, fmt.Errorf("tun: %s: %w", cfg.Name, err)
	}
	return d, nil
}

// Adopt opens again the persistent TUN device in namespace netns that
// holds addr: a handed-over device, after the agent restarted. It returns
// the device and its name there.
func Adopt(netns string, addr netip.Addr, mtu int) (Device, string, error) {
	var dev Device
	var name string
	err := inNetns(netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("tun: list devices: %w", err)
		}
		for _, l := range links {
			if l.Type() != "tuntap" {
				continue
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
					name = l.Attrs().Name
				}
			}
		}
		if name == "" {
			return fmt.Errorf("tun: no TUN device holds %v in %s", addr, netns)
		}
		d, err := wgtun.CreateTUN(name, mtu)
		if err != nil {
			return fmt.Errorf("tun: open %s again: %w", name, err)
		}
		dev = d
		return nil
	})
	return dev, name, err
}

// Remove ends a handover device: it goes with its last descriptor, which
// Close (after Remove) closes, wherever it is by then.
func Remove(d Device) error { return setPersist(d, false) }

// Where tells whether handover device d is inside the namespace at path
// by now, and its name there.
func Where(d Device, path string) (inside bool, name string, err error) {
	f, ok := d.(interface{ File() *os.File })
	if !ok {
		return false, "", errors.ErrUnsupported
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, "", nil // not made yet
	}
	var devNS int
	var ifr [unix.IFNAMSIZ + 64]byte
	rc, err := f.File().SyscallConn()
	if err != nil {
		return false, "", err
	}
	var ioErr error
	rc.Control(func(fd uintptr) {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNGETDEVNETNS, 0)
		if errno != 0 {
			ioErr = fmt.Errorf("TUNGETDEVNETNS: %w", errno)
			return
		}
		devNS = int(r)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNGETIFF, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
			ioErr = fmt.Errorf("TUNGETIFF: %w", errno)
		}
	})
	if ioErr != nil {
		if devNS > 0 {
			unix.Close(devNS)
		}
		return false, "", ioErr
	}
	defer unix.Close(devNS)
	var nst unix.Stat_t
	if err := unix.Fstat(devNS, &nst); err != nil {
		return false, "", err
	}
	n := 0
	for n < unix.IFNAMSIZ && ifr[n] != 0 {
		n++
	}
	return nst.Ino == st.Ino && nst.Dev == st.Dev, string(ifr[:n]), nil
}

func setPersist(d Device, on bool) error {
	f, ok := d.(interface{ File() *os.File })
	if !ok {
		return errors.ErrUnsupported
	}
	rc, err := f.File().SyscallConn()
	if err != nil {
		return err
	}
	var v uintptr
	if on {
		v = 1
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNSETPERSIST, v); errno != 0 {
			ioErr = errno
		}
	}); err != nil {
		return err
	}
	return ioErr
}

// Sweep removes the persistent TUN devices of the caller's namespace whose
// names start with prefix and that no process holds open: handover
// devices left when their endpoint went while the agent was away (the
// runtime moved them back to the host) or before the agent recorded them.
// It returns the names it removed.
func Sweep(prefix string) ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("tun: list devices: %w", err)
	}
	var removed []string
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "tuntap" || len(name) <= len(prefix) || name[:len(prefix)] != prefix {
			continue
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return removed, fmt.Errorf("tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if errors.Is(err, unix.EBUSY) {
			unix.Close(fd) // held open: in use
			continue
		}
		if err == nil {
			err = unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0)
		}
		unix.Close(fd)
		if err != nil {
			errs = append(errs, fmt.Errorf("tun: remove %s: %w", name, err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
