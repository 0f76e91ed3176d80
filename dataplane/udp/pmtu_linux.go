//go:build linux

package udp

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// PathMTU returns the kernel's MTU for the path from local (if valid) to
// dst: the route's, lowered by what ICMP "fragmentation needed" and
// "packet too big" messages taught the kernel. It sends nothing.
func PathMTU(local, dst netip.Addr) (int, error) {
	dst = dst.Unmap()
	family, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_MTU
	if dst.Is6() {
		family, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MTU
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("udp: path MTU to %v: socket: %w", dst, err)
	}
	defer unix.Close(fd)
	if local = local.Unmap(); local.IsValid() && local.Is6() == dst.Is6() {
		if err := unix.Bind(fd, sockaddrOf(local, 0)); err != nil {
			return 0, fmt.Errorf("udp: path MTU from %v: bind: %w", local, err)
		}
	}
	if err := unix.Connect(fd, sockaddrOf(dst, 4789)); err != nil {
		return 0, fmt.Errorf("udp: path MTU to %v: connect: %w", dst, err)
	}
	mtu, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		return 0, fmt.Errorf("udp: path MTU to %v: getsockopt: %w", dst, err)
	}
	return mtu, nil
}

func sockaddrOf(a netip.Addr, port int) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: port, Addr: a.As16()}
}
