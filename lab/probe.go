package lab

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/dns"
)

// retryPause spaces the tries of a failed check.
const retryPause = 300 * time.Millisecond

// digAtAgent is dig's argument that asks the agent's DNS server, where a
// container's resolver finds it.
var digAtAgent = "@" + dns.ContainerAddr.Addr().String()

// probeArgvs returns the commands of check c from src to dst: each must
// succeed, and dig must print dst's address once for each name it asks.
func probeArgvs(bin string, c Check, src, dst ContainerState, network string, port int) [][]string {
	addr, fqdn := dst.Addr.String(), dst.Name+"."+network
	switch c {
	case PingAddr:
		return [][]string{inNetns(src.Netns, "ping", "-c1", "-W2", "-n", addr)}
	case PingName:
		return [][]string{inNetns(src.Netns, "ping", "-c1", "-W2", "-n", dst.Name)}
	case TCPAddr, TCPName:
		host := addr
		if c == TCPName {
			host = fqdn
		}
		return [][]string{inNetns(src.Netns, bin, "lab", "tcp-echo",
			"--connect", net.JoinHostPort(host, strconv.Itoa(port)), "--timeout", "3s")}
	case DNSName: // one dig, two queries: one answer line each
		return [][]string{inNetns(src.Netns, "dig", "+short", "+time=2", "+tries=1", digAtAgent, dst.Name, fqdn)}
	}
	panic("lab: unknown check " + c.String())
}

// probe runs check c once.
func (l *Lab) probe(ctx context.Context, c Check, src, dst ContainerState, network string, port int) error {
	for _, argv := range probeArgvs(l.State().Binary, c, src, dst, network, port) {
		out, err := l.run.run(ctx, argv...)
		if err != nil {
			return err
		}
		if c == DNSName {
			want := dst.Addr.String()
			if got := strings.Fields(out); len(got) != 2 || got[0] != want || got[1] != want {
				return fmt.Errorf("dig %s %s: answers %q, want %s for each", argv[len(argv)-2], argv[len(argv)-1],
					strings.Join(got, " "), want)
			}
		}
	}
	return nil
}

// check runs c up to attempts times, until it passes.
func (l *Lab) check(ctx context.Context, c Check, src, dst ContainerState, dc DemoConfig) Result {
	var r Result
	for r.Attempts < dc.Attempts && ctx.Err() == nil {
		if r.Attempts > 0 {
			pause(ctx, retryPause)
		}
		r.Attempts++
		err := l.probe(ctx, c, src, dst, dc.Network, dc.EchoPort)
		if err == nil {
			return Result{OK: true, Attempts: r.Attempts}
		}
		r.Err = err.Error()
	}
	return r
}

// checkAll runs every check between every ordered pair of containers, dc.
// Parallel pairs at a time, and prints one line per source container, in
// order, as its row completes.
func (l *Lab) checkAll(ctx context.Context, cs []ContainerState, dc DemoConfig) *Matrix {
	nodes := make([]Node, len(cs))
	for i, c := range cs {
		nodes[i] = Node{Name: c.Name, Host: c.Host, Addr: c.Addr.String()}
	}
	m := NewMatrix(nodes)
	left := make([]atomic.Int32, len(cs))
	done := make([]chan struct{}, len(cs))
	for i := range cs {
		done[i] = make(chan struct{})
		if left[i].Store(int32(len(cs) - 1)); len(cs) == 1 {
			close(done[i])
		}
	}
	type pair struct{ i, j int }
	jobs := make(chan pair)
	var wg sync.WaitGroup
	for range dc.Parallel {
		wg.Go(func() {
			for p := range jobs {
				for _, c := range dc.Checks {
					m.Results[p.i][p.j][c] = l.check(ctx, c, cs[p.i], cs[p.j], dc)
				}
				if left[p.i].Add(-1) == 0 {
					close(done[p.i])
				}
			}
		})
	}
	go func() {
		for i := range cs {
			for j := range cs {
				if i != j {
					jobs <- pair{i, j}
				}
			}
		}
		close(jobs)
	}()
	start := time.Now()
	defer func() { l.say("checks took %.1fs", time.Since(start).Seconds()) }()
	for i, c := range cs {
		<-done[i]
		l.say("  from %-6s %-4s %-15s %s", c.Name, c.Host, c.Addr, tally(m.Row(i)))
	}
	wg.Wait()
	return m
}
