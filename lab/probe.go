package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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

// target is where a check goes: an address, and the names the checks by
// name use. A container is found by its name and NAME.NETWORK, names its
// agent owns; the outside by OutsideName, which the agent forwards to the
// outside's DNS server.
type target struct {
	addr     netip.Addr
	pingName string   // what ping by name resolves
	tcpName  string   // what the TCP echo by name dials
	digNames []string // what dig asks: each must answer addr alone
}

// containerTarget is container c of network as a destination.
func containerTarget(c ContainerState, network string) target {
	fqdn := c.Name + "." + network
	return target{addr: c.Addr, pingName: c.Name, tcpName: fqdn, digNames: []string{c.Name, fqdn}}
}

// outsideTarget is the outside as a destination.
func outsideTarget(o OutsideState) target {
	return target{addr: o.Addr, pingName: OutsideName, tcpName: OutsideName, digNames: []string{OutsideName}}
}

// probeArgvs returns the commands of check c from src to dst: each must
// succeed, and dig must print dst's address once for each name it asks.
func probeArgvs(bin string, c Check, src ContainerState, dst target, port int) [][]string {
	addr := dst.addr.String()
	switch c {
	case PingAddr:
		return [][]string{inNetns(src.Netns, "ping", "-c1", "-W2", "-n", addr)}
	case PingName:
		return [][]string{inNetns(src.Netns, "ping", "-c1", "-W2", "-n", dst.pingName)}
	case TCPAddr, TCPName:
		host := addr
		if c == TCPName {
			host = dst.tcpName
		}
		return [][]string{inNetns(src.Netns, bin, "lab", "tcp-echo",
			"--connect", net.JoinHostPort(host, strconv.Itoa(port)), "--timeout", "3s")}
	case DNSName: // one dig, a query per name: one answer line each
		argv := inNetns(src.Netns, "dig", "+short", "+time=2", "+tries=1", digAtAgent)
		return [][]string{append(argv, dst.digNames...)}
	}
	panic("lab: unknown check " + c.String())
}

// probe runs check c once.
func (l *Lab) probe(ctx context.Context, c Check, src ContainerState, dst target, port int) error {
	for _, argv := range probeArgvs(l.State().Binary, c, src, dst, port) {
		out, err := l.run.run(ctx, argv...)
		if err != nil {
			return err
		}
		if c == DNSName {
			if err := checkDig(out, dst); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDig checks dig +short's output: dst's address once for each name
// asked, and nothing else.
func checkDig(out string, dst target) error {
	want := dst.addr.String()
	got := strings.Fields(out)
	ok := len(got) == len(dst.digNames)
	for _, a := range got {
		ok = ok && a == want
	}
	if !ok {
		return fmt.Errorf("dig %s: answers %q, want %s for each", strings.Join(dst.digNames, " "), strings.Join(got, " "), want)
	}
	return nil
}

// check runs c up to attempts times, until it passes.
func (l *Lab) check(ctx context.Context, c Check, src ContainerState, dst target, dc DemoConfig) Result {
	var r Result
	for r.Attempts < dc.Attempts && ctx.Err() == nil {
		if r.Attempts > 0 {
			pause(ctx, retryPause)
		}
		r.Attempts++
		err := l.probe(ctx, c, src, dst, dc.EchoPort)
		if err == nil {
			return Result{OK: true, Attempts: r.Attempts}
		}
		r.Err = err.Error()
	}
	return r
}

// pair is one cell of the matrix: from container i to container j, or to
// the outside when j is outsideCol.
type pair struct{ i, j int }

const outsideCol = -1 // pair.j of the outside column

// checkAll runs every check between every ordered pair of containers and,
// if out is not nil, from every container to out (the outside column), dc.
// Parallel cells at a time, and prints one line per source container, in
// order, as its row completes.
func (l *Lab) checkAll(ctx context.Context, cs []ContainerState, out *target, dc DemoConfig) *Matrix {
	nodes := make([]Node, len(cs))
	for i, c := range cs {
		nodes[i] = Node{Name: c.Name, Host: c.Host, Addr: c.Addr.String()}
	}
	m := NewMatrix(nodes)
	cells := pairs(len(cs), out != nil)
	if out != nil {
		m.AddOutside()
	}
	left := make([]atomic.Int32, len(cs))
	done := make([]chan struct{}, len(cs))
	for i := range cs {
		done[i] = make(chan struct{})
	}
	for _, p := range cells {
		left[p.i].Add(1)
	}
	for i := range cs {
		if left[i].Load() == 0 {
			close(done[i])
		}
	}
	jobs := make(chan pair)
	var wg sync.WaitGroup
	for range dc.Parallel {
		wg.Go(func() {
			for p := range jobs {
				dst, rs := cellOf(m, cs, out, p, dc.Network)
				for _, c := range dc.Checks {
					rs[c] = l.check(ctx, c, cs[p.i], dst, dc)
				}
				if left[p.i].Add(-1) == 0 {
					close(done[p.i])
				}
			}
		})
	}
	go func() {
		for _, p := range cells {
			jobs <- p
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

// pairs lists the cells to check, source by source: every other container,
// then the outside if withOutside.
func pairs(n int, withOutside bool) []pair {
	var ps []pair
	for i := range n {
		for j := range n {
			if i != j {
				ps = append(ps, pair{i, j})
			}
		}
		if withOutside {
			ps = append(ps, pair{i, outsideCol})
		}
	}
	return ps
}

// cellOf returns the destination of p and the results it fills in m.
func cellOf(m *Matrix, cs []ContainerState, out *target, p pair, network string) (target, []Result) {
	if p.j == outsideCol {
		return *out, m.Outside[p.i]
	}
	return containerTarget(cs[p.j], network), m.Results[p.i][p.j]
}
