package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/agent/config"
)

func TestParseEndpoints_andAddr(t *testing.T) {
	eps, err := parseEndpoints(`[
	  {"name": "h1c1", "network": "demo", "host": "h1", "addresses": ["fd00::2/64", "10.0.0.2/24"], "mac": "02:42:0a:00:00:02"},
	  {"name": "v6", "network": "demo", "host": "h2", "addresses": ["fd00::3/64"]},
	  {"name": "bare", "network": "demo", "host": "h2", "addresses": ["10.0.0.9"]},
	  {"name": "none", "network": "demo", "host": "h2", "addresses": ["junk"]}
	]`)
	if err != nil || len(eps) != 4 {
		t.Fatalf("parseEndpoints = %v, %v", eps, err)
	}
	for i, want := range []string{"10.0.0.2", "fd00::3", "10.0.0.9", "invalid IP"} {
		if got := eps[i].Addr().String(); got != want {
			t.Errorf("%s: Addr() = %s, want %s", eps[i].Name, got, want)
		}
	}
	if _, err := parseEndpoints("NAME NETWORK\nh1c1 demo\n"); err == nil || !strings.Contains(err.Error(), "endpoint ls") {
		t.Errorf("a table instead of JSON: %v", err)
	}
}

func TestParseMembers(t *testing.T) {
	m, err := parseMembers(`[{"name": "h1", "addr": "198.18.0.1:7946", "vtep": "198.18.0.1"}, {"name": "h2", "addr": "198.18.0.2"}]`)
	if err != nil || len(m) != 2 || m[1].Name != "h2" {
		t.Fatalf("parseMembers = %v, %v", m, err)
	}
	if missing := hasAll(memberNames(m), []string{"h1", "h2", "h3"}); !slices.Equal(missing, []string{"h3"}) {
		t.Errorf("missing = %v", missing)
	}
	if _, err := parseMembers(`{}`); err == nil {
		t.Error("an object instead of an array parsed")
	}
}

// The agent's command line is the contract between lab and agent: flags and values.
func TestAgentArgv(t *testing.T) {
	s := newState(Config{ID: "a", Hosts: 2, Dir: "/run/vxnet-lab/a", Binary: "/bin/vxnet"}.withDefaults())
	h := &s.Hosts[1]
	got := strings.Join(agentArgv(s, h, []string{"198.18.0.1:7946"}), " ")
	want := "ip netns exec a-h2 /bin/vxnet agent --name h2 --advertise-addr " + h.Addr.String() +
		" --data-dir /run/vxnet-lab/a/h2/data --api-socket /run/vxnet-lab/a/h2/api.sock --docker-plugin off --profile fast --log-level info" +
		" --dns-upstream " + s.Outside.Addr.String() + " --join 198.18.0.1:7946"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	s.GossipPort = 8000
	if got := strings.Join(agentArgv(s, h, nil), " "); !strings.HasSuffix(got, "--dns-upstream "+s.Outside.Addr.String()+" --gossip-port 8000") {
		t.Errorf("no join, other port: %s", got)
	}
	s = newState(Config{ID: "a", Hosts: 1, Dir: "/run/vxnet-lab/a", Binary: "/bin/vxnet", GossipKey: true}.withDefaults())
	if got := strings.Join(agentArgv(s, &s.Hosts[0], nil), " "); !strings.HasSuffix(got, " --gossip-key-file /run/vxnet-lab/a/h1/gossip.key --join-cert /run/vxnet-lab/a/join.crt --join-key /run/vxnet-lab/a/join.key") {
		t.Errorf("with a gossip key: %s (want the host's own file, and the lab's join certificate: every agent serves joins)", got)
	}
	// The host's file starts as the lab's key, and is then the agent's.
	dir := t.TempDir()
	s = newState(Config{ID: "a", Hosts: 1, Dir: dir, Binary: "/bin/vxnet", GossipKey: true}.withDefaults())
	if err := writeGossipKey(s.GossipKeyFile); err != nil {
		t.Fatal(err)
	}
	h = &s.Hosts[0]
	if err := os.MkdirAll(filepath.Dir(h.DataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := seedHostKey(s, h); err != nil {
		t.Fatal(err)
	}
	lab, _ := os.ReadFile(s.GossipKeyFile)
	if mine, err := os.ReadFile(hostKeyFile(h)); err != nil || string(mine) != string(lab) {
		t.Errorf("the host's key file %q %v, want the lab's %q", mine, err, lab)
	}
	os.WriteFile(hostKeyFile(h), []byte("rotated\n"), 0o600)
	if err := seedHostKey(s, h); err != nil {
		t.Fatal(err)
	}
	if mine, _ := os.ReadFile(hostKeyFile(h)); string(mine) != "rotated\n" {
		t.Errorf("a later start overwrote the host's key file: %q", mine)
	}
}

// TestWriteGossipKey: the lab's gossip key is one the agent reads, in a
// file only its owner can read.
func TestWriteGossipKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gossip.key")
	if err := writeGossipKey(path); err != nil {
		t.Fatal(err)
	}
	keys, err := config.ReadGossipKeys(path)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the agent reads %v, %v; want one key", keys, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestProbeArgvs(t *testing.T) {
	src := ContainerState{Name: "h1c1", Netns: "l-h1-c1"}
	dst := ContainerState{Name: "h2c1", Netns: "l-h2-c1", Addr: netip.MustParseAddr("10.0.0.9")}
	want := map[Check][]string{
		PingAddr: {"ip netns exec l-h1-c1 ping -c1 -W2 -n 10.0.0.9"},
		PingName: {"ip netns exec l-h1-c1 ping -c1 -W2 -n h2c1"},
		TCPAddr:  {"ip netns exec l-h1-c1 /v lab tcp-echo --connect 10.0.0.9:7777 --timeout 3s"},
		TCPName:  {"ip netns exec l-h1-c1 /v lab tcp-echo --connect h2c1.demo:7777 --timeout 3s"},
		DNSName:  {"ip netns exec l-h1-c1 dig +short +time=2 +tries=1 @127.0.0.11 h2c1 h2c1.demo"},
	}
	for c := range NumChecks {
		var got []string
		for _, argv := range probeArgvs("/v", c, src, containerTarget(dst, "demo"), 7777) {
			got = append(got, strings.Join(argv, " "))
		}
		if !slices.Equal(got, want[c]) {
			t.Errorf("%s: got %q, want %q", c, got, want[c])
		}
	}
}

// To the outside: its address, and by name the one name its DNS server
// answers, which the agent forwards.
func TestProbeArgvs_outside(t *testing.T) {
	src := ContainerState{Name: "h1c1", Netns: "l-h1-c1"}
	dst := outsideTarget(OutsideState{Netns: "l-outside", Addr: netip.MustParseAddr("198.18.7.250")})
	want := map[Check][]string{
		PingAddr: {"ip netns exec l-h1-c1 ping -c1 -W2 -n 198.18.7.250"},
		PingName: {"ip netns exec l-h1-c1 ping -c1 -W2 -n outside.test"},
		TCPAddr:  {"ip netns exec l-h1-c1 /v lab tcp-echo --connect 198.18.7.250:7777 --timeout 3s"},
		TCPName:  {"ip netns exec l-h1-c1 /v lab tcp-echo --connect outside.test:7777 --timeout 3s"},
		DNSName:  {"ip netns exec l-h1-c1 dig +short +time=2 +tries=1 @127.0.0.11 outside.test"},
	}
	for c := range NumChecks {
		var got []string
		for _, argv := range probeArgvs("/v", c, src, dst, 7777) {
			got = append(got, strings.Join(argv, " "))
		}
		if !slices.Equal(got, want[c]) {
			t.Errorf("%s: got %q, want %q", c, got, want[c])
		}
	}
}

// probe's DNS check wants exactly the destination's address.
func TestProbe_dnsAnswer(t *testing.T) {
	dst := containerTarget(ContainerState{Name: "h2c1", Addr: netip.MustParseAddr("10.0.0.9")}, "demo")
	for answer, ok := range map[string]bool{
		"10.0.0.9\n10.0.0.9\n":           true,
		"":                               false,
		"10.0.0.9\n":                     false, // one name unanswered
		"10.0.0.8\n10.0.0.8\n":           false,
		"10.0.0.9\n10.0.0.8\n":           false,
		"10.0.0.9\n10.0.0.9\n10.0.0.8\n": false,
	} {
		r := &recorder{answer: func([]string) (string, error) { return answer, nil }}
		l := &Lab{cfg: Config{}.withDefaults(), run: r, st: &State{Binary: "/v"}}
		err := l.probe(t.Context(), DNSName, ContainerState{Netns: "n"}, dst, 7777)
		if (err == nil) != ok {
			t.Errorf("answer %q: err = %v, want ok=%v", answer, err, ok)
		}
	}
}

// The outside's name is asked once: one answer line, its address.
func TestCheckDig_outside(t *testing.T) {
	dst := outsideTarget(OutsideState{Addr: netip.MustParseAddr("198.18.7.250")})
	for answer, ok := range map[string]bool{
		"198.18.7.250\n":               true,
		"":                             false, // the forward failed (SERVFAIL prints nothing)
		"198.18.7.250\n198.18.7.250\n": false,
		"10.0.0.9\n":                   false,
	} {
		if err := checkDig(answer, dst); (err == nil) != ok {
			t.Errorf("answer %q: err = %v, want ok=%v", answer, err, ok)
		}
	}
}

func TestPairs_outsideLastInEachRow(t *testing.T) {
	got := pairs(2, true)
	want := []pair{{0, 1}, {0, outsideCol}, {1, 0}, {1, outsideCol}}
	if !slices.Equal(got, want) {
		t.Errorf("pairs(2, true) = %v, want %v", got, want)
	}
	if got := pairs(1, false); len(got) != 0 {
		t.Errorf("pairs(1, false) = %v", got)
	}
}

// checkAll fills the outside column with the outside as destination; a
// dig the outside's server does not answer fails the outside's DNS check
// only.
func TestCheckAll_outsideColumn(t *testing.T) {
	cs := []ContainerState{
		{Name: "h1c1", Host: "h1", Netns: "l-h1-c1", Addr: netip.MustParseAddr("10.0.0.2")},
		{Name: "h2c1", Host: "h2", Netns: "l-h2-c1", Addr: netip.MustParseAddr("10.0.0.3")},
	}
	o := OutsideState{Netns: "l-outside", Addr: netip.MustParseAddr("198.18.7.250")}
	addrs := map[string]string{"h1c1": "10.0.0.2", "h1c1.demo": "10.0.0.2", "h2c1": "10.0.0.3", "h2c1.demo": "10.0.0.3"}
	r := &recorder{answer: func(argv []string) (string, error) {
		if !slices.Contains(argv, "dig") {
			return "", nil
		}
		var out string
		for _, name := range argv[slices.Index(argv, digAtAgent)+1:] {
			if a, ok := addrs[name]; ok {
				out += a + "\n"
			}
		}
		return out, nil
	}}
	l := &Lab{cfg: Config{}.withDefaults(), run: r, st: &State{Binary: "/v"}}
	out := outsideTarget(o)
	m := l.checkAll(t.Context(), cs, &out, DemoConfig{Network: "demo", Parallel: 1, Attempts: 1}.withDefaults())
	if m.Outside == nil {
		t.Fatal("no outside column")
	}
	for i := range cs {
		for c, res := range m.Outside[i] {
			if want := Check(c) != DNSName; res.OK != want || res.Attempts != 1 {
				t.Errorf("%s → outside %s: %+v, want ok=%v", cs[i].Name, Check(c), res, want)
			}
		}
		for c, res := range m.Results[i][1-i] {
			if !res.OK {
				t.Errorf("%s → %s %s: %+v", cs[i].Name, cs[1-i].Name, Check(c), res)
			}
		}
	}
	var toOutside int
	for _, argv := range r.cmds {
		if cmd := strings.Join(argv, " "); strings.Contains(cmd, "198.18.7.250") || strings.Contains(cmd, OutsideName) {
			toOutside++
		}
	}
	if toOutside != 2*int(NumChecks) { // every check, from each container
		t.Errorf("%d commands name the outside, want %d:\n%v", toOutside, 2*NumChecks, r.cmds)
	}
}
