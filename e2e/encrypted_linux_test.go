package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/testutil"
)

// The static config of an encrypted network.
type sealedRemoteConf struct {
	VTEP      string   `json:"vtep"`
	Addresses []string `json:"addresses"`
	Vxnet     bool     `json:"vxnet"`
}

type sealedNetworkConf struct {
	VNI       int                `json:"vni"`
	Subnets   []string           `json:"subnets"`
	Endpoints []endpointConf     `json:"endpoints"`
	Remotes   []sealedRemoteConf `json:"remotes"`
	Encrypted bool               `json:"encrypted"`
}

type encryptionConf struct {
	HostKey    string `json:"hostKey"`
	SessionKey string `json:"sessionKey"`
}

type peerConf struct {
	VTEP       string `json:"vtep"`
	HostKey    string `json:"hostKey"`
	SessionKey string `json:"sessionKey"`
}

type sealedStaticConf struct {
	VTEP       string              `json:"vtep"`
	Networks   []sealedNetworkConf `json:"networks"`
	Encryption encryptionConf      `json:"encryption"`
	Peers      []peerConf          `json:"peers"`
}

// keygen makes a private key file with `vxnet dataplane keygen` and
// returns its public key.
func (l *lab) keygen(name string) (path, public string) {
	l.t.Helper()
	path = filepath.Join(l.dir, name+".key")
	return path, strings.TrimSpace(l.run(vxnetBin, "dataplane", "keygen", path))
}

// TestDataplane_encrypted: two vxnet hosts with an encrypted network.
// Ping and a 100 MB transfer with a checksum cross it both ways and both
// families; a capture on the underlay holds no byte of what the
// containers sent (a marker the capture inside the container does show);
// a replayed datagram, a forged one and a plain one are dropped and
// counted, and none reaches the container.
func TestDataplane_encrypted(t *testing.T) {
	l := newLab(t)
	for _, bin := range []string{"tcpdump"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (make deps)", bin)
		}
	}
	const net3 = "198.18.7"
	h1, h2 := l.netns("h1"), l.netns("h2")
	c1, c2 := l.netns("c1"), l.netns("c2")
	l.veth(h1, "u0", net3+".1/24", h2, "u0", net3+".2/24")
	host1, host1Pub := l.keygen("h1-host")
	sess1, sess1Pub := l.keygen("h1-session")
	host2, host2Pub := l.keygen("h2-host")
	sess2, sess2Pub := l.keygen("h2-session")
	conf := func(vtep, cns, ip, peerVTEP, peerIP, host, sess, peerHost, peerSess string) sealedStaticConf {
		return sealedStaticConf{
			VTEP: vtep,
			Networks: []sealedNetworkConf{{
				VNI: testVNI, Subnets: testSubnets, Encrypted: true,
				Endpoints: []endpointConf{{Name: "c", Netns: cns, Ifname: "eth0", Addresses: []string{"10.0.9." + ip + "/24", "fd00:9::" + ip + "/64"}}},
				Remotes:   []sealedRemoteConf{{VTEP: peerVTEP, Addresses: []string{"10.0.9." + peerIP, "fd00:9::" + peerIP}, Vxnet: true}},
			}},
			Encryption: encryptionConf{HostKey: host, SessionKey: sess},
			Peers:      []peerConf{{VTEP: peerVTEP, HostKey: peerHost, SessionKey: peerSess}},
		}
	}
	a1 := l.startDataplane(h1, "h1", conf(net3+".1", c1, "2", net3+".2", "3", host1, sess1, host2Pub, sess2Pub))
	a2 := l.startDataplane(h2, "h2", conf(net3+".2", c2, "3", net3+".1", "2", host2, sess2, host1Pub, sess1Pub))
	if _, err := os.Stat(sess1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session key file is still there after the start: %v", err)
	}
	if b, err := os.ReadFile(host1 + ".sessions-used"); err != nil || !strings.Contains(string(b), sess1Pub) {
		t.Errorf("the used session key is not listed beside the host key: %v %q", err, b)
	}
	if mtu := strings.TrimSpace(l.in(c1, "cat", "/sys/class/net/eth0/mtu")); mtu != "1422" {
		t.Errorf("container MTU %s, want 1422 (1450 less 28 for sealing)", mtu)
	}

	// Captures: on h1's underlay, and inside c2.
	under := l.capture(h1, "u0", "udp port 4789")
	inside := l.capture(c2, "eth0", "icmp")
	const marker = "VXNETSEALMARK42!" // 16 bytes: ping -p repeats it
	l.in(c1, "ping", "-c", "3", "-i", "0.2", "-W", "5", "-p", hexOf(marker), "10.0.9.3")
	l.in(c2, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.0.9.2")
	l.in(c1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::3")
	l.in(c2, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::2")
	underPkts := under.stop()
	insidePkts := inside.stop()
	if !containsAny(insidePkts, []byte(marker)) {
		t.Fatal("the capture inside c2 does not show the marker, so the underlay's proves nothing")
	}
	if len(underPkts) < 12 {
		t.Fatalf("the underlay capture holds %d datagrams, want at least the 12 pings' and replies'", len(underPkts))
	}
	if containsAny(underPkts, []byte(marker)) || containsAny(underPkts, []byte(marker[:8])) {
		t.Fatal("the marker crossed the underlay in clear")
	}

	// What someone on the underlay can do: replay a datagram h2 sent,
	// forge one with a valid header, send one in plain VXLAN.
	var fromH2 []byte
	for _, p := range underPkts {
		if p.src == netip.MustParseAddr(net3+".2") {
			fromH2 = p.payload
			break
		}
	}
	if fromH2 == nil {
		t.Fatal("no datagram from h2 in the capture")
	}
	forged := append([]byte(nil), fromH2...)
	for i := 20; i < len(forged); i++ {
		forged[i] ^= 0x5a
	}
	copy(forged[12:20], []byte{0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0}) // a counter never used: the tag decides
	vni := fromH2[4:7]                                              // the network's, in clear
	plain := append([]byte{0x08, 0, 0, 0, vni[0], vni[1], vni[2], 0}, fromH2[20:]...)
	before := a1.stats(t)
	rxBefore := before.PortTxPackets
	inNetns(t, h2, func() {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(net3 + ".2")}, &net.UDPAddr{IP: net.ParseIP(net3 + ".1"), Port: 4789})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, d := range [][]byte{fromH2, forged, plain} {
			if _, err := conn.Write(d); err != nil {
				t.Fatal(err)
			}
		}
	})
	testutil.WaitFor(t, "the three drops counted", 10*time.Second, func() bool {
		d := a1.stats(t).Drops
		return d["seal_replay"] == before.Drops["seal_replay"]+1 && d["seal_bad_tag"] == before.Drops["seal_bad_tag"]+1 &&
			d["seal_mismatch"] == before.Drops["seal_mismatch"]+1
	})
	if got := a1.stats(t).PortTxPackets; got != rxBefore {
		t.Errorf("the container got %d packets from the replayed, forged and plain datagrams", got-rxBefore)
	}
	// The transfers come after: a connection's last segments (its close)
	// may reach a container for a while after the transfer is checked,
	// and would count as delivered above.
	for _, tc := range []struct {
		client, server string
		addr           string
	}{
		{c1, c2, "10.0.9.3"},
		{c2, c1, "10.0.9.2"},
		{c1, c2, "fd00:9::3"},
	} {
		transfer(t, tc.client, tc.server, netip.MustParseAddr(tc.addr), transferSize)
	}
	for _, a := range []*agent{a1, a2} {
		d := a.stats(t).Drops
		if d["seal_unknown_key"]+d["seal_no_key"]+d["seal_stale_key"] != 0 {
			t.Errorf("key drops between two configured hosts: %v", d)
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// captured is one packet of a capture: its IP source and its transport
// payload (UDP) or the whole packet otherwise.
type captured struct {
	src     netip.Addr
	payload []byte
	raw     []byte
}

func containsAny(ps []captured, marker []byte) bool {
	for _, p := range ps {
		if bytes.Contains(p.raw, marker) {
			return true
		}
	}
	return false
}

type capture struct {
	l    *lab
	cmd  *exec.Cmd
	path string
	log  *testutil.SyncBuffer
}

// capture runs tcpdump on dev in ns with filter until stop; stopped at
// cleanup too.
func (l *lab) capture(ns, dev, filter string) *capture {
	l.t.Helper()
	c := &capture{l: l, path: filepath.Join(l.dir, ns+"-"+dev+".pcap"), log: new(testutil.SyncBuffer)}
	c.cmd = exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-n", "--immediate-mode", "-U", "-w", c.path, filter)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	testutil.WaitFor(l.t, "tcpdump to listen on "+dev, 10*time.Second, func() bool { return strings.Contains(c.log.String(), "listening on") })
	return c
}

// stop ends the capture and returns its packets.
func (c *capture) stop() []captured {
	c.l.t.Helper()
	c.cmd.Process.Signal(os.Interrupt)
	c.cmd.Wait()
	f, err := os.Open(c.path)
	if err != nil {
		c.l.t.Fatalf("capture: %v\n%s", err, c.log)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		c.l.t.Fatalf("capture %s: %v", c.path, err)
	}
	var out []captured
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.l.t.Fatalf("capture %s: %v", c.path, err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		cp := captured{raw: data}
		if ip, ok := p.NetworkLayer().(*layers.IPv4); ok {
			cp.src, _ = netip.AddrFromSlice(ip.SrcIP)
		}
		if ip, ok := p.NetworkLayer().(*layers.IPv6); ok {
			cp.src, _ = netip.AddrFromSlice(ip.SrcIP)
		}
		if u, ok := p.TransportLayer().(*layers.UDP); ok {
			cp.payload = append([]byte(nil), u.Payload...)
		}
		out = append(out, cp)
	}
	return out
}

// TestAgent_encryptedNetwork: three agents and an encrypted network
// (-o encrypted; refused in a cluster without a gossip key). Containers on
// every host reach each other by name at an MTU of 1422, a 100 MB transfer
// arrives whole, the underlay carries no byte of a container's ping in
// clear; a replayed and a forged datagram are dropped and counted; a key
// rotation under a streaming connection loses no byte and drops no
// datagram anywhere; and once a host is gone (kill -9, out of the
// membership), what it sent before is refused when replayed.
func TestAgent_encryptedNetwork(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed (make deps)")
	}
	// Encrypted networks need an encrypted cluster: their keys travel in
	// gossip.
	plain := newLab(t).cluster("198.18.62", "p1") // a lab of its own: its namespaces' names

	if out, err := plain.tryCLI("p1", "network", "create", "-o", "encrypted", "--subnet", "10.62.0.0/24", "sec"); err == nil || !strings.Contains(out, "gossip-key-file") {
		t.Fatalf("an encrypted network in a cluster without a gossip key: %v %s", err, out)
	}
	keyFile := filepath.Join(l.dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte("4OfqNN82w/doggaHXJhYZOF1uTqRLZwFkomTb7gQEtY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := l.clusterWith("198.18.61", []string{"--gossip-key-file", keyFile}, "h1", "h2", "h3")
	c.cli("h1", "network", "create", "-o", "encrypted", "--subnet", "10.61.0.0/24", "sec")
	if n := c.networks("h2")["sec"]; n.Options["encrypted"] != "true" {
		t.Fatalf("network inspect: options %v, want encrypted=true", n.Options)
	}
	ns := map[string]string{}
	for _, e := range []struct{ host, name string }{{"h1", "c1"}, {"h2", "c2"}, {"h3", "c3"}} {
		c.waitNetwork(e.host, "sec")
		ns[e.name] = l.netns(e.name)
		c.cli(e.host, "endpoint", "create", "--network", "sec", "--name", e.name, "--netns", ns[e.name])
	}
	if out := l.in(ns["c1"], "ip", "-o", "link", "show", "up"); !strings.Contains(out, "mtu 1422") {
		t.Errorf("the container's device is not at MTU 1422 (1450 less 28 for sealing):\n%s", out)
	}
	l.waitPing("c1 to reach c2 by name", ns["c1"], "c2")
	l.waitPing("c1 to reach c3 by name", ns["c1"], "c3")

	h1, h3 := c.hosts["h1"], c.hosts["h3"]
	under := l.capture(h1.ns, "ul0", "udp port 4789")
	inside := l.capture(ns["c1"], "eth0", "icmp")
	const marker = "VXNETAGENTMARK!!"
	l.in(ns["c3"], "ping", "-c", "3", "-i", "0.2", "-W", "5", "-p", hexOf(marker), "c1")
	pkts, seen := under.stop(), inside.stop()
	if !containsAny(seen, []byte(marker)) {
		t.Fatal("the capture inside c1 does not show the marker, so the underlay's proves nothing")
	}
	if containsAny(pkts, []byte(marker)) || containsAny(pkts, []byte(marker[:8])) {
		t.Fatal("the marker crossed the underlay in clear")
	}
	var fromH3 []byte
	for _, p := range pkts {
		if p.src == netip.MustParseAddr(h3.addr) && len(p.payload) > 0 {
			fromH3 = p.payload
		}
	}
	if fromH3 == nil {
		t.Fatalf("no datagram from h3 among the %d captured", len(pkts))
	}
	transfer(t, ns["c1"], ns["c3"], addrOf(t, c.endpoints("h1")["c3"]), transferSize)

	// Someone on the underlay replays a datagram h3 sent, and forges one
	// with a valid header and a counter never used: h1 drops and counts
	// both.
	forged := append([]byte(nil), fromH3...)
	copy(forged[12:20], []byte{0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0})
	for i := 20; i < len(forged); i++ {
		forged[i] ^= 0x5a
	}
	metrics1 := func() string { return l.in(h1.ns, "curl", "-sf", "http://"+h1.addr+":9464/metrics") }
	m0 := metrics1()
	inNetns(t, h3.ns, func() {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(h3.addr)}, &net.UDPAddr{IP: net.ParseIP(h1.addr), Port: 4789})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, d := range [][]byte{fromH3, forged} {
			if _, err := conn.Write(d); err != nil {
				t.Fatal(err)
			}
		}
	})
	testutil.WaitFor(t, "h1 to count the replayed and the forged datagram", 10*time.Second, func() bool {
		m := metrics1()
		return metricValue(m, `vxnet_dataplane_drops_total{reason="seal_replay"}`) > metricValue(m0, `vxnet_dataplane_drops_total{reason="seal_replay"}`) &&
			metricValue(m, `vxnet_dataplane_drops_total{reason="seal_bad_tag"}`) > metricValue(m0, `vxnet_dataplane_drops_total{reason="seal_bad_tag"}`)
	})
	attack := metrics1() // the drops above are the attack's; none may follow
	// vxnet stats reads the same counters through the API.
	var st api.Stats
	if err := json.Unmarshal([]byte(c.cli("h1", "stats", "--format", "json")), &st); err != nil ||
		st.Drops["seal_replay"] < metricValue(attack, `vxnet_dataplane_drops_total{reason="seal_replay"}`) || st.Drops["seal_replay"] == 0 || st.PortRxPackets == 0 {
		t.Errorf("vxnet stats on h1: %+v (%v), want the replay counted and packets from the containers", st, err)
	}

	// h1 rotates its keys while one TCP connection streams to c3 and on
	// past the moment the new keys are in use: the connection carries
	// every byte, and no host drops a datagram for its keys.
	out := c.cli("h1", "cluster", "rotate-keys")
	if !strings.Contains(out, "in use from") {
		t.Fatalf("cluster rotate-keys: %q", out)
	}
	if _, err := c.tryCLI("h1", "cluster", "rotate-keys"); err == nil {
		t.Error("a second rotation started while the first runs")
	}
	// The new keys are in use 5 s after the announcement; streaming
	// until the old ones have been replaced on h1 (its log says so) covers
	// the change.
	rotated := func() bool {
		b, _ := os.ReadFile(h1.log)
		return strings.Contains(string(b), "session keys changed")
	}
	sent := transferFrom(t, ns["c1"], ns["c3"], addrOf(t, c.endpoints("h1")["c3"]), &untilReader{r: rand.NewChaCha8([32]byte{9}), done: rotated, deadline: time.Now().Add(30 * time.Second)})
	if !rotated() {
		t.Fatalf("the rotation did not finish while %d bytes streamed", sent)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		m := l.in(c.hosts[h].ns, "curl", "-sf", "http://"+c.hosts[h].addr+":9464/metrics")
		for _, reason := range []string{"seal_no_key", "seal_unknown_key", "seal_stale_key", "seal_bad_tag", "seal_replay"} {
			series := `vxnet_dataplane_drops_total{reason="` + reason + `"}`
			before := uint64(0)
			if h == "h1" {
				before = metricValue(attack, series)
			}
			if v := metricValue(m, series) - before; v != 0 {
				t.Errorf("%s dropped %d datagrams as %s around the rotation", h, v, reason)
			}
		}
	}

	// h3 dies; once the others have seen it go, its datagrams are
	// refused, the ones recorded before too.
	c.kill9("h3")
	c.waitMembers([]string{"h1", "h2"}, 2)
	refused := func() uint64 {
		m := l.in(h1.ns, "curl", "-sf", "http://"+h1.addr+":9464/metrics")
		return metricValue(m, `vxnet_dataplane_drops_total{reason="seal_unknown_key"}`) + metricValue(m, `vxnet_dataplane_drops_total{reason="unknown_vtep"}`)
	}
	testutil.WaitFor(t, "h3's replayed datagram refused at h1", 20*time.Second, func() bool {
		before := refused()
		inNetns(t, h3.ns, func() {
			conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(h3.addr)}, &net.UDPAddr{IP: net.ParseIP(h1.addr), Port: 4789})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write(fromH3)
		})
		return testutil.Eventually(2*time.Second, func() bool { return refused() > before })
	})
	l.waitPing("c1 to reach c2 with h3 gone", ns["c1"], "c2")
}

// untilReader yields r's bytes until done reports true (checked every
// megabyte) or the deadline passes.
type untilReader struct {
	r        io.Reader
	done     func() bool
	deadline time.Time
	n        int
}

func (u *untilReader) Read(p []byte) (int, error) {
	if u.n >= 1<<20 {
		if u.done() || time.Now().After(u.deadline) {
			return 0, io.EOF
		}
		u.n = 0
	}
	n, err := u.r.Read(p)
	u.n += n
	return n, err
}

// metricValue reads one sample of a Prometheus text exposition; 0 if
// absent.
func metricValue(exposition, series string) uint64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var n uint64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}
