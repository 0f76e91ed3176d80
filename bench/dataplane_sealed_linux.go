package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vxnet/vxnet/dataplane/seal"
)

// The encrypted paths. vxnet-encrypted is the vxnet path with its network
// encrypted (package seal: every datagram sealed, 28 bytes more on the
// wire, the containers' MTU that much lower); its keys are made for the
// run and its session keys are fresh each time. wireguard-go is the
// userspace WireGuard (built from the wireguard module's main package by
// make deps), configured with wg from wireguard-tools: each host namespace
// runs one, whose TUN device carries the other host's tunnel address; the
// tests run in the host namespaces over it, as WireGuard is run between
// hosts. Its MTU is WireGuard's default, 1420.

const (
	sealedUnderlay = "198.18.205"
	sealedSubnet   = "10.200.6"
	sealedVNI      = 4245
	wgUnderlay     = "198.18.206"
	wgSubnet       = "10.200.7"
	wgPort         = "51820"
	wgMTU          = "1420"
)

// sealedWanted reports whether the vxnet-encrypted path runs.
func sealedWanted(cfg DataplaneConfig) bool { return !cfg.NoEncrypted }

// wireguardWanted reports whether the wireguard-go path runs, and says
// why not when a tool is missing.
func wireguardWanted(cfg *DataplaneConfig, progress io.Writer) bool {
	if cfg.NoWireGuard {
		return false
	}
	if _, err := exec.LookPath("wg"); err != nil {
		fmt.Fprintln(progress, "wg not found: the wireguard-go path is left out (Debian: apt-get install wireguard-tools, or make deps)")
		return false
	}
	if cfg.WireGuard == "" {
		cfg.WireGuard = findWireGuard()
	}
	if cfg.WireGuard == "" {
		fmt.Fprintln(progress, "wireguard-go not found (in PATH as wireguard-go or wireguard, or in ~/go/bin): the wireguard-go path is left out (make deps builds it; --wireguard PATH names it)")
		return false
	}
	return true
}

// findWireGuard looks for the wireguard-go binary: in PATH, as
// wireguard-go or as wireguard (the name go install gives it), then in
// the Go tool's default bin directory.
func findWireGuard() string {
	for _, name := range []string{"wireguard-go", "wireguard"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, "go", "bin", "wireguard")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sealedKeys are the run's keys for the two vxnet-encrypted hosts: each
// host's key file paths and public keys.
type sealedKeys struct {
	hostFile, sessionFile [2]string
	hostPub, sessionPub   [2]string
}

func (tb *testbed) makeSealedKeys() error {
	k := &sealedKeys{}
	for i := 0; i < 2; i++ {
		for _, f := range []struct {
			file *string
			pub  *string
			name string
		}{
			{&k.hostFile[i], &k.hostPub[i], "host"},
			{&k.sessionFile[i], &k.sessionPub[i], "session"},
		} {
			p, err := seal.NewKeyPair()
			if err != nil {
				return err
			}
			*f.file = filepath.Join(tb.dir, fmt.Sprintf("sealed%d-%s.key", i+1, f.name))
			if err := seal.WriteKeyFile(*f.file, p); err != nil {
				return err
			}
			*f.pub = p.Public().String()
		}
	}
	tb.sealed = k
	return nil
}

type sealedStatic struct {
	vxnetStatic
	Encryption struct {
		HostKey    string `json:"hostKey"`
		SessionKey string `json:"sessionKey"`
	} `json:"encryption"`
	Peers []sealedPeer `json:"peers"`
}

type sealedPeer struct {
	VTEP       string `json:"vtep"`
	HostKey    string `json:"hostKey"`
	SessionKey string `json:"sessionKey"`
}

// startSealed runs `vxnet dataplane` for host i (1 or 2) of the
// vxnet-encrypted path.
func (tb *testbed) startSealed(ctx context.Context, host, container string, i int) (*bgProc, error) {
	if tb.sealed == nil {
		if err := tb.makeSealedKeys(); err != nil {
			return nil, err
		}
	}
	peer := 3 - i
	conf := sealedStatic{vxnetStatic: vxnetStatic{VTEP: fmt.Sprintf("%s.%d", sealedUnderlay, i), MTU: containerMTU, Networks: []vxnetNetwork{{
		VNI:       sealedVNI,
		Subnets:   []string{sealedSubnet + ".0/24"},
		Endpoints: []vxnetEndpoint{{Name: fmt.Sprintf("e%d", i), Netns: container, Ifname: "eth0", Addresses: []string{fmt.Sprintf("%s.%d/24", sealedSubnet, i)}}},
		Remotes:   []vxnetRemote{{VTEP: fmt.Sprintf("%s.%d", sealedUnderlay, peer), Addresses: []string{fmt.Sprintf("%s.%d", sealedSubnet, peer)}, Vxnet: true}},
		Encrypted: true,
	}}}}
	conf.Encryption.HostKey, conf.Encryption.SessionKey = tb.sealed.hostFile[i-1], tb.sealed.sessionFile[i-1]
	conf.Peers = []sealedPeer{{VTEP: fmt.Sprintf("%s.%d", sealedUnderlay, peer), HostKey: tb.sealed.hostPub[peer-1], SessionKey: tb.sealed.sessionPub[peer-1]}}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(tb.dir, fmt.Sprintf("sealed%d.json", i))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return tb.start(fmt.Sprintf("vxnet dataplane (encrypted) host %d", i), tb.goArgv(host, tb.cfg.Binary, "dataplane", "--config", path, "--log-level", "warn")...)
}

// goArgv runs a Go program in ns with the hosts' GOMAXPROCS.
func (tb *testbed) goArgv(ns string, argv ...string) []string {
	out := []string{"ip", "netns", "exec", ns}
	if n := tb.cfg.hostCPUs(); n > 0 {
		out = append(out, "env", fmt.Sprintf("GOMAXPROCS=%d", n))
	}
	return append(out, argv...)
}

// startWireGuard runs wireguard-go for host i (1 or 2) in its namespace
// and configures its tunnel to the other host.
func (tb *testbed) startWireGuard(ctx context.Context, host, _ string, i int) (*bgProc, error) {
	if tb.wgPub[0] == "" {
		for j := 0; j < 2; j++ {
			k, err := seal.NewKeyPair() // X25519, as WireGuard's keys are
			if err != nil {
				return nil, err
			}
			tb.wgKey[j] = filepath.Join(tb.dir, fmt.Sprintf("wg%d.key", j+1))
			if err := seal.WriteKeyFile(tb.wgKey[j], k); err != nil {
				return nil, err
			}
			tb.wgPub[j] = k.Public().String()
		}
	}
	peer := 3 - i
	dev := fmt.Sprintf("%sw%d", tb.cfg.Prefix, i) // names the UAPI socket too: unique per run
	p, err := tb.start(fmt.Sprintf("wireguard-go host %d", i), tb.goArgv(host, "env", "LOG_LEVEL=error", tb.cfg.WireGuard, "-f", dev)...)
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, 10*time.Second, "wireguard-go's device in "+host, func() (bool, error) {
		if p.done() {
			return false, p.failure()
		}
		_, err := os.Stat("/var/run/wireguard/" + dev + ".sock")
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	return p, runAll(ctx,
		[]string{"ip", "netns", "exec", host, "wg", "set", dev, "private-key", tb.wgKey[i-1], "listen-port", wgPort,
			"peer", tb.wgPub[peer-1], "endpoint", fmt.Sprintf("%s.%d:%s", wgUnderlay, peer, wgPort),
			"allowed-ips", fmt.Sprintf("%s.%d/32", wgSubnet, peer)},
		[]string{"ip", "-n", host, "addr", "add", fmt.Sprintf("%s.%d/24", wgSubnet, i), "dev", dev, "nodad"},
		[]string{"ip", "-n", host, "link", "set", dev, "mtu", wgMTU, "up"},
	)
}
