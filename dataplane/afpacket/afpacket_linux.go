package afpacket

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/vxnet/vxnet/internal/rawio"
	"golang.org/x/sys/unix"
)

// Conn is an AF_PACKET socket bound to one interface. It sees the frames
// that arrive on the interface (not those the host or this socket sends)
// and sends whole frames out of it. One goroutine may read while others
// write.
type Conn struct {
	f   *os.File
	rc  syscall.RawConn
	mac [6]byte

	// the current read's, bound once: no allocation per call
	buf  []byte
	n    int
	err  error
	wait bool
	read func(fd uintptr) bool
}

// Open binds a socket to the interface called name. With promisc the
// interface also hands over frames for other MACs (the endpoints' own, on
// a transparent network).
func Open(name string, promisc bool) (*Conn, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("afpacket: uplink %q: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("afpacket: uplink %q has no Ethernet address", name)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket: %w", err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: uplink %q: %s: %w", name, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	c := &Conn{f: os.NewFile(uintptr(fd), "afpacket:"+name)}
	copy(c.mac[:], ifi.HardwareAddr)
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("afpacket: uplink %q: %w", name, err)
	}
	c.read = c.readFD
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// HardwareAddr is the interface's MAC.
func (c *Conn) HardwareAddr() [6]byte { return c.mac }

// readFD reads one frame (rawio: the socket never blocks).
func (c *Conn) readFD(fd uintptr) bool {
	n, e := rawio.Read(fd, c.buf)
	if e == unix.EAGAIN {
		c.n, c.err = 0, nil
		return !c.wait
	}
	c.n, c.err = n, nil
	if e != 0 {
		c.err = e
	}
	return true
}

// ReadBatch reads frames into bufs[i][offset:], waiting for the first and
// taking the others only while they are queued. A frame that fills its
// buffer may have been cut short and is dropped: give buffers room for the
// largest frame (a veth hands over 64 KB TSO frames whole).
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		c.buf, c.wait = bufs[n][offset:], n == 0
		err := c.rc.Read(c.read)
		c.buf = nil
		if err != nil {
			return n, fmt.Errorf("afpacket: read: %w (%v)", os.ErrClosed, err)
		}
		if c.err != nil {
			return n, fmt.Errorf("afpacket: read: %w", c.err)
		}
		if c.n == 0 {
			break
		}
		if c.n >= len(bufs[n])-offset {
			continue // perhaps truncated
		}
		sizes[n] = c.n
		n++
	}
	return n, nil
}

// Writer sends frames out of the interface; one goroutine's own (it keeps
// the current call's state, so a write allocates nothing).
type Writer struct {
	rc    syscall.RawConn
	frame []byte
	err   error
	write func(fd uintptr) bool
}

// NewWriter returns a Writer for one goroutine's exclusive use.
func (c *Conn) NewWriter() *Writer {
	w := &Writer{rc: c.rc}
	w.write = w.writeFD
	return w
}

// writeFD sends one frame, as readFD reads.
func (w *Writer) writeFD(fd uintptr) bool {
	_, e := rawio.Write(fd, w.frame)
	if e == unix.EAGAIN {
		return false
	}
	w.err = nil
	if e != 0 {
		w.err = e
	}
	return true
}

// Write sends one frame.
func (w *Writer) Write(frame []byte) error {
	w.frame = frame
	err := w.rc.Write(w.write)
	w.frame = nil
	if err != nil {
		return fmt.Errorf("afpacket: write: %w (%v)", os.ErrClosed, err)
	}
	return w.err
}

// Close closes the socket; a blocked ReadBatch returns os.ErrClosed.
func (c *Conn) Close() error { return c.f.Close() }
