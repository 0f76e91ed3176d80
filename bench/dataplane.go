package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// The data-plane benchmark compares, on one machine and in one run, up to
// seven ways across a two-host testbed built from network namespaces:
//
//	underlay   host 1 ──veth (MTU 1500)── host 2                the limit
//	kernel     c1 ─ vxlan dev ═ host 1 ──veth── host 2 ═ vxlan dev ─ c2
//	vxnet      c1 ─ TUN ─ vxnet ═ host 1 ──veth── host 2 ═ vxnet ─ TUN ─ c2
//	encrypted  the same, the network encrypted (every datagram sealed)
//	wireguard  host 1 ─ TUN ─ wireguard-go ──veth── wireguard-go ─ TUN ─ host 2
//	relay      c1 ─ TUN ─ socat ═ host 1 ──veth── host 2 ═ socat ─ TUN ─ c2
//	ovs        c1 ─ veth ─ OVS  ═ host 1 ──veth── host 2 ═ OVS  ─ veth ─ c2
//
// wireguard-go, the userspace WireGuard, is the encrypted path's peer
// (dataplane_sealed_linux.go): it runs when wg and wireguard-go are
// installed (make deps).
//
// The relay is the simplest userspace data plane there is: socat copying
// each packet between a TUN device and a UDP socket, one per wakeup, no
// VXLAN, no offloads. It shows what a packet's trips through userspace
// cost on the machine at hand, whatever the program does with it: on a
// virtual machine whose idle cores are expensive to wake, that alone puts
// the round trip several times the kernel's. It runs when socat is
// installed.
//
// Open vSwitch is the userspace VXLAN data plane people run today: its
// userspace ("netdev") datapath with userspace tunnelling, each host's
// ovsdb-server and ovs-vswitchd the benchmark's own (dataplane_ovs_linux.go).
// It runs when openvswitch-switch is installed.
//
// The kernel's vxlan device is created in the host namespace (which keeps
// its UDP socket) and then moved into the container namespace. The vxnet
// hosts run `vxnet dataplane --config` with a static two-host file. Each
// repetition measures every path in turn (underlay, kernel, vxnet,
// vxnet-vip, encrypted, wireguard, relay, ovs),
// so that a burst of load elsewhere on the machine hits all alike.

// Paths, in the order each repetition measures them.
const (
	PathUnderlay  = "underlay"
	PathKernel    = "kernel"
	PathVxnet     = "vxnet"
	PathVIP       = "vxnet-vip"
	PathSealed    = "vxnet-encrypted"
	PathWireGuard = "wireguard-go"
	PathRelay     = "relay"
	PathOVS       = "ovs"
)

// Tests, in the order each path runs them; also the keys of CPU figures.
const (
	TestTCP1  = "tcp1"
	TestTCP4  = "tcp4"
	TestUDP64 = "udp64"
	TestPing  = "ping"
)

// DataplaneConfig is one run of RunDataplane. Zero fields take the
// defaults of DefaultDataplaneConfig.
type DataplaneConfig struct {
	// Binary is the vxnet binary the vxnet hosts run. Default: this
	// process's own executable.
	Binary string
	// Time is the length of each iperf3 test and of each ping run.
	// Default 10 s; at least 1 s.
	Time time.Duration
	// Reps is how many times each path is measured. Default 3.
	Reps int
	// PingInterval is the gap between echo requests (ping -i). Default
	// 10 ms; the ping run lasts Time.
	PingInterval time.Duration
	// Prefix starts the name of every namespace the testbed creates.
	// Default "vxb<pid>-", so that two runs never share a name.
	Prefix string
	// NoRelay leaves the socat relay path out (it is also left out when
	// socat is not installed).
	NoRelay bool
	// NoOVS leaves the Open vSwitch path out (it is also left out when
	// openvswitch-switch is not installed).
	NoOVS bool
	// NoEncrypted leaves the vxnet-encrypted path out.
	NoEncrypted bool
	// NoWireGuard leaves the wireguard-go path out (it is also left out
	// when wg or wireguard-go is not installed).
	NoWireGuard bool
	// WireGuard is the wireguard-go binary. Default: wireguard-go or
	// wireguard in PATH, or ~/go/bin/wireguard (where make deps builds
	// it).
	WireGuard string
	// HostCPUs is the most cores each vxnet host's process runs at once
	// (its GOMAXPROCS): the two simulated hosts share this machine, so
	// each gets its half, as each of two real hosts of that size would
	// have its own. Default (0): half this machine's CPUs, at least 1;
	// negative: no limit (every CPU for each host).
	HostCPUs int
}

// hostCPUs is the GOMAXPROCS each vxnet host runs with; 0: unset.
func (c DataplaneConfig) hostCPUs() int {
	switch {
	case c.HostCPUs < 0:
		return 0
	case c.HostCPUs > 0:
		return c.HostCPUs
	}
	return max(1, runtime.NumCPU()/2)
}

// DefaultDataplaneConfig is the run the README's table comes from.
func DefaultDataplaneConfig() DataplaneConfig {
	return DataplaneConfig{Time: 10 * time.Second, Reps: 3, PingInterval: 10 * time.Millisecond}
}

func (c *DataplaneConfig) defaults() error {
	d := DefaultDataplaneConfig()
	if c.Time == 0 {
		c.Time = d.Time
	}
	if c.Reps == 0 {
		c.Reps = d.Reps
	}
	if c.PingInterval == 0 {
		c.PingInterval = d.PingInterval
	}
	if c.Prefix == "" {
		c.Prefix = fmt.Sprintf("vxb%d-", os.Getpid())
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: the vxnet binary: %w", err)
		}
		c.Binary = exe
	}
	switch {
	case c.Time < time.Second:
		return fmt.Errorf("bench: time %v: want at least 1s (iperf3 counts whole seconds)", c.Time)
	case c.Reps < 1:
		return fmt.Errorf("bench: reps %d: want at least 1", c.Reps)
	case c.PingInterval < time.Millisecond:
		return fmt.Errorf("bench: ping interval %v: want at least 1ms", c.PingInterval)
	}
	return nil
}

// DataplaneSample is what one repetition measured on one path.
type DataplaneSample struct {
	Rep  int    `json:"rep"` // from 1
	Path string `json:"path"`
	// TCP1Gbps and TCP4Gbps are iperf3's receiver-side throughput with
	// one and four streams, Gbit/s.
	TCP1Gbps float64 `json:"tcp1Gbps"`
	TCP4Gbps float64 `json:"tcp4Gbps"`
	// UDP64PPS is 64-byte UDP datagrams received per second; UDP64SentPPS
	// what the sender managed: when the two are close, the sender, not
	// the path, was the limit.
	UDP64PPS     float64 `json:"udp64Pps"`
	UDP64SentPPS float64 `json:"udp64SentPps"`
	// UDP64DeliveredPPS is what the path put into the receiving socket
	// per second, read or dropped there: the server's namespace's UDP
	// InDatagrams and RcvbufErrors over the test. Far above UDP64PPS, the path kept up
	// and the receiver (short of CPU) dropped the rest; 0 where the
	// server's namespace also carries the path's own UDP (wireguard-go).
	UDP64DeliveredPPS float64 `json:"udp64DeliveredPps,omitempty"`
	// RTTP50us and RTTP99us are percentiles of the ping round trips, µs;
	// PingLost how many echo requests got no reply.
	RTTP50us float64 `json:"rttP50us"`
	RTTP99us float64 `json:"rttP99us"`
	PingLost int     `json:"pingLost"`
	// CPUSeconds is, per test (TestTCP1...), the CPU time both vxnet
	// processes used during it, user + system (vxnet path only).
	CPUSeconds map[string]float64 `json:"cpuSeconds,omitempty"`
	// MachineCPUSeconds is, per test, the CPU time the whole machine was
	// busy during it (every core, from /proc/stat: all but idle and
	// iowait), whatever path: the kernel's own work shows here.
	MachineCPUSeconds map[string]float64 `json:"machineCpuSeconds,omitempty"`
}

// RunDataplane builds the testbed, measures every path Reps times, and
// takes everything down again, also when it fails or is interrupted
// (SIGINT, SIGTERM). Progress goes to progress, a line per test. It needs
// Linux, root, ip, iperf3 and ping; socat for the relay path.
func RunDataplane(cfg DataplaneConfig, progress io.Writer) (DataplaneReport, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunDataplaneContext(ctx, cfg, progress)
}

// RunDataplaneContext is RunDataplane stopped by ctx instead of signals.
func RunDataplaneContext(ctx context.Context, cfg DataplaneConfig, progress io.Writer) (DataplaneReport, error) {
	if progress == nil {
		progress = io.Discard
	}
	if err := cfg.defaults(); err != nil {
		return DataplaneReport{}, err
	}
	r := DataplaneReport{Started: time.Now().UTC(), TestSeconds: cfg.Time.Seconds(), Reps: cfg.Reps, Machine: machine(), HostCPUs: cfg.hostCPUs()}
	samples, err := runDataplane(ctx, cfg, progress)
	r.Samples = samples
	r.summarize()
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		err = fmt.Errorf("bench: interrupted: %w", err)
	}
	return r, err
}
