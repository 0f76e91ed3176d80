package tun

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vxnet/vxnet/internal/rawio"
	"golang.org/x/sys/unix"
)

// Raw reads a TUN device's file descriptor directly (ReadBatch). The inside
// path uses it instead of Device.Read: a read that must not wait replaces a
// poll followed by a read, which halves the system calls per small packet,
// and a TSO super-packet lands in the caller's buffer instead of the
// wireguard device's own, saving a copy of every segment. The caller splits
// super-packets (see VnetHdr).
//
// Writers (NewWriter) write packets the caller has built, virtio-net
// header included when VnetHdr is true: the outside paths write TCP and UDP
// super-packets they coalesced themselves that way. One goroutine may call
// ReadBatch while others each use a Writer of their own.
type Raw struct {
	rc   syscall.RawConn
	vnet bool
	uso  bool

	// The current ReadBatch's.
	bufs    [][]byte
	sizes   []int
	lender  Lender // ReadBatchLent's; nil for ReadBatch
	off     int
	wait    bool
	got     int
	drained bool
	err     error
	batch   func(fd uintptr) bool // bound once: no allocation per call
}

// A Lender lends ReadBatchLent the buffers it reads into, only for as long
// as the device has packets: a reader that waits holds none.
type Lender interface {
	// Lend returns the buffers to read into, as for ReadBatch, with
	// len(sizes) >= len(bufs). They stay lent until Unlend is called or
	// ReadBatchLent returns with them.
	Lend() (bufs [][]byte, sizes []int)
	// Unlend takes back the buffers of the last Lend, unread: the device
	// had no packet after all, and the reader is about to wait.
	Unlend()
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
	r.batch = r.readBatchFD
	return r, nil
}

// VnetHdr reports whether every packet read starts with a 10-byte
// virtio-net header (the device was opened with offloads).
func (r *Raw) VnetHdr() bool { return r.vnet }

// USO reports whether the device takes UDP super-packets (virtio-net
// GSO_UDP_L4, Linux 6.2 and later) and may hand them over.
func (r *Raw) USO() bool { return r.uso }

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

// ReadBatchLent is ReadBatch with wait set, for a reader that holds no
// buffers while it waits: l lends them each time the device may have a
// packet (first, and whenever the poller wakes the reader) and takes them
// back, unread, before each wait. When it returns, the buffers of l's last
// Lend (if not taken back) hold the n packets read; after the device is
// closed it may return with none lent.
func (r *Raw) ReadBatchLent(l Lender, offset int) (n int, drained bool, err error) {
	r.lender = l
	r.bufs, r.sizes, r.off, r.wait = nil, nil, offset, true
	r.got, r.drained, r.err = 0, false, nil
	perr := r.rc.Read(r.batch)
	n, drained = r.got, r.drained
	r.bufs, r.sizes, r.lender = nil, nil, nil
	if perr != nil {
		return n, false, fmt.Errorf("tun: read: %w (%v)", os.ErrClosed, perr)
	}
	if r.err != nil {
		return n, false, errClosed("read", r.err)
	}
	return n, drained, nil
}

// readBatchFD reads until the queue is empty (rawio: the reads never wait).
func (r *Raw) readBatchFD(fd uintptr) bool {
	r.drained = false
	if r.lender != nil && r.bufs == nil {
		r.bufs, r.sizes = r.lender.Lend()
		r.sizes = r.sizes[:len(r.bufs)]
	}
	for r.got < len(r.bufs) {
		b := r.bufs[r.got][r.off:]
		n, e := rawio.Read(fd, b)
		switch e {
		case 0:
			r.sizes[r.got] = n
			r.got++
			if r.vnet && n >= 2 && b[1] != 0 {
				return true // a super-packet: its segments take the next buffers
			}
		case unix.EAGAIN:
			r.drained = true
			if r.got > 0 || !r.wait {
				return true
			}
			// Nothing yet: wait for the device, holding no buffers.
			if r.lender != nil {
				r.lender.Unlend()
				r.bufs, r.sizes = nil, nil
			}
			return false
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
	n, e := rawio.Write(fd, w.buf)
	if e == unix.EAGAIN {
		return false
	}
	w.n, w.err = n, nil
	if e != 0 {
		w.err = e
	}
	return true
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
