package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// serviceJSON is what `vxnet service inspect` prints.
type serviceJSON struct {
	Name, Network, EndpointMode string
	VIPs, Endpoints, Publish    []string
	Flows, Moved                uint64
	TaskFlows                   map[string]uint64
}

func (c *cluster) service(host, name string) serviceJSON {
	c.l.t.Helper()
	var s serviceJSON
	if err := json.Unmarshal([]byte(c.cli(host, "service", "inspect", name)), &s); err != nil {
		c.l.t.Fatalf("service inspect %s on %s: %v", name, host, err)
	}
	return s
}

// taskServer serves TCP port 80 in ns: each connection first gets the
// task's name and a newline, then its lines echoed. It stops with the
// test.
func taskServer(t *testing.T, ns, name string) {
	t.Helper()
	var ln net.Listener
	inNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", ":80"); err != nil {
			t.Fatal(err)
		}
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	closed := false
	t.Cleanup(func() {
		// Connections whose client can no longer reach this task (its host's
		// agent killed) never see an end: closed here.
		ln.Close()
		mu.Lock()
		closed = true
		for conn := range open {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[conn] = true
			if closed {
				conn.Close()
			}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { mu.Lock(); delete(open, conn); mu.Unlock(); conn.Close() }()
				fmt.Fprintf(conn, "%s\n", name)
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					fmt.Fprintf(conn, "%s\n", sc.Text())
				}
			}()
		}
	}()
}

// vipConn is a connection to a task server and the task that answered;
// dialTask connects to addr:80.
type vipConn struct {
	net.Conn
	task string
	r    *bufio.Reader
}

func dialTask(t *testing.T, ns string, addr netip.Addr) (*vipConn, error) {
	t.Helper()
	return dialAddr(t, ns, netip.AddrPortFrom(addr, 80))
}

// echo sends a line on c and wants it back.
func (c *vipConn) echo(line string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return fmt.Errorf("echoed %q, want %q", got, line)
	}
	return nil
}

// TestService_vip: a vip-mode service over three tasks on three hosts.
// Its name resolves to its VIP (tasks.NAME to the tasks); 300
// connections from a client to the VIP reach every task; a long-lived
// connection survives another task leaving; with a task"s host killed,
// new connections reach only live tasks once the cluster has seen it
// die; a dnsrr service answers with its tasks; removing the service
// gives its VIP back.
func TestService_vip(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.81", "h1", "h2", "h3")
	c.cli("h1", "network", "create", "-d", "overlay", "--subnet", "10.81.0.0/24", "web")
	for _, h := range []string{"h2", "h3"} {
		c.waitNetwork(h, "web")
	}
	out := c.cli("h1", "service", "create", "api", "--network", "web")
	svc := c.service("h1", "api")
	if svc.EndpointMode != "vip" || len(svc.VIPs) != 1 || !strings.Contains(out, svc.VIPs[0]) {
		t.Fatalf("service create: %q; inspect: %+v", out, svc)
	}
	vip := netip.MustParseAddr(svc.VIPs[0])
	if !netip.MustParsePrefix("10.81.0.0/24").Contains(vip) {
		t.Fatalf("VIP %v outside the network", vip)
	}
	ns := map[string]string{}
	hostOf := map[string]string{"t1": "h1", "t2": "h2", "t3": "h3", "cl": "h1"}
	for _, name := range []string{"t1", "t2", "t3", "cl"} {
		ns[name] = l.netns(name)
		args := []string{"endpoint", "create", "--network", "web", "--name", name, "--netns", ns[name]}
		if name != "cl" {
			args = append(args, "--service", "api")
		}
		c.cli(hostOf[name], args...)
		if name != "cl" {
			taskServer(t, ns[name], name)
		}
	}
	testutil.WaitFor(t, "h1 to see the three tasks of api", 15*time.Second, func() bool {
		return len(c.service("h1", "api").Endpoints) == 3
	})
	eps := c.endpoints("h1")
	if a := addrOf(t, eps["t1"]); a == vip {
		t.Fatalf("a task got the VIP %v", vip)
	}

	// DNS: the name is the VIP, tasks.api the three tasks.
	if got := c.dig(ns["cl"], "api", false); got != vip.String() {
		t.Errorf("dig api: %q, want the VIP %v", got, vip)
	}
	if got := strings.Fields(c.dig(ns["cl"], "tasks.api", false)); len(got) != 3 || slices.Contains(got, vip.String()) {
		t.Errorf("dig tasks.api: %v, want the three tasks", got)
	}

	// 300 connections, spread.
	split := map[string]int{}
	for i := range 300 {
		vc, err := dialTask(t, ns["cl"], vip)
		if err != nil {
			t.Fatalf("connection %d to the VIP: %v", i, err)
		}
		split[vc.task]++
		vc.Close()
	}
	t.Logf("300 connections to the VIP: %v", split)
	for _, task := range []string{"t1", "t2", "t3"} {
		if split[task] < 30 {
			t.Errorf("task %s got %d of 300 connections: %v", task, split[task], split)
		}
	}
	if s := c.service("h1", "api"); s.Flows < 300 || len(s.TaskFlows) != 3 {
		t.Errorf("service inspect on h1: flows %d, by task %v", s.Flows, s.TaskFlows)
	}
	metrics := l.in(c.hosts["h1"].ns, "curl", "-sf", "http://"+c.hosts["h1"].addr+":9464/metrics")
	for _, task := range []string{"t1@h1", "t2@h2", "t3@h3"} {
		want := fmt.Sprintf(`vxnet_service_flows_total{service="web/api",task="%s"} %d`, task, split[strings.Split(task, "@")[0]])
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A long-lived connection survives another task leaving.
	var long *vipConn
	for long == nil || long.task == "t2" {
		vc, err := dialTask(t, ns["cl"], vip)
		if err != nil {
			t.Fatal(err)
		}
		long = vc
	}
	defer long.Close()
	c.cli("h2", "endpoint", "rm", "--network", "web", "t2")
	testutil.WaitFor(t, "h1 to drop t2 from api", 15*time.Second, func() bool {
		return len(c.service("h1", "api").Endpoints) == 2
	})
	if err := long.echo("still here"); err != nil {
		t.Errorf("the long-lived connection to %s after t2 left: %v", long.task, err)
	}
	for i := range 30 {
		vc, err := dialTask(t, ns["cl"], vip)
		if err != nil {
			t.Fatalf("connection %d after t2 left: %v", i, err)
		}
		if vc.task == "t2" {
			t.Fatal("a new connection reached t2, which left")
		}
		vc.Close()
	}

	// A task"s host killed (h3; the client is on h1): once the cluster
	// sees it dead, new connections reach only t1.
	c.kill9("h3")
	killed := time.Now()
	testutil.WaitFor(t, "h1 to see t3's host dead (t3 leaves api)", 60*time.Second, func() bool {
		return len(c.service("h1", "api").Endpoints) == 1
	})
	t.Logf("h1 dropped t3 from api %v after its host was killed", time.Since(killed).Round(100*time.Millisecond))
	for i := range 30 {
		vc, err := dialTask(t, ns["cl"], vip)
		if err != nil {
			t.Fatalf("connection %d after h3 died: %v", i, err)
		}
		vc.Close()
		if vc.task != "t1" {
			t.Fatalf("a new connection reached %s after h3 died", vc.task)
		}
	}
	if long.task == "t1" {
		if err := long.echo("and still"); err != nil {
			t.Errorf("the long-lived connection to t1 after h3 died: %v", err)
		}
	}

	// dnsrr: the name answers with its tasks.
	c.cli("h1", "service", "create", "db", "--network", "web", "--endpoint-mode", "dnsrr")
	for _, name := range []string{"d1", "d2"} {
		ns[name] = l.netns(name)
		c.cli("h1", "endpoint", "create", "--network", "web", "--name", name, "--netns", ns[name], "--service", "db")
	}
	if got := strings.Fields(c.dig(ns["cl"], "db", false)); len(got) != 2 {
		t.Errorf("dig db (dnsrr): %v, want its two tasks", got)
	}

	// Removed: the VIP goes back to the network"s addresses, and the name
	// answers with the tasks that remain.
	c.cli("h1", "service", "rm", "api")
	leases, _ := c.hostLeases("h1")
	if slices.Contains(leases["web"], vip.String()) {
		t.Errorf("h1 still leases the VIP %v of a removed service: %v", vip, leases["web"])
	}
	if out, err := c.tryCLI("h1", "network", "rm", "web"); err == nil || !strings.Contains(out, "service") {
		t.Errorf("network rm with a service left: %v %s", err, out)
	}
}

// dialAddr connects from ns to a task server (taskServer) at to and reads
// the name of the task that answered.
func dialAddr(t *testing.T, ns string, to netip.AddrPort) (*vipConn, error) {
	t.Helper()
	var conn net.Conn
	var err error
	inNetns(t, ns, func() { conn, err = net.DialTimeout("tcp", to.String(), 2*time.Second) })
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	task, err := r.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the task's name: %w", err)
	}
	return &vipConn{conn, strings.TrimSpace(task), r}, nil
}

// TestService_routingMesh: a service's published port answers on every
// host of the cluster, those without a task included, for a client on
// the underlay and for the host itself (127.0.0.1), and reaches tasks on
// any host; a second service cannot publish the same port; removed, the
// port answers nowhere and the hosts' mesh addresses go back.
func TestService_routingMesh(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.82", "h1", "h2", "h3")
	c.cli("h1", "network", "create", "-d", "overlay", "--subnet", "10.82.0.0/24", "web")
	for _, h := range []string{"h2", "h3"} {
		c.waitNetwork(h, "web")
	}
	c.cli("h1", "service", "create", "www", "--network", "web", "-p", "8080:80")
	if out, err := c.tryCLI("h2", "service", "create", "other", "--network", "web", "-p", "8080:81"); err == nil || !strings.Contains(out, "published by service www") {
		t.Errorf("a second service on port 8080: %v %s", err, out)
	}
	if out, err := c.tryCLI("h2", "service", "create", "other", "--network", "web", "-p", "7946:80"); err == nil || !strings.Contains(out, "the cluster's own") {
		t.Errorf("a service on the gossip port: %v %s", err, out)
	}
	ns := map[string]string{}
	for name, host := range map[string]string{"t1": "h1", "t2": "h2"} {
		ns[name] = l.netns(name)
		c.cli(host, "endpoint", "create", "--network", "web", "--name", name, "--netns", ns[name], "--service", "www")
		taskServer(t, ns[name], name)
	}
	// A client on the underlay, outside the cluster.
	cx := l.netns("cx")
	l.veth(cx, "eth0", "198.18.82.99/24", l.prefix+"-br", "p-cx", "")
	l.run("ip", "-n", l.prefix+"-br", "link", "set", "p-cx", "master", "br0")

	reached := map[string]map[string]int{}
	for _, h := range []string{"h1", "h2", "h3"} {
		to := netip.AddrPortFrom(netip.MustParseAddr(c.hosts[h].addr), 8080)
		reached[h] = map[string]int{}
		testutil.WaitFor(t, "port 8080 of "+h+" to reach a task", 30*time.Second, func() bool {
			vc, err := dialAddr(t, cx, to)
			if err != nil {
				return false
			}
			vc.Close()
			return true
		})
		for range 20 {
			vc, err := dialAddr(t, cx, to)
			if err != nil {
				t.Fatalf("a connection to %v: %v", to, err)
			}
			if err := vc.echo("through the mesh"); err != nil {
				t.Errorf("echo through %v to %s: %v", to, vc.task, err)
			}
			reached[h][vc.task]++
			vc.Close()
		}
		// The host itself, on 127.0.0.1.
		vc, err := dialAddr(t, c.hosts[h].ns, netip.MustParseAddrPort("127.0.0.1:8080"))
		if err != nil {
			t.Errorf("127.0.0.1:8080 on %s: %v", h, err)
		} else {
			vc.Close()
		}
	}
	t.Logf("20 connections to each host's port 8080 reached: %v", reached)
	for h, by := range reached {
		if by["t1"] == 0 || by["t2"] == 0 {
			t.Errorf("connections to %s's port reached %v, want both tasks", h, by)
		}
	}

	// h3 (no task) killed and restarted: its port answers again.
	c.kill9("h3")
	c.start("h3", c.hosts["h1"].addr+":7946")
	testutil.WaitFor(t, "h3's port 8080 to reach a task after its agent restarted", 30*time.Second, func() bool {
		vc, err := dialAddr(t, cx, netip.AddrPortFrom(netip.MustParseAddr(c.hosts["h3"].addr), 8080))
		if err != nil {
			return false
		}
		vc.Close()
		return true
	})

	// Each host holds a mesh address of the network, every host knows.
	eps := c.endpoints("h2")
	for _, h := range []string{"h1", "h2", "h3"} {
		if e, ok := eps["vxmesh-"+h]; !ok || e.Host != h {
			t.Errorf("h2 does not list %s's mesh address: %+v", h, eps)
		}
	}

	// Removed: the port closes everywhere, the mesh addresses go back.
	c.cli("h1", "service", "rm", "www")
	for _, h := range []string{"h1", "h2", "h3"} {
		to := netip.AddrPortFrom(netip.MustParseAddr(c.hosts[h].addr), 8080)
		testutil.WaitFor(t, h+"'s port 8080 to close", 30*time.Second, func() bool {
			vc, err := dialAddr(t, cx, to)
			if err == nil {
				vc.Close()
			}
			return err != nil
		})
		testutil.WaitFor(t, h+" to give its mesh address back", 30*time.Second, func() bool {
			_, ok := c.endpoints(h)["vxmesh-"+h]
			return !ok
		})
	}
}

// udpTaskServer answers every datagram on UDP port 5353 in ns with the
// task's name.
func udpTaskServer(t *testing.T, ns, name string) {
	t.Helper()
	var pc net.PacketConn
	inNetns(t, ns, func() {
		var err error
		if pc, err = net.ListenPacket("udp", ":5353"); err != nil {
			t.Fatal(err)
		}
	})
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name), from)
		}
	}()
}

// TestService_dualStackUDPAndPing: on a dual-stack network a service has
// a VIP of each family; TCP over IPv6, UDP over IPv4 (each datagram
// exchange answered from the VIP) and ping over both reach its tasks on
// two hosts; AAAA answers with the IPv6 VIP.
func TestService_dualStackUDPAndPing(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.83", "h1", "h2")
	c.cli("h1", "network", "create", "-d", "overlay", "--subnet", "10.83.0.0/24", "--subnet", "fd00:83::/64", "dual")
	c.waitNetwork("h2", "dual")
	c.cli("h1", "service", "create", "api", "--network", "dual")
	svc := c.service("h2", "api")
	if len(svc.VIPs) != 2 {
		t.Fatalf("a dual-stack service's VIPs: %v, want one per family", svc.VIPs)
	}
	vip4, vip6 := netip.MustParseAddr(svc.VIPs[0]), netip.MustParseAddr(svc.VIPs[1])
	ns := map[string]string{}
	for name, host := range map[string]string{"t1": "h1", "t2": "h2", "cl": "h2"} {
		ns[name] = l.netns(name)
		args := []string{"endpoint", "create", "--network", "dual", "--name", name, "--netns", ns[name]}
		if name != "cl" {
			args = append(args, "--service", "api")
		}
		c.cli(host, args...)
		if name != "cl" {
			taskServer(t, ns[name], name)
			udpTaskServer(t, ns[name], name)
		}
	}
	testutil.WaitFor(t, "h2 to see both tasks", 15*time.Second, func() bool { return len(c.service("h2", "api").Endpoints) == 2 })
	if got := strings.TrimSpace(l.in(ns["cl"], "dig", "+short", "+time=2", "+tries=1", "AAAA", "api", "@127.0.0.11")); got != vip6.String() {
		t.Errorf("AAAA api: %q, want %v", got, vip6)
	}

	// TCP over IPv6.
	seen := map[string]bool{}
	for range 40 {
		vc, err := dialTask(t, ns["cl"], vip6)
		if err != nil {
			t.Fatalf("TCP to the IPv6 VIP: %v", err)
		}
		seen[vc.task] = true
		vc.Close()
	}
	if !seen["t1"] || !seen["t2"] {
		t.Errorf("TCP over IPv6 reached %v, want both tasks", seen)
	}

	// UDP over IPv4: each socket is a flow, answered from the VIP.
	seen = map[string]bool{}
	for range 40 {
		var conn *net.UDPConn
		inNetns(t, ns["cl"], func() {
			var err error
			if conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip4, 5353))); err != nil {
				t.Fatal(err)
			}
		})
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write([]byte("who"))
		buf := make([]byte, 64)
		n, from, err := conn.ReadFromUDPAddrPort(buf) // a connected socket takes only the VIP's answer
		conn.Close()
		if err != nil {
			t.Fatalf("UDP to the VIP: %v", err)
		}
		if from.Addr() != vip4 {
			t.Fatalf("the UDP answer came from %v, want the VIP", from)
		}
		seen[string(buf[:n])] = true
	}
	if !seen["t1"] || !seen["t2"] {
		t.Errorf("UDP reached %v, want both tasks", seen)
	}

	// ping, both families.
	l.in(ns["cl"], "ping", "-c", "2", "-i", "0.2", "-W", "5", vip4.String())
	l.in(ns["cl"], "ping", "-6", "-c", "2", "-i", "0.2", "-W", "5", vip6.String())
}
