package agent

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/udp"
)

// defaultRxQueues is one receive queue per four cores, up to 4. More
// queues pay only where cores sit idle: on two vCPUs shared with the
// containers, two queues cost 10 % with four TCP streams (iperf3 -P 4:
// 3.4-3.9 against 4.1-4.2 Gbit/s) and changed nothing with one.
func defaultRxQueues() int { return max(1, min(runtime.NumCPU()/4, 4)) }

// newSwitch opens the VXLAN socket on addr:port and the switch on it.
// With queues > 1, that many sockets share the port (SO_REUSEPORT): the
// kernel spreads flows over them and each gets a receive loop of its own.
func newSwitch(addr netip.Addr, port uint16, mtu, queues int, log *slog.Logger) (*dataplane.Switch, error) {
	uc := udp.DefaultConfig()
	uc.Addr, uc.Port = addr, port
	uc.ReusePort = queues > 1
	under, err := udp.Listen(uc)
	if err != nil {
		return nil, fmt.Errorf("vxlan %v port %d: %w", addr, port, err)
	}
	sw, err := dataplane.New(dataplane.Config{VXLANPort: port, MTU: mtu, Logger: log}, under)
	if err != nil {
		under.Close()
		return nil, err
	}
	for i := 1; i < queues; i++ {
		qc := uc
		qc.SourcePorts = -1 // receives only
		q, err := udp.Listen(qc)
		if err == nil {
			err = sw.AddReceiveQueue(q)
		}
		if err != nil {
			sw.Close()
			return nil, fmt.Errorf("vxlan receive queue %d: %w", i, err)
		}
	}
	return sw, nil
}
