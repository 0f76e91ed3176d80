// Package udp is the VXLAN underlay port of the userspace VXLAN switch.
//
// A Conn owns one listening UDP socket bound to (Config.Addr, Config.Port)
// that receives all underlay traffic, plus Config.SourcePorts send-only
// sockets bound to the same local address, on ports in 49152-65535 (from a
// random start, past those in use). RFC 7348 §5 recommends deriving the
// VXLAN outer UDP source port from a hash of the inner flow, in that range,
// so that underlay ECMP/RSS spreads flows; the caller passes that hash per
// packet to WriteBatch and the packet is sent from the socket
// (hashes[i] &^ TrainStart) % len(SourcePorts()). Sockets rather than a
// port written per packet keep UDP GSO: one message of many datagrams
// leaves one socket.
//
// The kernel never fragments a datagram (RFC 7348 §4.3): every socket sets
// DF (IP_PMTUDISC_DO), and a datagram too big for the path to its
// destination is dropped and counted (Stats.TxTooBig), its destination
// kept for TooBig, so that the caller can learn the path's MTU and tell
// the inner sender.
//
// On Linux datagrams are read and written in batches with recvmmsg(2) and
// sendmmsg(2) on non-blocking sockets driven by the Go netpoller (via
// syscall.RawConn), and ReadBatch/WriteBatch perform no heap allocations
// after Listen returns. WriteBatch hands runs of equal-sized datagrams to
// one destination to the kernel as one message with UDP GSO (UDP_SEGMENT),
// and ReadBatchGRO takes trains the kernel coalesced with UDP GRO; both fall
// back to single datagrams where the kernel cannot. Other platforms use a portable one-datagram-at-a-time
// fallback with the same API.
//
// Addresses: IPv4 peers are always reported as plain IPv4 netip.Addr (never
// IPv4-mapped IPv6), also on a dual-stack socket. Destinations may be given
// either way.
//
// Concurrency: all methods are safe for concurrent use. Concurrent
// ReadBatch calls are serialised against each other (they share the
// preallocated receive scratch), as are concurrent WriteBatch calls; a
// reader and a writer run in parallel.
package udp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

const (
	// DefaultSourcePorts is the default number of send sockets.
	DefaultSourcePorts = 32
	// SourcePortMin and SourcePortMax bound the ports send sockets bind
	// to: RFC 7348 §5's recommended range for the outer source port.
	SourcePortMin, SourcePortMax = 49152, 65535
	// MaxSourcePorts bounds Config.SourcePorts.
	MaxSourcePorts = 1024
	// DefaultBatchSize is the default Config.BatchSize.
	DefaultBatchSize = 64
	// MaxBatchSize bounds Config.BatchSize.
	MaxBatchSize = 1024
	// DefaultSocketBuffer is the default SO_RCVBUF/SO_SNDBUF size.
	DefaultSocketBuffer = 4 << 20
	// MaxSocketBuffer bounds Config.SocketBuffer.
	MaxSocketBuffer = 1 << 30
)

// Config configures Listen. The zero value of every field selects its
// default, so Config{} is equivalent to DefaultConfig() (bound to all
// addresses, dual stack).
type Config struct {
	Addr         netip.Addr // local address to bind (the VTEP); zero value = all addresses, dual stack
	Port         uint16     // listening port; default 4789 (0 in config means default)
	SourcePorts  int        // number of send sockets for per-flow source ports, bound in SourcePortMin-SourcePortMax; default 32; negative means none (send from the listening socket)
	BatchSize    int        // max packets per ReadBatch/WriteBatch call; default 64, max 1024
	SocketBuffer int        // SO_RCVBUF/SO_SNDBUF bytes; default 4<<20
	// ReusePort opens the listening socket with SO_REUSEPORT (Linux): Conns
	// listening on one port with it set split the datagrams between them,
	// by the hash of the sender's address and port, so each of a switch's
	// receive queues sees whole flows.
	ReusePort bool
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Port:         vxlan.DefaultPort,
		SourcePorts:  DefaultSourcePorts,
		BatchSize:    DefaultBatchSize,
		SocketBuffer: DefaultSocketBuffer,
	}
}

// Stats is a snapshot of a Conn's counters.
type Stats struct {
	RxPackets   uint64 // datagrams returned by ReadBatch
	RxTruncated uint64 // datagrams dropped because they did not fit the buffer
	TxPackets   uint64 // datagrams accepted by the kernel
	TxErrors    uint64 // datagrams dropped on send (unreachable, bad address, too big, ...)
	// TxTooBig: datagrams dropped on send because they do not fit the path
	// to their destination (EMSGSIZE: the kernel never fragments them;
	// counted in TxErrors too). Conn.TooBig names the destinations.
	TxTooBig uint64
}

type counters struct {
	rxPackets, rxTruncated, txPackets, txErrors, txTooBig atomic.Uint64
}

func (c *counters) snapshot() Stats {
	// TxTooBig first: senders count TxErrors first, so TxTooBig never
	// shows more than TxErrors.
	tooBig := c.txTooBig.Load()
	return Stats{
		RxPackets:   c.rxPackets.Load(),
		RxTruncated: c.rxTruncated.Load(),
		TxPackets:   c.txPackets.Load(),
		TxErrors:    c.txErrors.Load(),
		TxTooBig:    tooBig,
	}
}

var (
	errShortSizes = fmt.Errorf("udp: ReadBatch: sizes or from shorter than bufs")
	errShortTo    = fmt.Errorf("udp: WriteBatch: to or hashes shorter than bufs")
)

// normalize validates cfg and fills in defaults. sourcePorts in the result is
// 0 when packets are sent from the listening socket.
func (cfg Config) normalize() (Config, error) {
	if cfg.Addr.Is4In6() {
		cfg.Addr = cfg.Addr.Unmap()
	}
	if cfg.Port == 0 {
		cfg.Port = vxlan.DefaultPort
	}
	switch {
	case cfg.SourcePorts == 0:
		cfg.SourcePorts = DefaultSourcePorts
	case cfg.SourcePorts < 0:
		cfg.SourcePorts = 0
	case cfg.SourcePorts > MaxSourcePorts:
		return cfg, fmt.Errorf("udp: config SourcePorts %d out of range 0-%d (negative means none)", cfg.SourcePorts, MaxSourcePorts)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize {
		return cfg, fmt.Errorf("udp: config BatchSize %d out of range 1-%d", cfg.BatchSize, MaxBatchSize)
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	if cfg.SocketBuffer < 1 || cfg.SocketBuffer > MaxSocketBuffer {
		return cfg, fmt.Errorf("udp: config SocketBuffer %d out of range 1-%d", cfg.SocketBuffer, MaxSocketBuffer)
	}
	return cfg, nil
}

// dualStack reports whether the configured address asks for a dual-stack
// socket on [::].
func (cfg Config) dualStack() bool {
	return !cfg.Addr.IsValid() || (cfg.Addr.Is6() && cfg.Addr.IsUnspecified())
}

// Listen validates cfg and opens the listening socket and the send sockets.
func Listen(cfg Config) (*Conn, error) {
	return listen(cfg, false)
}

// openSocket creates one UDP socket bound to addr:port (port 0 = ephemeral).
// control runs on the raw socket before bind.
func openSocket(cfg Config, port uint16, control func(network, address string, c syscall.RawConn) error) (*net.UDPConn, error) {
	network := "udp4"
	bind := cfg.Addr
	switch {
	case cfg.dualStack():
		// "udp" with a wildcard address yields an AF_INET6 socket with
		// IPV6_V6ONLY=0 (falling back to AF_INET on IPv4-only hosts).
		network = "udp"
		bind = netip.IPv6Unspecified()
	case cfg.Addr.Is6():
		network = "udp6"
	}
	lc := net.ListenConfig{Control: control}
	pc, err := lc.ListenPacket(context.Background(), network, netip.AddrPortFrom(bind, port).String())
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s: %w", netip.AddrPortFrom(bind, port), err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("udp: listen: unexpected %T", pc)
	}
	return uc, nil
}

func udpAddrPort(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// TrainStart, set in a datagram's hash, starts a GSO train with it: it
// joins no train already open on its socket. A sender marks the first
// datagram of what the receiver should be able to take as one piece (the
// segments of one TSO super-packet) and the first after it, so that a train
// never straddles two of them. The other 31 bits pick the send socket.
const TrainStart uint32 = 1 << 31

// BatchWriter sends datagrams in batches; see Conn.WriteBatch for the
// contract. Conn.NewWriter returns one per goroutine.
type BatchWriter interface {
	WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error)
}
