package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// The testbed's addresses. The underlays are in 198.18.0.0/15 (RFC 2544,
// benchmarking), the containers' subnets in 10.200.0.0/16; none of them
// exists outside the namespaces the benchmark creates.
const (
	kernelUnderlay = "198.18.200" // .1 host 1, .2 host 2, /24
	vxnetUnderlay  = "198.18.201"
	relayUnderlay  = "198.18.202"
	kernelSubnet   = "10.200.1" // .1 container 1, .2 container 2, /24
	vxnetSubnet    = "10.200.2"
	vxnetVIP       = "10.200.2.100" // a service's VIP on the vxnet path, container 2 its task
	relaySubnet    = "10.200.3"
	relayPort      = "4790"
	kernelVNI      = 4242
	vxnetVNI       = 4243
	containerMTU   = tun.DefaultMTU // a 1500-byte underlay less 50 bytes of VXLAN
)

// benchPath is one of the ways across, as the tests use it.
type benchPath struct {
	key, label     string
	client, server string // namespaces
	addr           string // the server's address, as the client reaches it
	cpu            []*bgProc
	// shared: the server (iperf3 -s) is another path's, reached at
	// another address (vxnet-vip: the vxnet path's, at the VIP).
	shared bool
	// tunnelUDP: the server's namespace also receives the path's own
	// tunnel datagrams (a host-only path), so its UDP counters do not tell
	// what reached the server's socket.
	tunnelUDP bool
}

// testbed is everything RunDataplane built: namespaces and processes,
// removed by close.
type testbed struct {
	cfg        DataplaneConfig
	progress   io.Writer
	dir        string
	namespaces []string
	procs      []*bgProc
	paths      []*benchPath

	sealed *sealedKeys // the vxnet-encrypted hosts' keys
	wgKey  [2]string   // the wireguard-go hosts' private key files
	wgPub  [2]string   // and public keys
}

func runDataplane(ctx context.Context, cfg DataplaneConfig, progress io.Writer) (samples []DataplaneSample, err error) {
	if err := checkDataplaneTools(cfg); err != nil {
		return nil, err
	}
	removeStaleNamespaces(progress)
	tb := &testbed{cfg: cfg, progress: progress}
	defer func() { err = errors.Join(err, tb.close()) }()
	if tb.dir, err = os.MkdirTemp("", "vxnet-bench-dataplane-"); err != nil {
		return nil, err
	}
	start := time.Now()
	fmt.Fprintf(progress, "building the testbed (namespaces %s*)…\n", cfg.Prefix)
	if err := tb.build(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "testbed up in %.1f s; %d reps × %d paths × 4 tests of %v each\n",
		time.Since(start).Seconds(), cfg.Reps, len(tb.paths), cfg.Time)
	for rep := 1; rep <= cfg.Reps; rep++ {
		for _, p := range tb.paths {
			s, err := tb.measure(ctx, p, rep)
			if err != nil {
				return samples, fmt.Errorf("bench: rep %d, %s: %w", rep, p.label, err)
			}
			samples = append(samples, s)
		}
	}
	return samples, nil
}

func checkDataplaneTools(cfg DataplaneConfig) error {
	if os.Geteuid() != 0 {
		return errors.New("bench: the data-plane benchmark needs root: it creates network namespaces (run it with sudo)")
	}
	for _, tool := range []string{"ip", "iperf3", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench: %s not found (Debian: apt-get install iproute2 iperf3 iputils-ping, or make deps): %w", tool, err)
		}
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return fmt.Errorf("bench: the vxnet binary: %w", err)
	}
	return nil
}

// relayWanted reports whether the socat relay path runs, and says so when
// socat is missing.
func relayWanted(cfg DataplaneConfig, progress io.Writer) bool {
	if cfg.NoRelay {
		return false
	}
	if _, err := exec.LookPath("socat"); err != nil {
		fmt.Fprintln(progress, "socat not found: the relay path is left out (Debian: apt-get install socat, or make deps)")
		return false
	}
	return true
}

// build creates the namespaces, the two underlays, the kernel's VXLAN,
// the vxnet hosts and the iperf3 servers, and waits until every path
// carries a ping.
func (tb *testbed) build(ctx context.Context) error {
	// Each path but the underlay's own is two hosts, their underlay and a
	// container behind each: h<ns>1 h<ns>2 c<ns>1 c<ns>2; or, hostOnly,
	// the two hosts alone, the tests running in them.
	noProc := func(f func(ctx context.Context, host, container string, i int) error) func(context.Context, string, string, int) (*bgProc, error) {
		return func(ctx context.Context, host, container string, i int) (*bgProc, error) {
			return nil, f(ctx, host, container, i)
		}
	}
	paths := []struct {
		key, label, ns, subnet, underlay string
		hostOnly                         bool
		wanted                           bool
		// start makes host i's side; the process it returns, if any,
		// is the path's own, whose CPU time the benchmark reads.
		start func(ctx context.Context, host, container string, i int) (*bgProc, error)
	}{
		{PathKernel, "kernel vxlan", "k", kernelSubnet, kernelUnderlay, false, true, noProc(tb.kernelVXLAN)},
		{PathVxnet, "vxnet", "v", vxnetSubnet, vxnetUnderlay, false, true, tb.startVxnet},
		{PathSealed, "vxnet encrypted", "e", sealedSubnet, sealedUnderlay, false, sealedWanted(tb.cfg), tb.startSealed},
		{PathWireGuard, "wireguard-go", "w", wgSubnet, wgUnderlay, true, wireguardWanted(&tb.cfg, tb.progress), tb.startWireGuard},
		{PathRelay, "socat relay", "r", relaySubnet, relayUnderlay, false, relayWanted(tb.cfg, tb.progress), noProc(tb.startRelay)},
		{PathOVS, "Open vSwitch", "o", ovsSubnet, ovsUnderlay, false, ovsWanted(tb.cfg, tb.progress), noProc(tb.startOVS)},
	}
	for _, p := range paths {
		if !p.wanted {
			continue
		}
		h1, h2 := tb.cfg.Prefix+"h"+p.ns+"1", tb.cfg.Prefix+"h"+p.ns+"2"
		c1, c2 := tb.cfg.Prefix+"c"+p.ns+"1", tb.cfg.Prefix+"c"+p.ns+"2"
		names := []string{h1, h2, c1, c2}
		if p.hostOnly {
			names, c1, c2 = names[:2], h1, h2
		}
		for _, n := range names {
			if err := tb.addNetns(ctx, n); err != nil {
				return err
			}
		}
		if err := tb.underlay(ctx, h1, h2, p.underlay); err != nil {
			return err
		}
		var own []*bgProc
		for i, h := range [][2]string{{h1, c1}, {h2, c2}} {
			proc, err := p.start(ctx, h[0], h[1], i+1)
			if err != nil {
				return err
			}
			if proc != nil {
				own = append(own, proc)
			}
		}
		if p.key == PathKernel { // the underlay path runs on the kernel path's hosts
			tb.paths = append(tb.paths, &benchPath{key: PathUnderlay, label: "underlay", client: h1, server: h2, addr: p.underlay + ".2"})
		}
		tb.paths = append(tb.paths, &benchPath{key: p.key, label: p.label, client: c1, server: c2, addr: p.subnet + ".2", cpu: own, tunnelUDP: p.hostOnly})
		if p.key == PathVxnet {
			// The same hosts, the same server, reached at the VIP of a
			// service whose one task is the server: what the VIP costs.
			tb.paths = append(tb.paths, &benchPath{key: PathVIP, label: "vxnet to a VIP", client: c1, server: c2, addr: vxnetVIP, cpu: own, shared: true})
		}
	}
	for _, p := range tb.paths {
		if p.shared {
			continue
		}
		if err := tb.startIperfServer(ctx, p); err != nil {
			return err
		}
	}
	for _, p := range tb.paths {
		if err := tb.waitPing(ctx, p, 20*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// run runs argv to completion and returns its combined output.
func run(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func runAll(ctx context.Context, cmds ...[]string) error {
	for _, argv := range cmds {
		if _, err := run(ctx, argv...); err != nil {
			return err
		}
	}
	return nil
}

func (tb *testbed) addNetns(ctx context.Context, name string) error {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	tb.namespaces = append(tb.namespaces, name)
	_, err := run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
	return err
}

// underlay joins hosts a and b with a veth pair u0 (MTU 1500), net.1 and
// net.2. The pair is created inside a and its peer moved straight to b,
// so no link ever exists in the namespace the benchmark runs in.
func (tb *testbed) underlay(ctx context.Context, a, b, net string) error {
	return runAll(ctx,
		[]string{"ip", "-n", a, "link", "add", "u0", "mtu", "1500", "type", "veth", "peer", "name", "u0", "netns", b},
		[]string{"ip", "-n", a, "addr", "add", net + ".1/24", "dev", "u0", "nodad"},
		[]string{"ip", "-n", b, "addr", "add", net + ".2/24", "dev", "u0", "nodad"},
		[]string{"ip", "-n", a, "link", "set", "u0", "up"},
		[]string{"ip", "-n", b, "link", "set", "u0", "up"},
	)
}

// kernelVXLAN creates host i's vxlan device in its host namespace (where
// the kernel keeps its UDP socket), then moves it into the container
// namespace as eth0.
func (tb *testbed) kernelVXLAN(ctx context.Context, host, container string, i int) error {
	local, remote := fmt.Sprintf("%s.%d", kernelUnderlay, i), fmt.Sprintf("%s.%d", kernelUnderlay, 3-i)
	if _, err := run(ctx, "ip", "-n", host, "link", "add", "vx0", "type", "vxlan", "id", fmt.Sprint(kernelVNI),
		"local", local, "remote", remote, "dstport", fmt.Sprint(vxlan.DefaultPort), "nolearning"); err != nil {
		return err
	}
	return intoContainer(ctx, host, container, "vx0", kernelSubnet, i)
}

// intoContainer moves device dev from host into container as eth0 (MTU
// containerMTU), gives it subnet.i/24 and brings it up.
func intoContainer(ctx context.Context, host, container, dev, subnet string, i int) error {
	return runAll(ctx,
		[]string{"ip", "-n", host, "link", "set", dev, "netns", container},
		[]string{"ip", "-n", container, "link", "set", dev, "name", "eth0", "mtu", fmt.Sprint(containerMTU)},
		[]string{"ip", "-n", container, "addr", "add", fmt.Sprintf("%s.%d/24", subnet, i), "dev", "eth0", "nodad"},
		[]string{"ip", "-n", container, "link", "set", "eth0", "up"},
	)
}

// vxnetStatic and its parts are the static file `vxnet dataplane
// --config` reads (see `vxnet dataplane --help`).
type vxnetStatic struct {
	VTEP     string         `json:"vtep"`
	MTU      int            `json:"mtu"`
	Networks []vxnetNetwork `json:"networks"`
}

type vxnetNetwork struct {
	VNI       int             `json:"vni"`
	Subnets   []string        `json:"subnets"`
	Endpoints []vxnetEndpoint `json:"endpoints"`
	Remotes   []vxnetRemote   `json:"remotes"`
	Encrypted bool            `json:"encrypted,omitempty"`
	Services  []vxnetService  `json:"services,omitempty"`
}

type vxnetService struct {
	Name  string   `json:"name"`
	VIPs  []string `json:"vips"`
	Tasks []string `json:"tasks"`
}

type vxnetEndpoint struct {
	Name      string   `json:"name"`
	Netns     string   `json:"netns"`
	Ifname    string   `json:"ifname"`
	Addresses []string `json:"addresses"`
}

type vxnetRemote struct {
	VTEP      string   `json:"vtep"`
	Addresses []string `json:"addresses"`
	Vxnet     bool     `json:"vxnet"`
}

// startVxnet runs `vxnet dataplane` for host i (1 or 2) in its host
// namespace, with one endpoint (eth0) in the container namespace and the
// other host's endpoint as its remote.
func (tb *testbed) startVxnet(ctx context.Context, host, container string, i int) (*bgProc, error) {
	peer := 3 - i
	conf := vxnetStatic{VTEP: fmt.Sprintf("%s.%d", vxnetUnderlay, i), MTU: containerMTU, Networks: []vxnetNetwork{{
		VNI:       vxnetVNI,
		Subnets:   []string{vxnetSubnet + ".0/24"},
		Endpoints: []vxnetEndpoint{{Name: fmt.Sprintf("c%d", i), Netns: container, Ifname: "eth0", Addresses: []string{fmt.Sprintf("%s.%d/24", vxnetSubnet, i)}}},
		Remotes:   []vxnetRemote{{VTEP: fmt.Sprintf("%s.%d", vxnetUnderlay, peer), Addresses: []string{fmt.Sprintf("%s.%d", vxnetSubnet, peer)}, Vxnet: true}},
		// The vxnet-vip path: host 2's container behind a VIP.
		Services: []vxnetService{{Name: "bench", VIPs: []string{vxnetVIP}, Tasks: []string{vxnetSubnet + ".2"}}},
	}}}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(tb.dir, fmt.Sprintf("host%d.json", i))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return tb.start(fmt.Sprintf("vxnet dataplane host %d", i), tb.goArgv(host, tb.cfg.Binary, "dataplane", "--config", path, "--log-level", "warn")...)
}

// startRelay runs socat for host i (1 or 2) in its host namespace: it
// opens a TUN device, rly0, and copies packets between it and a UDP
// socket to the other host. The device is then moved into the container
// namespace as eth0, as the kernel's vxlan device is.
func (tb *testbed) startRelay(ctx context.Context, host, container string, i int) error {
	local, remote := fmt.Sprintf("%s.%d", relayUnderlay, i), fmt.Sprintf("%s.%d", relayUnderlay, 3-i)
	p, err := tb.start(fmt.Sprintf("socat relay host %d", i), "ip", "netns", "exec", host, "socat", "-b", "65536",
		"TUN,tun-name=rly0,tun-type=tun,iff-no-pi",
		fmt.Sprintf("UDP-DATAGRAM:%s:%s,bind=%s:%s", remote, relayPort, local, relayPort))
	if err != nil {
		return err
	}
	if err := poll(ctx, 10*time.Second, fmt.Sprintf("socat's TUN device in %s", host), func() (bool, error) {
		if p.done() {
			return false, p.failure()
		}
		_, err := run(ctx, "ip", "-n", host, "link", "show", "rly0")
		return err == nil, nil
	}); err != nil {
		return err
	}
	return intoContainer(ctx, host, container, "rly0", relaySubnet, i)
}
