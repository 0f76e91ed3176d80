package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(stdio{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestRun_usageAndErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"vtep": "198.18.0.1", "networks": [{"vni": 0}]}`), 0o600)
	for name, tc := range map[string]struct {
		args     []string
		code     int
		out, err string
	}{
		"no args":           {nil, 2, "", "Commands:"},
		"run no command":    {[]string{"run", "--network", "n", "--name", "x", "--", "/nonexistent/cmd"}, 127, "", "/nonexistent/cmd: command not found"},
		"lab bad profile":   {[]string{"lab", "up", "--id", "vxt99", "--profile", "slow"}, 2, "", `profile "slow": want lan or fast`},
		"lab bad store":     {[]string{"lab", "up", "--id", "vxt99", "--store", "consul"}, 2, "", `store "consul": want gossip or etcd`},
		"lab demo subnet":   {[]string{"lab", "demo", "--id", "vxt99", "--subnet", "10.0.9.1/24"}, 2, "", `--subnet "10.0.9.1/24"`},
		"help":              {[]string{"help"}, 0, "dataplane", ""},
		"help help":         {[]string{"help", "--help"}, 0, "dataplane", ""},
		"help twice":        {[]string{"--help", "--help"}, 0, "dataplane", ""},
		"unknown":           {[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		"version":           {[]string{"version"}, 0, "vxnet dev", ""},
		"dataplane help":    {[]string{"dataplane", "--help"}, 0, `"vtep": "198.18.0.1"`, ""},
		"help dataplane":    {[]string{"help", "dataplane"}, 0, "--config FILE", ""},
		"no config":         {[]string{"dataplane"}, 2, "", "--config FILE is required"},
		"missing file":      {[]string{"dataplane", "--config", filepath.Join(dir, "none.json")}, 1, "", "none.json"},
		"bad config":        {[]string{"dataplane", "--config", bad}, 1, "", `networks[0].vni: "0"`},
		"bad level":         {[]string{"dataplane", "--config", bad, "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		"stray arg":         {[]string{"dataplane", "--config", bad, "extra"}, 2, "", `unexpected argument "extra"`},
		"stats no socket":   {[]string{"dataplane", "stats"}, 2, "", "--stats-socket PATH is required"},
		"stats bad format":  {[]string{"dataplane", "stats", "--stats-socket", "x", "--format", "xml"}, 2, "", `--format "xml"`},
		"stats not running": {[]string{"dataplane", "stats", "--stats-socket", filepath.Join(dir, "none.sock")}, 1, "", "is 'vxnet dataplane --stats-socket"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestRun_agentAndClientErrors(t *testing.T) {
	dir := t.TempDir()
	twiceCfg := filepath.Join(dir, "twice.json")
	os.WriteFile(twiceCfg, []byte(`{"name": "h1", "advertise-addr": "127.0.0.1", "name": "h2"}`), 0o600)
	cfg := filepath.Join(dir, "agent.json")
	os.WriteFile(cfg, []byte(`{"advertise-addr": "198.18.0.1", "frobs": 1}`), 0o600)
	badAddr := filepath.Join(dir, "bad.json")
	os.WriteFile(badAddr, []byte(`{"advertise-addr": "not-an-ip", "data-dir": "`+dir+`"}`), 0o600)
	openKey := filepath.Join(dir, "open.key")
	os.WriteFile(openKey, []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o644)
	os.Chmod(openKey, 0o644)
	secretCfg := filepath.Join(dir, "secret.json")
	os.WriteFile(secretCfg, []byte(`{"advertise-addr": "127.0.0.1", "gossip-key": "MDEyMzQ1Njc4OWFiY2RlZg=="}`), 0o644)
	os.Chmod(secretCfg, 0o644)
	keyFileCfg := filepath.Join(dir, "keyfile.json")
	os.WriteFile(keyFileCfg, []byte(`{"advertise-addr": "127.0.0.1", "gossip-key-file": "`+openKey+`"}`), 0o644)
	sock := filepath.Join(dir, "none.sock")
	for name, tc := range map[string]struct {
		args     []string
		code     int
		out, err string
	}{
		"agent help":          {[]string{"agent", "--help"}, 0, "--advertise-addr", ""},
		"agent no addr":       {[]string{"agent"}, 2, "", "--advertise-addr IP is required"},
		"agent bad addr":      {[]string{"agent", "--advertise-addr", "x", "--data-dir", dir}, 2, "", `advertise-addr "x"`},
		"agent bad profile":   {[]string{"agent", "--advertise-addr", "127.0.0.1", "--profile", "slow", "--data-dir", dir}, 2, "", `profile "slow"`},
		"agent bad key":       {[]string{"agent", "--advertise-addr", "127.0.0.1", "--gossip-key", "abc", "--data-dir", dir}, 2, "", "gossip-key"},
		"agent key file help": {[]string{"agent", "--help"}, 0, "prefer --gossip-key-file", ""},
		"cni unknown":         {[]string{"cni", "foo"}, 2, "", `vxnet cni: unknown command "foo"`},
		"rotate-keys stray":   {[]string{"cluster", "rotate-keys", "extra"}, 2, "", `cluster rotate-keys: unexpected argument "extra"`},
		"rotate-keys help":    {[]string{"cluster", "rotate-keys", "--help"}, 0, "One rotation at a time", ""},
		"leave help":          {[]string{"cluster", "leave", "--help"}, 0, "is not a leave", ""},
		"leave stray":         {[]string{"cluster", "leave", "now"}, 2, "", `cluster leave: unexpected argument "now"`},
		"forget help":         {[]string{"cluster", "forget", "--help"}, 0, "will not come back", ""},
		"forget no host":      {[]string{"cluster", "forget"}, 2, "", "want one HOST"},
		"forget two hosts":    {[]string{"cluster", "forget", "h2", "h3"}, 2, "", "want one HOST"},
		"store stray":         {[]string{"cluster", "store", "x"}, 2, "", `cluster store: unexpected argument "x"`},
		"service ls stray":    {[]string{"service", "ls", "extra"}, 2, "", `service ls: unexpected argument "extra"`},
		"network ls stray":    {[]string{"network", "ls", "x"}, 2, "", `network ls: unexpected argument "x"`},
		"token revoke help":   {[]string{"cluster", "token", "revoke", "--help"}, 0, "Revokes join tokens by ID", ""},
		"token create help":   {[]string{"cluster", "token", "create", "--help"}, 0, "-ttl DURATION", ""},
		"members help":        {[]string{"cluster", "members", "--help"}, 0, "as this agent sees them", ""},
		"init join=gossip":    {[]string{"cluster", "init", "--config-dir", filepath.Join(dir, "init1"), "--join-port", "7946"}, 2, "", "--join-port 7946: gossip listens on TCP 7946 too"},
		"init bad port":       {[]string{"cluster", "init", "--config-dir", filepath.Join(dir, "init1"), "--gossip-port", "0"}, 2, "", "--gossip-port 0: want 1-65535"},
		"agent open key file": {[]string{"agent", "--advertise-addr", "127.0.0.1", "--gossip-key-file", openKey, "--data-dir", dir}, 2, "",
			`gossip-key-file "` + openKey + `": mode 0644 lets its group or others read it`},
		"config open secret":       {[]string{"agent", "--config", secretCfg}, 2, "", "holds gossip-key, but agent: config \"" + secretCfg + "\": mode 0644 lets its group or others read it"},
		"config key file":          {[]string{"agent", "--config", keyFileCfg, "--data-dir", dir}, 2, "", `gossip-key-file "` + openKey + `"`},
		"agent bad join":           {[]string{"agent", "--advertise-addr", "127.0.0.1", "--join", "h1", "--data-dir", dir}, 2, "", `join "h1"`},
		"agent bad name":           {[]string{"agent", "--advertise-addr", "127.0.0.1", "--name", "a/b", "--data-dir", dir}, 2, "", `name "a/b": has '/'; want 1-253`},
		"agent rx-queues":          {[]string{"agent", "--advertise-addr", "127.0.0.1", "--rx-queues", "100000", "--data-dir", dir}, 2, "", `rx-queues "100000": want 1-64`},
		"config twice":             {[]string{"agent", "--config", twiceCfg}, 2, "", `setting "name" is given twice`},
		"agent bad upstream":       {[]string{"agent", "--advertise-addr", "127.0.0.1", "--dns-upstream", "x"}, 2, "", `--dns-upstream "x"`},
		"agent bad log":            {[]string{"agent", "--advertise-addr", "127.0.0.1", "--log-format", "xml"}, 2, "", `--log-format "xml"`},
		"agent bad scope":          {[]string{"agent", "--advertise-addr", "127.0.0.1", "--docker-scope", "swarm"}, 2, "", `--docker-scope "swarm"`},
		"agent swarm gossip":       {[]string{"agent", "--advertise-addr", "127.0.0.1", "--docker-scope", "global"}, 2, "", "--gossip-port"},
		"config unknown key":       {[]string{"agent", "--config", cfg}, 2, "", `unknown setting "frobs"`},
		"config bad value":         {[]string{"agent", "--config", badAddr}, 2, "", `advertise-addr "not-an-ip"`},
		"config missing":           {[]string{"agent", "--config", filepath.Join(dir, "no.json")}, 2, "", "no.json"},
		"no agent":                 {[]string{"--socket", sock, "network", "ls"}, 1, "", "no vxnet agent at " + sock},
		"socket after":             {[]string{"network", "ls", "--socket", sock}, 1, "", "no vxnet agent at " + sock},
		"socket no path":           {[]string{"--socket"}, 2, "", "--socket needs a PATH"},
		"network usage":            {[]string{"network"}, 2, "create", ""},
		"network unknown":          {[]string{"network", "frob"}, 2, "", `unknown command "frob"`},
		"network create none":      {[]string{"network", "create"}, 2, "", "exactly one NAME"},
		"network bad aux":          {[]string{"--socket", sock, "network", "create", "--aux-address", "x", "n"}, 2, "", `--aux-address "x"`},
		"network bad subnet":       {[]string{"--socket", sock, "network", "create", "--subnet", "x", "n"}, 2, "", `--subnet "x" is not a CIDR`},
		"network v4 gateway on v6": {[]string{"--socket", sock, "network", "create", "--subnet", "fd00:88::/64", "--gateway", "10.88.0.1", "n"}, 2, "", `--gateway 10.88.0.1 is IPv4, and the network's subnet fd00:88::/64 is not`},
		"network v6 range on v4":   {[]string{"--socket", sock, "network", "create", "--subnet", "10.88.0.0/24", "--ip-range", "fd00::/120", "n"}, 2, "", `--ip-range fd00::/120 is IPv6, and the network's subnet 10.88.0.0/24 is not`},
		"network bare subnet":      {[]string{"--socket", sock, "network", "create", "--subnet", "10.50.0.0", "n"}, 2, "", `give its prefix length, such as 10.50.0.0/24`},
		"network two v4":           {[]string{"--socket", sock, "network", "create", "--subnet", "10.0.9.0/24", "--subnet", "10.0.8.0/24", "n"}, 2, "", "one IPv4 --subnet"},
		"network two v6 gw":        {[]string{"--socket", sock, "network", "create", "--gateway", "fd00::1", "--gateway", "fd00::2", "n"}, 2, "", "one IPv6 --gateway"},
		"network bad opt":          {[]string{"--socket", sock, "network", "create", "-o", "=x", "n"}, 2, "", `-o "=x"`},
		"endpoint stray":           {[]string{"endpoint", "create", "--network", "w", "--name", "a", "--netns", "n", "b"}, 2, "", `unexpected argument "b"`},
		"endpoint rm no net":       {[]string{"endpoint", "rm", "a"}, 2, "", "--network NET"},
		"run no cmd":               {[]string{"run", "--network", "w", "--name", "a"}, 2, "", "-- CMD"},
		"service usage":            {[]string{"service"}, 2, "", "tasks.NAME"},
		"service help":             {[]string{"service", "--help"}, 0, "Endpoint modes", ""},
		"service unknown":          {[]string{"service", "frob"}, 2, "", `unknown command "frob"`},
		"service no network":       {[]string{"service", "create", "api"}, 2, "", "--network is required"},
		"service two names":        {[]string{"service", "create", "--network", "w", "--name", "a", "b"}, 2, "", "exactly one NAME"},
		"service rm no name":       {[]string{"service", "rm"}, 2, "", "exactly one NAME"},
		"cluster usage":            {[]string{"cluster"}, 2, "", "cluster members"},
		"members bad format":       {[]string{"cluster", "members", "--format", "x"}, 2, "", `--format "x"`},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

func TestSplitFamilies(t *testing.T) {
	var r api.NetworkCreate
	if err := splitFamilies(&r, []string{"fd00:9::/64", "10.0.9.0/24"}, []string{"fd00:9::fe"}, []string{"10.0.9.128/25"}); err != nil {
		t.Fatal(err)
	}
	want := api.NetworkCreate{Subnet: "10.0.9.0/24", IPRange: "10.0.9.128/25", Subnet6: "fd00:9::/64", Gateway6: "fd00:9::fe"}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("dual stack: %+v, want %+v", r, want)
	}
	r = api.NetworkCreate{}
	if err := splitFamilies(&r, []string{"fd00:9::/64"}, nil, nil); err != nil || r.Subnet != "fd00:9::/64" || r.Subnet6 != "" {
		t.Errorf("IPv6 alone: %+v %v", r, err)
	}
	if err := splitFamilies(&api.NetworkCreate{}, []string{"10.0.74.0/24", "::ffff:10.0.0.0/104"}, nil, nil); err == nil || !strings.Contains(err.Error(), `--subnet "::ffff:10.0.0.0/104" is IPv4-mapped`) {
		t.Errorf("an IPv4-mapped subnet: %v", err)
	}
}

// TestCNIInstall: vxnet cni install writes this binary as BIN-DIR/vxnet
// and a conflist for the network that libcni reads.
func TestCNIInstall(t *testing.T) {
	bin, conf := t.TempDir(), t.TempDir()
	code, out, errOut := runCLI("cni", "install", "--bin-dir", bin, "--conf-dir", conf, "--network", "web", "--subnet", "10.0.9.0/24", "--portmap", "--socket", "/tmp/x.sock")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if st, err := os.Stat(filepath.Join(bin, "vxnet")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("plugin binary: %v %v", st, err)
	}
	b, err := os.ReadFile(filepath.Join(conf, "10-web.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion, Name string
		Plugins          []map[string]any
	}
	if err := json.Unmarshal(b, &list); err != nil || list.Name != "web" || len(list.Plugins) != 2 ||
		list.Plugins[0]["type"] != "vxnet" || list.Plugins[0]["subnet"] != "10.0.9.0/24" || list.Plugins[1]["type"] != "portmap" ||
		list.Plugins[0]["socket"] != "/tmp/x.sock" {
		t.Errorf("conflist %s: %v", b, err)
	}
	if list.CNIVersion != "1.0.0" {
		t.Errorf("cniVersion %q, want 1.0.0 (what podman 4 and containerd 1.6 read)", list.CNIVersion)
	}
	// Dual stack: --subnet once per family, each in its own key.
	code, out, errOut = runCLI("cni", "install", "--bin-dir", bin, "--conf-dir", conf, "--network", "dual", "--subnet", "fd00:8::/64", "--subnet", "10.0.8.0/24")
	if code != 0 {
		t.Fatalf("dual stack: exit %d: %s %s", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(conf, "10-dual.conflist")); err != nil || !strings.Contains(string(b), `"subnet": "10.0.8.0/24"`) || !strings.Contains(string(b), `"subnet6": "fd00:8::/64"`) {
		t.Errorf("dual-stack conflist %s: %v", b, err)
	}
	// Again under another priority: one file for the network; another
	// plugin's file of that name stays.
	os.WriteFile(filepath.Join(conf, "50-web.conflist"), []byte(`{"name": "web", "plugins": [{"type": "bridge"}]}`), 0o644)
	if code, out, errOut := runCLI("cni", "install", "--bin-dir", bin, "--conf-dir", conf, "--network", "web", "--priority", "99"); code != 0 || !strings.Contains(out, "removed "+filepath.Join(conf, "10-web.conflist")) {
		t.Errorf("install again at 99: exit %d: %s %s", code, out, errOut)
	}
	if got, _ := filepath.Glob(filepath.Join(conf, "*-web.conflist")); strings.Join(got, " ") != filepath.Join(conf, "50-web.conflist")+" "+filepath.Join(conf, "99-web.conflist") {
		t.Errorf("web's files after installing again: %v, want 50 (another plugin's) and 99", got)
	}
	if code, _, errOut := runCLI("cni", "frob"); code != 2 || !strings.Contains(errOut, "vxnet cni install") {
		t.Errorf("cni frob: %d %q", code, errOut)
	}
	for _, c := range []struct{ args, says string }{
		{"--network -x", `network "-x"`},
		{"--subnet 10.0.9.1/24", `subnet "10.0.9.1/24"`},
		{"--cni-version 2.0.0", `--cni-version "2.0.0"`},
		{"--subnet 10.0.9.0/24 --subnet 10.0.8.0/24", "--subnet"},
		{"--subnet fd00:9::/64 --subnet fd00:8::/64", "--subnet"},
		{"--driver bogus", `--driver "bogus": want one of`},
	} {
		args := append([]string{"cni", "install", "--bin-dir", t.TempDir(), "--conf-dir", t.TempDir()}, strings.Fields(c.args)...)
		if code, _, errOut := runCLI(args...); code != 2 || !strings.Contains(errOut, c.says) {
			t.Errorf("%s: %d %q, want %q", c.args, code, errOut, c.says)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errb strings.Builder
	if code := run(stdio{&out, &errb}, []string{"version"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"vxnet ", "commit:", "table rows   reads v1-v2", "gossip       messages v1", "state file   v2", "etcd layout  v1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vxnet version lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(stdio{&out, &errb}, []string{"version", "--format", "json"}); code != 0 || !strings.Contains(out.String(), `"stateFile": 2`) {
		t.Errorf("vxnet version --format json: %d\n%s", code, out.String())
	}
	if code := run(stdio{&out, &errb}, []string{"version", "--format", "yaml"}); code != 2 {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}

// TestHelp_noEmptyFlagsHeading: a command without flags prints no
// "Flags:" heading over nothing.
func TestHelp_noEmptyFlagsHeading(t *testing.T) {
	for _, args := range [][]string{{"cluster", "token", "--help"}, {"cluster", "token", "revoke", "--help"}} {
		_, _, stderr := runCLI(args...)
		if strings.HasSuffix(strings.TrimSpace(stderr), "Flags:") {
			t.Errorf("%v ends in an empty Flags: heading:\n%s", args, stderr)
		}
	}
}

// TestFail_namesTheFlag: an agent's refusal names the flag or argument the
// user typed (an IPv6 gateway is --gateway here, gateway6 in the API), and
// the API's field where the command has none.
func TestFail_namesTheFlag(t *testing.T) {
	for _, c := range []struct {
		cmd, field, want string
	}{
		{"network create", "gateway6", "(--gateway)"},
		{"network create", "name", "(NAME)"},
		{"endpoint create", "aliases", "(--alias)"},
		{"cluster forget", "name", "(HOST)"},
		{"endpoint create", "mtu", "(field mtu)"},
		{"stats", "x", "(field x)"},
	} {
		var out, errb strings.Builder
		code := fail(stdio{&out, &errb}, c.cmd, &api.Error{Code: api.CodeBadRequest, Field: c.field, Message: "refused"})
		if want := "vxnet " + c.cmd + ": refused " + c.want + "\n"; code != 1 || errb.String() != want {
			t.Errorf("%s %s: %d %q, want %q", c.cmd, c.field, code, errb.String(), want)
		}
	}
	// A hung agent: said so, with the socket, not as a URL.
	var out, errb strings.Builder
	fail(stdio{&out, &errb}, "endpoint ls", fmt.Errorf("Get \"http://vxnet/v1/endpoints?all=true\": %w", context.DeadlineExceeded))
	if !strings.Contains(errb.String(), "did not answer within 2m0s") || strings.Contains(errb.String(), "http://") {
		t.Errorf("timeout: %q", errb.String())
	}
	// Every flag named exists on its command.
	for cmd, fields := range flagOfField {
		for field, flag := range fields {
			if !strings.HasPrefix(flag, "-") {
				continue
			}
			var out, errb strings.Builder
			run(stdio{&out, &errb}, append(strings.Fields(cmd), "--help"))
			help, name := out.String()+errb.String(), "  -"+strings.TrimLeft(flag, "-")
			if !strings.Contains(help, name+" ") && !strings.Contains(help, name+"\n") {
				t.Errorf("%s: field %s names %s, which its --help lacks", cmd, field, flag)
			}
		}
	}
}

// TestPrintGossipRotation: hosts down at a gossip key rotation are named,
// with the way back; none down, nothing more is said.
func TestPrintGossipRotation(t *testing.T) {
	var b strings.Builder
	printGossipRotation(&b, api.GossipKeyRotation{Fingerprint: "ab12", Hosts: []string{"h1", "h2"}, Took: "1s", Down: []string{"h3"}})
	if !strings.Contains(b.String(), "every member (h1, h2)") || !strings.Contains(b.String(), "down at the end: h3; one that took the rotation's first step comes back by itself, else it needs the new key") {
		t.Errorf("with h3 down:\n%s", b.String())
	}
	b.Reset()
	printGossipRotation(&b, api.GossipKeyRotation{Fingerprint: "ab12", Hosts: []string{"h1"}, Took: "1s"})
	if strings.Contains(b.String(), "down") {
		t.Errorf("none down:\n%s", b.String())
	}
}

// TestApplyConfigFile_badValueSaysWhatItWants: a config file's value of
// the wrong kind names the setting, the value and the kind wanted.
func TestApplyConfigFile_badValueSaysWhatItWants(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"mtu": "big"}`, `setting "mtu" = "big"`},
		{`{"mtu": "big"}`, "want a whole number"},
		{`{"recover": "maybe"}`, "want true or false"},
		{`{"key-rotation": "often"}`, "want a duration"},
	} {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("mtu", 0, "")
		fs.Bool("recover", false, "")
		fs.Duration("key-rotation", 0, "")
		p := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p, []byte(c.json), 0o600)
		if err := applyConfigFile(fs, p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.json, err, c.want)
		}
	}
}
