package e2e

import (
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// snmpIP reads one counter of the Ip line of /proc/net/snmp in ns.
func (l *lab) snmpIP(ns, name string) int64 {
	l.t.Helper()
	lines := strings.Split(l.in(ns, "cat", "/proc/net/snmp"), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "Ip: ") || !strings.HasPrefix(lines[i+1], "Ip: ") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == name && j < len(values) {
				v, err := strconv.ParseInt(values[j], 10, 64)
				if err != nil {
					l.t.Fatalf("/proc/net/snmp in %s: Ip %s = %q", ns, name, values[j])
				}
				return v
			}
		}
	}
	l.t.Fatalf("/proc/net/snmp in %s has no Ip %s", ns, name)
	return 0
}

// TestMTU_containerAbove_getsICMPAndTransfers: containers whose MTU is
// above what the underlay carries (1500, the usual default, and 9000 with
// TSO super-packets) get ICMP "fragmentation needed" / "packet too big"
// with the switch's MTU from vxnet, so their kernels lower the path MTU:
// DF pings above it are refused with that MTU, and TCP transfers complete,
// checksummed, both ways and over both families.
func TestMTU_containerAbove_getsICMPAndTransfers(t *testing.T) {
	l := newLab(t)
	c1, c2, a1, a2 := l.twoHosts("198.18.4")
	for _, mtu := range []string{"1500", "9000"} {
		for _, c := range []string{c1, c2} {
			l.run("ip", "-n", c, "link", "set", "eth0", "mtu", mtu)
			l.run("ip", "-n", c, "route", "flush", "cache")
			l.run("ip", "-n", c, "-6", "route", "flush", "cache")
		}
		// A DF ping of 1451 bytes, each way: refused with the MTU the
		// switch gave. 1450 bytes fit.
		for _, p := range [][2]string{{c1, "10.0.9.3"}, {c2, "10.0.9.2"}} {
			out, err := l.tryIn(p[0], "ping", "-M", "do", "-c", "2", "-i", "0.3", "-W", "2", "-s", "1423", p[1])
			if err == nil || !strings.Contains(out, "mtu = 1450") && !strings.Contains(out, "mtu=1450") {
				t.Errorf("MTU %s: a DF ping above 1450 bytes to %s: err %v, want an ICMP answer naming mtu 1450:\n%s", mtu, p[1], err, out)
			}
			l.in(p[0], "ping", "-M", "do", "-c", "1", "-W", "5", "-s", "1422", p[1])
		}
		for _, tc := range []struct {
			client, server, addr string
		}{
			{c1, c2, "10.0.9.3"}, {c2, c1, "10.0.9.2"}, {c1, c2, "fd00:9::3"}, {c2, c1, "fd00:9::2"},
		} {
			transfer(t, tc.client, tc.server, netip.MustParseAddr(tc.addr), 20<<20)
		}
	}
	for _, a := range []*agent{a1, a2} {
		s := a.stats(t)
		if s.ICMPTooBig == 0 || s.Drops["too_big"] == 0 {
			t.Errorf("no ICMP too big counted: %d answers, %d too_big drops", s.ICMPTooBig, s.Drops["too_big"])
		}
	}
}

// TestMTU_narrowUnderlay_neverFragments: an underlay of MTU 1400 under
// containers of MTU 1450 (the static mode's default): the kernel never
// fragments a VXLAN datagram (no fragment made on one host, none
// reassembled on the other), the switch learns the path's MTU from the
// kernel and answers larger packets with ICMP carrying 1350, so a DF ping
// of 1450 bytes is refused (it used to cross in fragments), one without
// DF crosses in fragments the switch makes, and TCP transfers complete.
func TestMTU_narrowUnderlay_neverFragments(t *testing.T) {
	l := newLab(t)
	c1, c2, a1, a2 := l.twoHosts("198.18.5")
	h1, h2 := l.prefix+"-h1", l.prefix+"-h2" // twoHosts' hosts
	for _, h := range []string{h1, h2} {
		l.run("ip", "-n", h, "link", "set", "u0", "mtu", "1400")
	}
	l.in(c1, "ping", "-c", "1", "-W", "5", "10.0.9.3")
	// Without DF a 1450-byte packet (and its echo) may be fragmented: the
	// switch does it (the underlay never does), and the other container
	// reassembles it. First, before any ICMP taught the containers the
	// path (then their kernels would fragment): the first datagram each
	// way over the narrow path is refused by the kernel, and the switch
	// learns the path from it.
	for _, p := range [][2]string{{c1, "10.0.9.3"}, {c2, "10.0.9.2"}} {
		waitFor(t, "a ping without DF of 1450 bytes to "+p[1], 10*time.Second, func() bool {
			_, err := l.tryIn(p[0], "ping", "-M", "dont", "-c", "1", "-W", "1", "-s", "1422", p[1])
			return err == nil
		})
	}
	// A DF ping over 1350 bytes is answered with ICMP carrying the path's
	// MTU (were the path not known yet, the first would be lost: the
	// kernel refuses its datagram and the switch learns the path).
	for _, p := range [][2]string{{c1, "10.0.9.3"}, {c2, "10.0.9.2"}} {
		waitFor(t, "the switch to learn the 1400-byte path to "+p[1]+"'s host", 10*time.Second, func() bool {
			out, err := l.tryIn(p[0], "ping", "-M", "do", "-c", "1", "-W", "1", "-s", "1422", p[1])
			return err != nil && (strings.Contains(out, "mtu = 1350") || strings.Contains(out, "mtu=1350"))
		})
		l.in(p[0], "ping", "-M", "do", "-c", "1", "-W", "5", "-s", "1322", p[1]) // 1350 bytes: fits
	}
	for _, c := range []string{c1, c2} {
		if n := l.snmpIP(c, "ReasmOKs"); n == 0 {
			t.Errorf("container %s reassembled no packet: the ping without DF did not come in fragments", c)
		}
	}
	for _, tc := range []struct {
		client, server, addr string
	}{
		{c1, c2, "10.0.9.3"}, {c2, c1, "10.0.9.2"}, {c1, c2, "fd00:9::3"}, {c2, c1, "fd00:9::2"},
	} {
		transfer(t, tc.client, tc.server, netip.MustParseAddr(tc.addr), 20<<20)
	}
	for _, h := range []string{h1, h2} {
		if n := l.snmpIP(h, "FragCreates"); n != 0 {
			t.Errorf("%s made %d fragments", h, n)
		}
		if n := l.snmpIP(h, "ReasmReqds"); n != 0 {
			t.Errorf("%s received %d fragments", h, n)
		}
	}
	for _, a := range []*agent{a1, a2} {
		if s := a.stats(t); s.Drops["underlay_too_big"] == 0 || s.ICMPTooBig == 0 {
			t.Errorf("drops %v, %d ICMP answers: want datagrams refused as too big and answers", s.Drops, s.ICMPTooBig)
		}
	}
}

// dropTooBigICMP makes ns drop every ICMP "fragmentation needed" and
// ICMPv6 "packet too big" it receives, as a badly configured firewall
// does: path MTU discovery is then blind.
func (l *lab) dropTooBigICMP(ns string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(`table inet blind {
	chain in {
		type filter hook input priority 0; policy accept;
		icmp type destination-unreachable icmp code frag-needed drop
		icmpv6 type packet-too-big drop
	}
}
`)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft in %s: %v\n%s", ns, err, out)
	}
}

// TestMTU_agent_underlayMTUAndClamp: agents on an underlay of MTU 1400
// give containers MTU 1350 by themselves; containers that raise theirs to
// 1500 and drop ICMP "too big" (path MTU discovery blind) cannot move
// data on a plain network, and move it on one with -o mss-clamp=true,
// whose SYNs the switches clamp both ways.
func TestMTU_agent_underlayMTUAndClamp(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.61", "h1", "h2")
	for _, h := range []string{"h1", "h2"} {
		c.stop(h)
		l.run("ip", "-n", c.hosts[h].ns, "link", "set", "ul0", "mtu", "1400")
		l.run("ip", "-n", l.prefix+"-br", "link", "set", "p-"+h, "mtu", "1400")
	}
	c.start("h1", "")
	c.start("h2", c.hosts["h1"].addr+":7946")
	c.waitMembers([]string{"h1", "h2"}, 2)
	c.cli("h1", "network", "create", "--subnet", "10.61.0.0/24", "plain")
	c.cli("h1", "network", "create", "--subnet", "10.61.1.0/24", "-o", "mss-clamp=true", "clamped")
	ns := map[string]string{}
	for _, n := range []string{"p1", "p2", "k1", "k2"} {
		ns[n] = l.netns(n)
	}
	c.waitNetwork("h2", "plain")
	c.waitNetwork("h2", "clamped")
	if opts := c.networks("h2")["clamped"].Options; opts["mss-clamp"] != "true" {
		t.Errorf("clamped's options on h2: %v", opts)
	}
	addr := map[string]string{}
	for _, e := range []struct{ host, network, name string }{{"h1", "plain", "p1"}, {"h2", "plain", "p2"}, {"h1", "clamped", "k1"}, {"h2", "clamped", "k2"}} {
		c.cli(e.host, "endpoint", "create", "--network", e.network, "--name", e.name, "--netns", ns[e.name])
		addr[e.name] = addrOf(t, c.endpoints(e.host)[e.name]).String()
	}
	if out := l.in(ns["p1"], "ip", "link", "show", "eth0"); !strings.Contains(out, "mtu 1350 ") {
		t.Errorf("a container's device on an underlay of MTU 1400, want mtu 1350:\n%s", out)
	}
	for _, n := range ns {
		l.run("ip", "-n", n, "link", "set", "eth0", "mtu", "1500")
		l.dropTooBigICMP(n)
	}
	l.waitPing("p1 to p2", ns["p1"], addr["p2"])
	l.waitPing("k1 to k2", ns["k1"], addr["k2"])
	// Plain: the big segments are dropped, their ICMP too; nothing moves.
	var ln net.Listener
	inNetns(t, ns["p2"], func() {
		var err error
		if ln, err = net.Listen("tcp", addr["p2"]+":0"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, conn)
			conn.Close()
			got <- n
		}
	}()
	inNetns(t, ns["p1"], func() {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write(make([]byte, 1<<20))
		conn.Close()
	})
	if n := <-got; n >= 1<<20 {
		t.Errorf("%d bytes crossed the plain network with path MTU discovery blind: the test proves nothing", n)
	}
	// Clamped: both ways, checksummed.
	transfer(t, ns["k1"], ns["k2"], netip.MustParseAddr(addr["k2"]), 20<<20)
	transfer(t, ns["k2"], ns["k1"], netip.MustParseAddr(addr["k1"]), 20<<20)
}
