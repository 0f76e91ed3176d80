package tun

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw reads a TUN device's file descriptor directly, one packet per call,
// with or without waiting. The inside path uses it instead of Device.Read:
// a read that must not wait replaces a poll followed by a read, which
// halves the system calls per small packet, and a TSO super-packet lands in
// the caller's buffer instead of the wireguard device's own, saving a copy
// of every segment. The caller splits super-packets (see VnetHdr).
//
// Writers (NewWriter) write packets the caller has built, virtio-net
// header included when VnetHdr is true: the outside paths write TCP
// segments they coalesced themselves that way. One goroutine may call Read
// while others each use a Writer of their own.
type Raw struct {
	rc   syscall.RawConn
	vnet bool
	uso  bool
	buf  []byte // the current Read's
	n    int
	err  error
	wait bool
	read func(fd uintptr) bool // bound once: no allocation per call

	// The current ReadBatch's.
	bufs    [][]byte
	sizes   []int
	off     int
	got     int
	drained bool
	batch   func(fd uintptr) bool
}

// Writer writes whole packets to the device; one goroutine's own.
type Writer struct {
	rc    syscall.RawConn
	buf   []byte // the current Write's
	n     int
	err   error
	write func(fd uintptr) bool // bound once: no allocation per call
}

// NewWriter returns a Writer for one goroutine's exclusive use.
func (r *Raw) NewWriter() *Writer {
	w := &Writer{rc: r.rc}
	w.write = w.writeFD
	return w
}

// NewRaw returns a raw reader for dev, or an error if dev is not a Linux
// TUN device with a file descriptor (a fake, for instance).
func NewRaw(dev Device) (*Raw, error) {
	fd, ok := dev.(interface{ File() *os.File })
	if !ok || fd.File() == nil {
		return nil, errors.New("tun: raw reads need a TUN device with a file descriptor")
	}
	rc, err := fd.File().SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: raw reads: %w", err)
	}
	r := &Raw{rc: rc}
	var flags uint16
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq("")
		if err != nil {
			ierr = err
			return
		}
		if ierr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); ierr == nil {
			flags = ifr.Uint16()
		}
	}); err != nil {
		return nil, fmt.Errorf("tun: raw reads: %w", err)
	}
	if ierr != nil {
		return nil, fmt.Errorf("tun: raw reads: TUNGETIFF: %w", ierr)
	}
	r.vnet = flags&unix.IFF_VNET_HDR != 0
	if r.vnet {
		// Whether the kernel takes UDP super-packets (USO, Linux 6.2):
		// asking for the offloads again, UDP's included, fails and
		// changes nothing where it does not (the device was opened with
		// the same request, less USO where refused).
		const tcp = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		rc.Control(func(fd uintptr) {
			r.uso = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tcp|unix.TUN_F_USO4|unix.TUN_F_USO6) == nil
		})
	}
	r.read = r.readFD
	r.batch = r.readBatchFD
	return r, nil
}

// VnetHdr reports whether every packet read starts with a 10-byte
// virtio-net header (the device was opened with offloads).
func (r *Raw) VnetHdr() bool { return r.vnet }

// USO reports whether the device takes UDP super-packets (virtio-net
// GSO_UDP_L4, Linux 6.2 and later) and may hand them over.
func (r *Raw) USO() bool { return r.uso }

func (r *Raw) readFD(fd uintptr) bool {
	for {
		n, err := unix.Read(int(fd), r.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			r.n, r.err = 0, nil
			return !r.wait // false: wait for the device to become readable
		}
		r.n, r.err = n, err
		return true
	}
}

// Read reads one packet into buf. With wait it blocks until one arrives;
// without, it returns 0 and no error when none is queued. After the device
// is closed it returns an error that matches os.ErrClosed.
func (r *Raw) Read(buf []byte, wait bool) (int, error) {
	r.buf, r.wait = buf, wait
	err := r.rc.Read(r.read)
	r.buf = nil
	if err != nil {
		// The poller fails only once the file is closing (its error is
		// internal/poll's, which os.ErrClosed does not match).
		return 0, fmt.Errorf("tun: read: %w (%v)", os.ErrClosed, err)
	}
	if r.err != nil {
		return 0, errClosed("read", r.err)
	}
	return r.n, nil
}

// ReadBatch reads the packets queued on the device, each into
// bufs[i][offset:] with its length in sizes[i], in one pass through the
// poller: small packets come one per read(2), and a batch of them costs
// one system call each and nothing more. It stops when no packet is left
// (drained is then true), when every buffer is used, or after a
// super-packet (a virtio-net header with a GSO type): its segments need the
// buffers after it. With wait it blocks until the first packet arrives;
// without, it may return 0 packets. After the device is closed it returns
// an error that matches os.ErrClosed, and the packets read before.
func (r *Raw) ReadBatch(bufs [][]byte, offset int, sizes []int, wait bool) (n int, drained bool, err error) {
	if len(bufs) == 0 {
		return 0, false, nil
	}
	r.bufs, r.sizes, r.off, r.wait = bufs, sizes[:len(bufs)], offset, wait
	r.got, r.drained, r.err = 0, false, nil
	perr := r.rc.Read(r.batch)
	n, drained = r.got, r.drained
	r.bufs, r.sizes = nil, nil
	if perr != nil {
		return n, false, fmt.Errorf("tun: read: %w (%v)", os.ErrClosed, perr)
	}
	if r.err != nil {
		return n, false, errClosed("read", r.err)
	}
	return n, drained, nil
}

// readBatchFD reads until the queue is empty. The reads never wait (the
// descriptor is non-blocking), so they skip the scheduler's system-call
// bookkeeping (RawSyscall): with small packets that is a fifth of the cost
// of a read.
func (r *Raw) readBatchFD(fd uintptr) bool {
	r.drained = false
	for r.got < len(r.bufs) {
		b := r.bufs[r.got][r.off:]
		if len(b) == 0 {
			r.err = unix.EINVAL
			return true
		}
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			r.sizes[r.got] = int(n)
			r.got++
			if r.vnet && n >= 2 && b[1] != 0 {
				return true // a super-packet: its segments take the next buffers
			}
		case unix.EINTR:
		case unix.EAGAIN:
			r.drained = true
			return r.got > 0 || !r.wait // nothing yet: wait for the device
		default:
			r.err = e
			return true
		}
	}
	return true
}

// errClosed turns a descriptor gone bad into os.ErrClosed; other errors
// get the operation's prefix.
func errClosed(op string, err error) error {
	if errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EBADF) {
		return fmt.Errorf("tun: %s: %w", op, os.ErrClosed)
	}
	return fmt.Errorf("tun: %s: %w", op, err)
}

func (w *Writer) writeFD(fd uintptr) bool {
	if len(w.buf) == 0 {
		w.n, w.err = 0, nil
		return true
	}
	for {
		// Raw: the descriptor never blocks (see readBatchFD).
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false
		}
		w.n, w.err = int(n), nil
		if e != 0 {
			w.n, w.err = 0, e
		}
		return true
	}
}

// Write writes one packet (with its virtio-net header when VnetHdr).
func (w *Writer) Write(b []byte) (int, error) {
	w.buf = b
	err := w.rc.Write(w.write)
	w.buf = nil
	if err != nil {
		return 0, fmt.Errorf("tun: write: %w (%v)", os.ErrClosed, err)
	}
	if w.err != nil {
		return 0, errClosed("write", w.err)
	}
	return w.n, nil
}
