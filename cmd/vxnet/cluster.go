package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/join"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// defaultConfigDir holds the agent's config.json and its secrets.
func defaultConfigDir() string {
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "vxnet")
		}
	}
	return "/etc/vxnet"
}

const clusterInitUsage = `Usage: vxnet cluster init [--advertise-addr IP] [--config-dir DIR] [--no-start]
                         [--store etcd --etcd-endpoints URLS [--etcd-ca FILE ...]]

Sets this host up as the first member of a new cluster, and prints the
command that adds the others:

  vxnet cluster join --token TOKEN ADDR

It makes the cluster's gossip key (DIR/gossip.key, mode 0600: never on a
command line) and join certificate (DIR/join.pem, DIR/join-key.pem), writes
the agent's settings (DIR/config.json: the keys are vxnet agent's flag
names) and a first join token, then starts the agent as the vxnet systemd
service where it is installed, or says how to start it. The token is shown
once; the cluster keeps only its hash. Tokens are listed, made, rotated and
revoked with vxnet cluster token.

The tables live in the agents (gossip) unless --store etcd names an etcd
cluster to keep them in; hosts that join learn where. etcd's client
certificates are each host's own (--etcd-ca, --etcd-cert, --etcd-key,
here and on cluster join).

Examples:
  vxnet cluster init --advertise-addr 198.18.0.1
  vxnet cluster init --store etcd --etcd-endpoints https://10.0.0.1:2379 \
      --etcd-ca /etc/vxnet/etcd-ca.pem --etcd-cert /etc/vxnet/etcd.pem --etcd-key /etc/vxnet/etcd-key.pem

Flags:
`

const clusterJoinUsage = `Usage: vxnet cluster join --token TOKEN|--token-file FILE [--advertise-addr IP] [--config-dir DIR] [--no-start] ADDR

Adds this host to the cluster a member at ADDR (HOST or HOST:PORT, port 7947
by default: its join service) belongs to. The token (from vxnet cluster
init, or vxnet cluster token create on any member) is checked by that
member over TLS; the member must show the certificate the token names, so
the token cannot be played against an impostor. In return this host gets
the gossip keys, the members to join, the join certificate (it admits hosts
too) and where the tables are kept, writes them under DIR (config.json,
gossip.key, join.pem, join-key.pem; secrets mode 0600) and starts the
agent as the vxnet systemd service where it is installed, or says how to
start it. A revoked or expired token is refused. In a cluster that keeps
its tables in etcd, --etcd-ca, --etcd-cert and --etcd-key give this host's
own files for etcd's TLS.

--advertise-addr defaults to the address this host reaches ADDR from.

Example:
  vxnet cluster join --token vxn1-... 198.18.0.1

Flags:
`

const clusterTokenUsage = `Usage: vxnet cluster token ls [--format table|json]
       vxnet cluster token create [--ttl DURATION] [--quiet]
       vxnet cluster token rotate [--ttl DURATION] [--quiet]
       vxnet cluster token revoke ID...

Join tokens admit new hosts (vxnet cluster join --token). A token's secret
is shown once, when it is made; the cluster keeps its hash.

  ls       every token: ID, state (active, expired, revoked), when made and
           by which host, when it expires
  create   a new token, with the command a new host runs; --ttl makes it
           expire (default: never)
  rotate   a new token, and every active one revoked: a token that leaked
           lets no host in from now on (hosts already in stay)
  revoke   revoke tokens by ID

Run 'vxnet cluster token COMMAND --help' for the flags of one command.
`

const tokenLsUsage = `Usage: vxnet cluster token ls [--format table|json]

Every join token: its ID, state (active, expired, revoked), when it was
made and by which host, and when it expires. Secrets are never shown.

Flags:
`

const tokenCreateUsage = `Usage: vxnet cluster token create [--ttl DURATION] [--quiet]
       vxnet cluster token rotate [--ttl DURATION] [--quiet]

create makes a join token and prints it, once, with the command a new host
runs. rotate does the same and revokes every token active until then: one
that leaked lets no host in from now on (hosts already in stay).

Flags:
`

const tokenRevokeUsage = `Usage: vxnet cluster token revoke ID...

Revokes join tokens by ID (vxnet cluster token ls lists them): they admit
no host from now on. Hosts that joined with them stay.
`

// cmdClusterInit is vxnet cluster init.
func cmdClusterInit(std stdio, args []string) int {
	fs := newFlags(std, "cluster init", clusterInitUsage)
	advertise := fs.String("advertise-addr", "", "this host's underlay `IP` (default: the address of the interface holding the default route)")
	dir := fs.String("config-dir", defaultConfigDir(), "`DIR` for config.json and the cluster's secrets")
	gossipPort := fs.Int("gossip-port", config.DefaultGossipPort, "gossip `PORT` (TCP and UDP) of every host")
	joinPort := fs.Int("join-port", join.DefaultPort, "the join service's TCP `PORT`")
	ttl := fs.Duration("ttl", 0, "the first token expires after `DURATION` (default: never; revoke it with vxnet cluster token)")
	noStart := fs.Bool("no-start", false, "write the settings only; start the agent yourself")
	force := fs.Bool("force", false, "overwrite an existing DIR/config.json: start a new cluster on a host set up before (its old state is set aside)")
	store := fs.String("store", config.StoreGossip, "where the cluster keeps its tables, `STORE`: gossip (in the agents) or etcd (--etcd-endpoints); hosts that join learn it")
	etcdEndpoints := fs.String("etcd-endpoints", "", "etcd's client `URLS`, comma-separated (with --store etcd); hosts that join learn them")
	etcdPrefix := fs.String("etcd-prefix", "", "the key `PATH` the tables live under in etcd (default /vxnet)")
	etcdTLS := etcdTLSFlags(fs)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet cluster init: unexpected argument %q\n", pos[0])
		return 2
	}
	sc := config.Config{Store: *store, EtcdPrefix: *etcdPrefix}
	if *etcdEndpoints != "" {
		sc.EtcdEndpoints = strings.Split(*etcdEndpoints, ",")
	}
	if !etcdTLS.apply(std, "cluster init", &sc) {
		return 2
	}
	if *ttl != 0 && *ttl < time.Minute {
		fmt.Fprintf(std.stderr, "vxnet cluster init: --ttl %v: want at least 1m, or 0 for a token that never expires\n", *ttl)
		return 2
	}
	for _, p := range []struct {
		flag string
		port int
	}{{"gossip-port", *gossipPort}, {"join-port", *joinPort}} {
		if p.port < 1 || p.port > 65535 {
			fmt.Fprintf(std.stderr, "vxnet cluster init: --%s %d: want 1-65535\n", p.flag, p.port)
			return 2
		}
	}
	var ce *config.Error
	if err := config.CheckPorts(*gossipPort, config.DefaultVXLANPort, *joinPort, true); errors.As(err, &ce) {
		fmt.Fprintf(std.stderr, "vxnet cluster init: --%s %s: %s\n", ce.Field, ce.Value, ce.Reason)
		return 2
	}
	paths := newSetupPaths(*dir)
	if err := paths.checkFree(*force); err != nil {
		return fail(std, "cluster init", err)
	}
	// Over old settings, those a new cluster does not decide are kept.
	var old map[string]any
	if *force {
		old = readSettings(paths.config)
	}
	// The address before any directory is made: a failure leaves none.
	addr, err := chooseAdvertise(*advertise, "")
	if err != nil {
		return fail(std, "cluster init", err)
	}
	warnNotLocal(std, "cluster init", addr)
	var asideFrom, asideTo string
	if *force {
		// A new cluster starts from no state: the old one's tables,
		// tokens and members must not come with it.
		if asideFrom, asideTo, err = setStateAside(old, time.Now()); err != nil {
			return fail(std, "cluster init", err)
		}
	}
	if err := paths.prepare(*force); err != nil {
		return fail(std, "cluster init", err)
	}
	key, err := newGossipKey()
	if err != nil {
		return fail(std, "cluster init", err)
	}
	certPEM, keyPEM, err := join.NewCertificate()
	if err != nil {
		return fail(std, "cluster init", err)
	}
	_, pin, err := join.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		return fail(std, "cluster init", err)
	}
	tok, err := join.NewToken(pin)
	if err != nil {
		return fail(std, "cluster init", err)
	}
	name, _ := os.Hostname()
	now := time.Now().UTC()
	row := tables.Token{ID: tok.ID, Pin: pin, Hash: join.HashSecret(tok.Secret), Creator: name, Created: now}
	if *ttl > 0 {
		row.Expires = now.Add(*ttl)
	}
	seed, _ := json.Marshal([]json.RawMessage{row.Encode()})
	settings := map[string]any{
		"advertise-addr":  addr.String(),
		"gossip-key-file": paths.gossipKey,
		"join-cert":       paths.cert,
		"join-key":        paths.key,
		"join-token-seed": paths.seed,
	}
	if *gossipPort != config.DefaultGossipPort {
		settings["gossip-port"] = *gossipPort
	}
	if *joinPort != join.DefaultPort {
		settings["join-port"] = *joinPort
	}
	storeSettings(settings, sc)
	kept := keepOwnSettings(settings, old)
	if err := paths.write([]string{key}, certPEM, keyPEM, seed, settings); err != nil {
		return fail(std, "cluster init", err)
	}
	joinAddr := net.JoinHostPort(addr.String(), strconv.Itoa(*joinPort))
	fmt.Fprintf(std.stdout, "A new vxnet cluster: this host (%s) is its first member.\n", addr)
	paths.report(std)
	if sc.Store == config.StoreEtcd {
		fmt.Fprintf(std.stdout, "  tables:            in etcd (%s), under %s\n", strings.Join(sc.EtcdEndpoints, ","), kvs.EtcdPrefix(sc.EtcdPrefix))
	}
	if len(kept) > 0 {
		fmt.Fprintf(std.stdout, "Kept from the old %s: %s.\n", paths.config, strings.Join(kept, ", "))
	}
	if asideFrom != "" {
		fmt.Fprintf(std.stdout, "The old cluster's state (this host's endpoints, the tables, the members) is set aside: %s is now %s\n", asideFrom, asideTo)
	}
	startAgent(std, paths.config, *noStart)
	fmt.Fprintf(std.stdout, "\nTo add a host, run on it (the token works until revoked: vxnet cluster token --help):\n\n  vxnet cluster join --token %s %s\n", tok, joinAddr)
	return 0
}

// cmdClusterJoin is vxnet cluster join.
func cmdClusterJoin(std stdio, args []string) int {
	fs := newFlags(std, "cluster join", clusterJoinUsage)
	token := fs.String("token", "", "the join `TOKEN` (vxn1-...); a command line shows in ps: --token-file or VXNET_JOIN_TOKEN keep it out")
	tokenFile := fs.String("token-file", "", "read the join token from the first line of `FILE`")
	advertise := fs.String("advertise-addr", "", "this host's underlay `IP` (default: the address it reaches ADDR from)")
	dir := fs.String("config-dir", defaultConfigDir(), "`DIR` for config.json and the cluster's secrets")
	name := fs.String("name", "", "this host's `NAME` in the cluster (default: the hostname)")
	noStart := fs.Bool("no-start", false, "write the settings only; start the agent yourself")
	force := fs.Bool("force", false, "overwrite an existing DIR/config.json")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on ADDR after `DURATION`")
	etcdTLS := etcdTLSFlags(fs)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(std.stderr, "vxnet cluster join: --token-file: %v\n", err)
			return 2
		}
		first, _, _ := strings.Cut(string(b), "\n")
		*token = strings.TrimSpace(first)
	}
	if *token == "" {
		*token = os.Getenv("VXNET_JOIN_TOKEN")
	}
	if len(pos) != 1 || *token == "" {
		fmt.Fprint(std.stderr, "vxnet cluster join: want a token (--token, --token-file or VXNET_JOIN_TOKEN) and one ADDR (a member's HOST or HOST:PORT)\n")
		return 2
	}
	tok, err := join.ParseToken(*token)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet cluster join: --token: %v\n", err)
		return 2
	}
	// Over old settings (--force: a host that missed a gossip key
	// rotation joins again), what the cluster does not decide is kept,
	// the name too unless --name gives another.
	paths := newSetupPaths(*dir)
	var old map[string]any
	if *force {
		old = readSettings(paths.config)
		if n, ok := old["name"].(string); ok && !flagSet(fs, "name") {
			*name = n
		}
	}
	// The name first: a refused one would leave the token used.
	hostName := *name
	if hostName == "" {
		hostName, _ = os.Hostname()
	}
	if err := config.CheckName(hostName); err != nil {
		fmt.Fprintf(std.stderr, "vxnet cluster join: %v\n", err)
		return 2
	}
	member := pos[0]
	if _, _, err := net.SplitHostPort(member); err != nil {
		member = net.JoinHostPort(member, strconv.Itoa(join.DefaultPort))
	}
	if err := paths.checkFree(*force); err != nil {
		return fail(std, "cluster join", err)
	}
	addr, err := chooseAdvertise(*advertise, member)
	if err != nil {
		return fail(std, "cluster join", err)
	}
	warnNotLocal(std, "cluster join", addr)
	c, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := join.Ask(c, member, tok, join.Request{Name: hostName, AdvertiseAddr: addr.String()})
	if err != nil {
		// Not through fail: a timeout here is the member's, not this
		// host's agent's.
		fmt.Fprintf(std.stderr, "vxnet cluster join: %v%s\n", err, joinHint(err, member, *timeout))
		return 1
	}
	sc := config.Config{Store: resp.Store}
	if resp.Store == config.StoreEtcd {
		sc.EtcdEndpoints, sc.EtcdPrefix = resp.EtcdEndpoints, resp.EtcdPrefix
	}
	if etcdTLS.given() {
		if resp.Store != config.StoreEtcd {
			return fail(std, "cluster join", fmt.Errorf("--etcd-ca, --etcd-cert and --etcd-key are for a cluster that keeps its tables in etcd; %s's keeps them in gossip", member))
		}
		if !etcdTLS.apply(std, "cluster join", &sc) {
			return 2
		}
	}
	// The directory once admitted: a failed join leaves none.
	if err := paths.prepare(*force); err != nil {
		return fail(std, "cluster join", err)
	}
	settings := map[string]any{
		"advertise-addr":  addr.String(),
		"gossip-key-file": paths.gossipKey,
		"join-cert":       paths.cert,
		"join-key":        paths.key,
	}
	if *name != "" {
		settings["name"] = *name
	}
	// This host gossips on the port the members use (its own, where it
	// was a member already).
	var seeds []string
	gossipPort, ownPort := 0, 0
	for _, s := range resp.Seeds {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		if h == addr.String() {
			ownPort = port
			continue
		}
		seeds = append(seeds, s)
		if gossipPort == 0 {
			gossipPort = port
		}
	}
	if len(seeds) == 0 {
		return fail(std, "cluster join", fmt.Errorf("%s named no other member to join", member))
	}
	if ownPort != 0 {
		gossipPort = ownPort
	}
	settings["join"] = seeds
	if gossipPort != config.DefaultGossipPort {
		settings["gossip-port"] = gossipPort
	}
	if resp.JoinPort != 0 && resp.JoinPort != join.DefaultPort {
		settings["join-port"] = resp.JoinPort
	}
	storeSettings(settings, sc)
	kept := keepOwnSettings(settings, old)
	if err := paths.write(resp.GossipKeys, []byte(resp.Cert), []byte(resp.Key), nil, settings); err != nil {
		return fail(std, "cluster join", err)
	}
	if len(kept) > 0 {
		fmt.Fprintf(std.stdout, "Kept from the old %s: %s.\n", paths.config, strings.Join(kept, ", "))
	}
	fmt.Fprintf(std.stdout, "Admitted to the cluster by %s: this host (%s) joins %s.\n", member, addr, strings.Join(seeds, ", "))
	if resp.Store == config.StoreEtcd {
		fmt.Fprintf(std.stdout, "The tables are in etcd (%s): if etcd wants TLS, add etcd-ca, etcd-cert and etcd-key to %s.\n", strings.Join(resp.EtcdEndpoints, ","), paths.config)
	}
	paths.report(std)
	startAgent(std, paths.config, *noStart)
	return 0
}

// warnNotLocal warns when addr, the address other hosts will use for
// this one, is none of this host's (a typo, or an address behind NAT that
// the agent cannot bind).
func warnNotLocal(std stdio, cmd string, addr netip.Addr) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == addr {
			return
		}
	}
	fmt.Fprintf(std.stderr, "vxnet %s: warning: --advertise-addr %s is not an address of this host: the agent listens for gossip and VXLAN there and will fail to start unless it is\n", cmd, addr)
}

// joinHint says what a failed join's low-level error likely means.
func joinHint(err error, member string, timeout time.Duration) string {
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &rec):
		return fmt.Sprintf(" (%s does not speak TLS: is it the member's join port, %d unless cluster init was given --join-port, and not its gossip port?)", member, join.DefaultPort)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf(" (nothing listens at %s: use the address and port cluster init printed, and check that the member's agent runs)", member)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf(" (this host has no way to %s: check the address cluster init printed, and this host's routes to the member's network)", member)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf(" (no answer from %s within %v (--timeout): is the member up, and its join port open to this host?)", member, timeout)
	}
	return ""
}

// chooseAdvertise is the address given, or the one this host reaches
// toward from (or, with none, the default route's).
func chooseAdvertise(given, toward string) (netip.Addr, error) {
	if given != "" {
		a, err := netip.ParseAddr(given)
		if err != nil || a.IsUnspecified() || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("--advertise-addr %q: want this host's underlay IP address, e.g. 198.18.0.1", given)
		}
		return a.Unmap(), nil
	}
	target := toward
	if target == "" {
		target = "192.0.2.1:9" // TEST-NET-1: a UDP "connection" sends nothing
	}
	c, err := net.Dial("udp", target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s to take this host's address from: give --advertise-addr", target)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil || ap.Addr().IsLoopback() && toward == "" {
		return netip.Addr{}, errors.New("this host's underlay address is unclear: give --advertise-addr")
	}
	return ap.Addr().Unmap(), nil
}

// setupPaths are the files init and join write.
type setupPaths struct {
	dir, config, gossipKey, cert, key, seed string
}

func newSetupPaths(dir string) setupPaths {
	return setupPaths{dir: dir, config: filepath.Join(dir, "config.json"), gossipKey: filepath.Join(dir, "gossip.key"),
		cert: filepath.Join(dir, "join.pem"), key: filepath.Join(dir, "join-key.pem"), seed: filepath.Join(dir, "join-token-seed.json")}
}

// prepare makes the directory and refuses to overwrite a set-up host.
func (p setupPaths) prepare(force bool) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("--config-dir %s: %w", p.dir, err)
	}
	if err := config.RestrictDir(p.dir); err != nil {
		return fmt.Errorf("--config-dir %s: %w", p.dir, err)
	}
	return p.checkFree(force)
}

// checkFree refuses settings already there, unless force.
func (p setupPaths) checkFree(force bool) error {
	if _, err := os.Stat(p.config); err == nil && !force {
		return fmt.Errorf("%s exists: this host is set up already (remove it, or --force to replace it)", p.config)
	}
	return nil
}

// write puts the secrets down first (0600), the settings last: a
// config.json always names files that are there.
func (p setupPaths) write(keys []string, certPEM, keyPEM, seed []byte, settings map[string]any) error {
	if err := config.WriteGossipKeys(p.gossipKey, keys); err != nil {
		return fmt.Errorf("gossip key %s: %w", p.gossipKey, err)
	}
	if err := config.WriteSecretFile(p.key, keyPEM); err != nil {
		return fmt.Errorf("join key %s: %w", p.key, err)
	}
	if err := config.WriteSecretFile(p.cert, certPEM); err != nil {
		return fmt.Errorf("join certificate %s: %w", p.cert, err)
	}
	if seed != nil {
		if err := config.WriteSecretFile(p.seed, seed); err != nil {
			return fmt.Errorf("join token seed %s: %w", p.seed, err)
		}
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := config.WriteSecretFile(p.config, append(b, '\n')); err != nil {
		return fmt.Errorf("settings %s: %w", p.config, err)
	}
	return nil
}

func (p setupPaths) report(std stdio) {
	fmt.Fprintf(std.stdout, "  settings:          %s\n  gossip key:        %s (mode 0600)\n  join certificate:  %s, %s\n", p.config, p.gossipKey, p.cert, p.key)
}

// unitConfig is the settings file the vxnet unit runs the agent with.
const unitConfig = "/etc/vxnet/config.json"

// startAgent starts the vxnet systemd service where it is installed and
// runs the agent from configPath, or says how to start the agent.
func startAgent(std stdio, configPath string, noStart bool) {
	manual := "vxnet agent --config " + configPath
	switch {
	case noStart:
		fmt.Fprintf(std.stdout, "Start the agent: %s\n", manual)
		return
	case !systemdUnitInstalled():
		fmt.Fprintf(std.stdout, "The vxnet service is not installed here (vxnet install does it): start the agent with\n\n  %s\n", manual)
		return
	case configPath != unitConfig:
		fmt.Fprintf(std.stdout, "The vxnet service runs the agent from %s, not %s: start the agent with\n\n  %s\n", unitConfig, configPath, manual)
		return
	}
	// restart: an agent running already (a host joining again) takes the
	// new settings.
	for _, verb := range []string{"enable", "restart"} {
		if out, err := exec.Command("systemctl", verb, "vxnet.service").CombinedOutput(); err != nil {
			fmt.Fprintf(std.stdout, "systemctl %s vxnet.service failed (%v): %s\nStart the agent with: %s\n", verb, err, strings.TrimSpace(string(out)), manual)
			return
		}
	}
	// Type=exec: systemctl returns once the agent runs; a bad setting
	// stops it a moment later. It must stay up for a few seconds.
	for i := 0; i < 6; i++ {
		if exec.Command("systemctl", "is-active", "--quiet", "vxnet.service").Run() != nil {
			fmt.Fprintf(std.stdout, "The vxnet service did not stay up: see journalctl -u vxnet\n")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintln(std.stdout, "Started the agent: the vxnet service (journalctl -u vxnet for its log).")
}

// systemdUnitInstalled tells whether systemd runs this host and knows the
// vxnet unit.
func systemdUnitInstalled() bool {
	return systemdRunning() && exec.Command("systemctl", "cat", "vxnet.service").Run() == nil
}

// newGossipKey is 32 random bytes, base64.
func newGossipKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// cmdClusterToken is vxnet cluster token.
func cmdClusterToken(std stdio, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(usageOut(std), clusterTokenUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "ls", "list":
		return cmdTokenList(std, args[1:])
	case "create", "rotate":
		return cmdTokenCreate(std, args[0], args[1:])
	case "revoke", "rm":
		return cmdTokenRevoke(std, args[1:])
	}
	fmt.Fprintf(std.stderr, "vxnet cluster token: unknown command %q\n\n%s", args[0], clusterTokenUsage)
	return 2
}

func cmdTokenList(std stdio, args []string) int {
	fs := newFlags(std, "cluster token ls", tokenLsUsage)
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(std, "cluster token ls", pos) {
		return 2
	}
	if !checkFormat(std, "cluster token ls", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	ts, err := client().JoinTokens(c)
	if err != nil {
		return fail(std, "cluster token ls", err)
	}
	if *format == "json" {
		return printJSON(std, ts)
	}
	tw := tabwriter.NewWriter(std.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tCREATED\tBY\tEXPIRES\t")
	for _, t := range ts {
		expires := "never"
		if !t.Expires.IsZero() {
			expires = t.Expires.UTC().Format(time.RFC3339)
		}
		state := t.State
		if t.State == "revoked" {
			state += " " + t.Revoked.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", t.ID, state, t.Created.UTC().Format(time.RFC3339), t.Creator, expires)
	}
	tw.Flush()
	return 0
}

func cmdTokenCreate(std stdio, verb string, args []string) int {
	fs := newFlags(std, "cluster token "+verb, tokenCreateUsage)
	ttl := fs.String("ttl", "", "the token expires after `DURATION`, e.g. 24h (default: never)")
	quiet := fs.Bool("quiet", false, "print the token alone")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet cluster token %s: unexpected argument %q\n", verb, pos[0])
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	t, err := client().CreateJoinToken(c, api.JoinTokenCreate{TTL: *ttl, Rotate: verb == "rotate"})
	if err != nil {
		return fail(std, "cluster token "+verb, err)
	}
	if *quiet {
		fmt.Fprintln(std.stdout, t.Token)
		return 0
	}
	fmt.Fprintf(std.stdout, "token %s made", t.ID)
	if !t.Expires.IsZero() {
		fmt.Fprintf(std.stdout, ", expires %s", t.Expires.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(std.stdout, " (its secret is shown this once):")
	fmt.Fprintf(std.stdout, "\n  %s\n", t.Join)
	if len(t.RevokedIDs) > 0 {
		fmt.Fprintf(std.stdout, "\nrevoked: %s\n", strings.Join(t.RevokedIDs, ", "))
	}
	return 0
}

func cmdTokenRevoke(std stdio, args []string) int {
	fs := newFlags(std, "cluster token revoke", tokenRevokeUsage)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(std.stderr, "vxnet cluster token revoke: want the ID of a token (vxnet cluster token ls)")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	for _, id := range pos {
		t, err := client().RevokeJoinToken(c, id)
		if err != nil {
			return fail(std, "cluster token revoke", err)
		}
		fmt.Fprintf(std.stdout, "%s revoked %s\n", t.ID, t.Revoked.UTC().Format(time.RFC3339))
	}
	return 0
}

// joinSettings are the settings cluster join decides from the cluster's
// answer; over old settings, any of them the answer leaves out is dropped.
var joinSettings = map[string]bool{
	"advertise-addr": true, "gossip-key-file": true, "join-cert": true, "join-key": true,
	"join": true, "gossip-port": true, "join-port": true,
	"store": true, "etcd-endpoints": true, "etcd-prefix": true,
}

// keepOwnSettings adds to settings those of old that cluster join does
// not decide (name, etcd-ca, metrics-addr, ...), and returns their names.
func keepOwnSettings(settings, old map[string]any) []string {
	var kept []string
	for k, v := range old {
		if _, set := settings[k]; set || joinSettings[k] {
			continue
		}
		settings[k] = v
		kept = append(kept, k)
	}
	sort.Strings(kept)
	return kept
}

// etcdClientFlags are etcd's client TLS files, a host's own: init and
// join write them to the settings as given, made absolute.
type etcdClientFlags struct{ ca, cert, key *string }

func etcdTLSFlags(fs *flag.FlagSet) etcdClientFlags {
	return etcdClientFlags{
		ca:   fs.String("etcd-ca", "", "PEM `FILE` of the CA that signed etcd's certificates (with --store etcd)"),
		cert: fs.String("etcd-cert", "", "PEM `FILE` of this host's client certificate for etcd (with --etcd-key)"),
		key:  fs.String("etcd-key", "", "PEM `FILE` of the client certificate's key"),
	}
}

func (f etcdClientFlags) given() bool { return *f.ca != "" || *f.cert != "" || *f.key != "" }

// apply puts the files in c, checks c's store settings whole, and says
// what is wrong (naming the flag) when they do not hold.
func (f etcdClientFlags) apply(std stdio, cmd string, c *config.Config) bool {
	for _, p := range []struct{ to, from *string }{{&c.EtcdCA, f.ca}, {&c.EtcdCert, f.cert}, {&c.EtcdKey, f.key}} {
		*p.to = *p.from
		if *p.from != "" {
			if abs, err := filepath.Abs(*p.from); err == nil {
				*p.to = abs
			}
		}
	}
	var ce *config.Error
	if err := c.CheckStore(); errors.As(err, &ce) {
		v := ce.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(std.stderr, "vxnet %s: --%s %s: %s\n", cmd, ce.Field, v, ce.Reason)
		return false
	} else if err != nil {
		fmt.Fprintf(std.stderr, "vxnet %s: %v\n", cmd, err)
		return false
	}
	return true
}

// storeSettings writes c's store settings (none for gossip, the default).
func storeSettings(settings map[string]any, c config.Config) {
	if c.Store != config.StoreEtcd {
		return
	}
	settings["store"], settings["etcd-endpoints"] = c.Store, c.EtcdEndpoints
	for k, v := range map[string]string{"etcd-prefix": c.EtcdPrefix, "etcd-ca": c.EtcdCA, "etcd-cert": c.EtcdCert, "etcd-key": c.EtcdKey} {
		if v != "" {
			settings[k] = v
		}
	}
}

// setStateAside moves the data dir the old settings name (the default
// where they name none) to DIR.before-init-TIME, and returns both paths
// (none when there is nothing in it). It refuses while an agent answers
// on the old settings' API socket: it would write the old state back.
func setStateAside(old map[string]any, now time.Time) (from, to string, err error) {
	dir, sock := config.DefaultDataDir, api.DefaultSocket
	if d, ok := old["data-dir"].(string); ok && d != "" {
		dir = d
	}
	if s, ok := old["api-socket"].(string); ok && s != "" {
		sock = s
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0 {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("data-dir %s: %w", dir, err)
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return "", "", fmt.Errorf("an agent runs here (it answers on %s) with the old cluster's state in %s: stop it first (systemctl stop vxnet), then run cluster init --force again; the new cluster starts without that state, which is set aside", sock, dir)
	}
	to = strings.TrimRight(dir, string(filepath.Separator)) + ".before-init-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(dir, to); err != nil {
		return "", "", fmt.Errorf("setting the old cluster's state aside: %w", err)
	}
	return dir, to, nil
}

// readSettings reads a config.json as it stands; nothing when there is
// none or it does not parse (it is replaced then).
func readSettings(path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}
