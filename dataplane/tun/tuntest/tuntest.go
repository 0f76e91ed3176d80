// Package tuntest is an in-memory tun.Device for unit tests: the test plays
// the container, injecting the packets it "sends" and receiving the packets
// the switch writes to it.
package tuntest

import (
	"os"
	"sync"

	"github.com/vxnet/vxnet/dataplane/tun"
)

// VirtioHeaderLen is the size of the header a Linux TUN device with
// offloads writes in front of each packet.
const VirtioHeaderLen = 10

// Device is a fake TUN. Packets passed to Inject come out of Read; packets
// given to Write come out of Outbound. It is safe for concurrent use.
type Device struct {
	inbound  chan []byte // container -> switch
	outbound chan []byte // switch -> container
	batch    int
	closed   chan struct{}
	once     sync.Once
}

var _ tun.Device = (*Device)(nil)

// New returns a fake device that reads up to batch packets at a time and
// buffers up to queue packets in each direction (writes beyond that block).
func New(batch, queue int) *Device {
	return &Device{
		inbound:  make(chan []byte, queue),
		outbound: make(chan []byte, queue),
		batch:    batch,
		closed:   make(chan struct{}),
	}
}

// Inject queues a packet as if the container had sent it. The packet is
// copied. It returns false if the device is closed.
func (d *Device) Inject(pkt []byte) bool {
	p := append([]byte(nil), pkt...)
	select {
	case d.inbound <- p:
		return true
	case <-d.closed:
		return false
	}
}

// Outbound delivers copies of the packets the switch wrote.
func (d *Device) Outbound() <-chan []byte { return d.outbound }

// Read implements tun.Device.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var first []byte
	select {
	case first = <-d.inbound:
	case <-d.closed:
		return 0, os.ErrClosed
	}
	sizes[0] = copy(bufs[0][offset:], first)
	n := 1
	for n < len(bufs) && n < d.batch {
		select {
		case p := <-d.inbound:
			sizes[n] = copy(bufs[n][offset:], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Write implements tun.Device. Like the real device it scribbles over the
// bytes in front of offset (where a virtio-net header goes), and like a
// device that coalesces segments it changes the packet in any buffer with
// spare capacity, after taking its copy. Code that hands one buffer to
// several writes without capping its capacity shows up as corrupt packets.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		p := append([]byte(nil), b[offset:]...)
		if offset >= VirtioHeaderLen {
			for j := offset - VirtioHeaderLen; j < offset; j++ {
				b[j] = 0xAA
			}
		}
		if cap(b) > len(b) && len(b) > offset {
			b[offset] ^= 0xff
		}
		select {
		case d.outbound <- p:
		case <-d.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

// BatchSize implements tun.Device.
func (d *Device) BatchSize() int { return d.batch }

// Close implements tun.Device.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}
