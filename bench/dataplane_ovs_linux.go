package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Open vSwitch path: OVS's userspace datapath ("netdev", no kernel
// module) with its userspace VXLAN tunnelling, as OVS documents it for
// DPDK-less hosts. Each host namespace runs an ovsdb-server and an
// ovs-vswitchd of its own, in the foreground under the benchmark, with
// their database, sockets and logs in the run's directory: never the
// machine's own OVS. Per host:
//
//	br-phy (netdev)  the underlay veth u0; the host's underlay address moves
//	                 to br-phy, which OVS's tunnel code routes through
//	br-int (netdev)  the container's veth and a vxlan port to the other host
//
// OVS reads and writes the veths through packet sockets beside the
// kernel, so an nftables ingress rule drops what the host's own stack
// would otherwise also take (it answers VXLAN with "port unreachable"),
// after OVS has seen it. The containers' veths send complete checksums
// (tx offload off): the userspace datapath does not finish them.

const (
	ovsUnderlay = "198.18.203"
	ovsSubnet   = "10.200.4"
	ovsVNI      = 4244
)

// ovsTools are what the OVS path needs: Debian's openvswitch-switch and
// ethtool, and nft (nftables).
var ovsTools = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ethtool", "nft"}

// ovsWanted reports whether the OVS path runs, and says why not when a
// tool is missing.
func ovsWanted(cfg DataplaneConfig, progress io.Writer) bool {
	if cfg.NoOVS {
		return false
	}
	for _, t := range ovsTools {
		if _, err := exec.LookPath(t); err != nil {
			fmt.Fprintf(progress, "%s not found: the Open vSwitch path is left out (Debian: apt-get install openvswitch-switch ethtool nftables, or make deps)\n", t)
			return false
		}
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		fmt.Fprintf(progress, "OVS's schema %s not found: the Open vSwitch path is left out\n", ovsSchema)
		return false
	}
	return true
}

const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// startOVS makes host i (1 or 2) an OVS host: its container's veth, its
// daemons, its bridges and tunnel.
func (tb *testbed) startOVS(ctx context.Context, host, container string, i int) error {
	peer := 3 - i
	local, remote := fmt.Sprintf("%s.%d", ovsUnderlay, i), fmt.Sprintf("%s.%d", ovsUnderlay, peer)
	cport := fmt.Sprintf("c%dp", i)
	if err := runAll(ctx,
		[]string{"ip", "-n", host, "link", "add", cport, "mtu", fmt.Sprint(containerMTU), "type", "veth", "peer", "name", "eth0", "netns", container},
		[]string{"ip", "-n", container, "link", "set", "eth0", "mtu", fmt.Sprint(containerMTU)},
		[]string{"ip", "-n", container, "addr", "add", fmt.Sprintf("%s.%d/24", ovsSubnet, i), "dev", "eth0", "nodad"},
		[]string{"ip", "-n", container, "link", "set", "eth0", "up"},
		[]string{"ip", "netns", "exec", container, "ethtool", "-K", "eth0", "tx", "off"},
		[]string{"ip", "-n", host, "link", "set", cport, "up"},
		[]string{"ip", "-n", host, "addr", "del", local + "/24", "dev", "u0"},
	); err != nil {
		return err
	}
	nft := exec.CommandContext(ctx, "ip", "netns", "exec", host, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(fmt.Sprintf(`table netdev vxbench_ovs {
	chain u { type filter hook ingress device "u0" priority 0; policy drop; }
	chain c { type filter hook ingress device "%s" priority 0; policy drop; }
}
`, cport))
	if out, err := nft.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w\n%s", host, err, out)
	}
	dir := filepath.Join(tb.dir, "ovs-"+host)
	for _, d := range []string{"db", "run", "log", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	env := []string{"env", "OVS_RUNDIR=" + filepath.Join(dir, "run"), "OVS_DBDIR=" + filepath.Join(dir, "db"),
		"OVS_LOGDIR=" + filepath.Join(dir, "log"), "OVS_SYSCONFDIR=" + filepath.Join(dir, "etc")}
	db, sock := filepath.Join(dir, "db", "conf.db"), filepath.Join(dir, "run", "db.sock")
	if _, err := run(ctx, "ovsdb-tool", "create", db, ovsSchema); err != nil {
		return err
	}
	dbProc, err := tb.start(fmt.Sprintf("ovsdb-server host %d", i), append(env, "ip", "netns", "exec", host, "ovsdb-server", db,
		"--remote=punix:"+sock, "--unixctl="+filepath.Join(dir, "run", "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "log", "ovsdb-server.log"), "-vsyslog:off", "-vconsole:off", "--no-chdir")...)
	if err != nil {
		return err
	}
	if err := poll(ctx, 10*time.Second, "ovsdb-server's socket in "+host, func() (bool, error) {
		if dbProc.done() {
			return false, dbProc.failure()
		}
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil, nil
	}); err != nil {
		return err
	}
	vsctl := func(args ...string) []string {
		return append([]string{"ovs-vsctl", "--db=unix:" + sock, "--timeout=10"}, args...)
	}
	if _, err := run(ctx, vsctl("--no-wait", "--", "init", "--", "set", "Open_vSwitch", ".", "other_config:dpdk-init=false")...); err != nil {
		return err
	}
	ctl := filepath.Join(dir, "run", "ovs-vswitchd.ctl")
	sw, err := tb.start(fmt.Sprintf("ovs-vswitchd host %d", i), append(env, "ip", "netns", "exec", host, "ovs-vswitchd", "unix:"+sock,
		"--disable-system", "--unixctl="+ctl, "--log-file="+filepath.Join(dir, "log", "ovs-vswitchd.log"),
		"-vsyslog:off", "-vconsole:off", "--no-chdir")...)
	if err != nil {
		return err
	}
	// init returns once ovs-vswitchd has applied the configuration.
	if _, err := run(ctx, vsctl("--", "init")...); err != nil {
		if sw.done() {
			return errors.Join(err, sw.failure())
		}
		return err
	}
	mac, err := run(ctx, "ip", "netns", "exec", host, "cat", "/sys/class/net/u0/address")
	if err != nil {
		return err
	}
	peerMAC, err := run(ctx, "ip", "netns", "exec", tb.cfg.Prefix+"ho"+fmt.Sprint(peer), "cat", "/sys/class/net/u0/address")
	if err != nil {
		return err
	}
	if err := runAll(ctx,
		vsctl("--", "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev", "fail-mode=standalone",
			"other_config:hwaddr="+strings.TrimSpace(mac), "--", "add-port", "br-phy", "u0"),
		[]string{"ip", "-n", host, "addr", "add", local + "/24", "dev", "br-phy", "nodad"},
		[]string{"ip", "-n", host, "link", "set", "br-phy", "up"},
		vsctl("--", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail-mode=standalone",
			"--", "add-port", "br-int", cport, "--", "add-port", "br-int", "vxlan0", "--", "set", "Interface", "vxlan0", "type=vxlan",
			"options:remote_ip="+remote, fmt.Sprintf("options:key=%d", ovsVNI), "options:dst_port=4789"),
		// The tunnel's route and next hop, which OVS keeps apart from
		// the kernel's: without the neighbour entry the first packets
		// only trigger an ARP.
		[]string{"ovs-appctl", "-t", ctl, "ovs/route/add", remote + "/32", "br-phy"},
		[]string{"ovs-appctl", "-t", ctl, "tnl/neigh/set", "br-phy", remote, strings.TrimSpace(peerMAC)},
	); err != nil {
		return err
	}
	return nil
}
