package dataplane

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"

	"github.com/vxnet/vxnet/dataplane/udp"
)

// DefaultRxQueues is one receive queue per four cores, up to 4. More
// queues pay only where cores sit idle: on two vCPUs shared with the
// containers, two queues cost 10 % with four TCP streams (iperf3 -P 4:
// 3.4-3.9 against 4.1-4.2 Gbit/s) and changed nothing with one.
func DefaultRxQueues() int { return max(1, min(runtime.NumCPU()/4, 4)) }

// ListenConfig says where Listen opens the underlay and how the switch on
// it runs.
type ListenConfig struct {
	// Addr is this host's underlay address (its VTEP); the VXLAN sockets
	// bind to it.
	Addr netip.Addr
	// Port is the VXLAN UDP port, this host's and every other VTEP's.
	// Default 4789.
	Port uint16
	// MTU is the switch's Config.MTU. Default 1450.
	MTU int
	// RxQueues is the number of receive sockets sharing Port, each with
	// a loop of its own. 0 or less: DefaultRxQueues.
	RxQueues int
	// Logger receives lifecycle messages. Nil discards.
	Logger *slog.Logger
}

// Listen opens the VXLAN socket on cfg.Addr and cfg.Port and returns a
// switch on it, with an empty table. With RxQueues > 1, that many sockets
// share the port (SO_REUSEPORT): the kernel spreads flows over them and
// each gets a receive loop of its own. The agent and static mode both
// build their switch here, so they open the underlay the same way.
func Listen(cfg ListenConfig) (*Switch, error) {
	queues := cfg.RxQueues
	if queues <= 0 {
		queues = DefaultRxQueues()
	}
	uc := udp.DefaultConfig()
	uc.Addr, uc.Port = cfg.Addr, cfg.Port
	uc.ReusePort = queues > 1
	under, err := udp.Listen(uc)
	if err != nil {
		return nil, fmt.Errorf("vxlan %v port %d: %w", cfg.Addr, cfg.Port, err)
	}
	sw, err := New(Config{VXLANPort: cfg.Port, MTU: cfg.MTU, Logger: cfg.Logger}, under)
	if err != nil {
		under.Close()
		return nil, err
	}
	if err := sw.addReceiveQueues(uc, queues-1); err != nil {
		sw.Close()
		return nil, err
	}
	return sw, nil
}

// addReceiveQueues opens n more sockets like uc on its port. They only
// receive, with no send sockets of their own: every loop sends through
// the first socket's.
func (sw *Switch) addReceiveQueues(uc udp.Config, n int) error {
	uc.SourcePorts = -1
	for i := 1; i <= n; i++ {
		q, err := udp.Listen(uc)
		if err == nil {
			err = sw.AddReceiveQueue(q)
		}
		if err != nil {
			return fmt.Errorf("vxlan receive queue %d: %w", i, err)
		}
	}
	return nil
}
