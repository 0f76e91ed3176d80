package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/join"
)

// TestJoinHint: the low-level errors of a failed join get a hint that
// names what to check; others none.
func TestJoinHint(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("join x: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), "not its gossip port"},
		{fmt.Errorf("join x: %w", refused), "nothing listens at 198.18.0.1:7947"},
		{fmt.Errorf("join x: %w", context.DeadlineExceeded), "no answer from 198.18.0.1:7947 within 30s"},
		{fmt.Errorf("join x: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}), "no way to 198.18.0.1:7947"},
		{errors.New("join x: token revoked"), ""},
	} {
		got := joinHint(c.err, "198.18.0.1:7947", 30*time.Second)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%v: hint %q, want one saying %q", c.err, got, c.want)
		}
	}
}

// TestWarnNotLocal: an advertise address none of this host's interfaces
// holds gets a warning; one they hold, none.
func TestWarnNotLocal(t *testing.T) {
	var out strings.Builder
	std := stdio{stdout: &out, stderr: &out}
	warnNotLocal(std, "cluster init", netip.MustParseAddr("127.0.0.1"))
	if out.Len() != 0 {
		t.Errorf("warned about 127.0.0.1: %s", out.String())
	}
	warnNotLocal(std, "cluster init", netip.MustParseAddr("192.0.2.123"))
	if !strings.Contains(out.String(), "--advertise-addr 192.0.2.123 is not an address of this host") {
		t.Errorf("no warning for an address of no interface: %q", out.String())
	}
}

// TestClusterJoin_failureLeavesNoDirectory: a join that fails (nothing
// listens at the address: loopback, a port no one holds) writes nothing,
// not even the settings directory, and says what to check.
func TestClusterJoin_failureLeavesNoDirectory(t *testing.T) {
	_, _, _, tok := newJoinCert(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	dir := filepath.Join(t.TempDir(), "vxnet")
	code, _, stderr := runCLI("cluster", "join", "--token", tok.String(), "--config-dir", dir, "--advertise-addr", "127.0.0.1", "--timeout", "5s", addr)
	if code == 0 || !strings.Contains(stderr, "nothing listens at "+addr) {
		t.Errorf("exit %d, stderr %q; want a failure saying nothing listens at %s", code, stderr, addr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the failed join left %s behind: %v", dir, err)
	}
}

// TestClusterJoin_silentMember: a member that takes the connection and
// never answers is named with --timeout, not mistaken for this host's
// agent (the API's own timeout message).
func TestClusterJoin_silentMember(t *testing.T) {
	_, _, _, tok := newJoinCert(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept and say nothing
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	addr := l.Addr().String()
	dir := filepath.Join(t.TempDir(), "vxnet")
	code, _, stderr := runCLI("cluster", "join", "--token", tok.String(), "--config-dir", dir, "--advertise-addr", "127.0.0.1", "--timeout", "300ms", addr)
	if code != 1 || !strings.Contains(stderr, "no answer from "+addr+" within 300ms (--timeout)") || strings.Contains(stderr, "the agent at") {
		t.Errorf("exit %d, stderr %q; want 1 and a word on the member's silence", code, stderr)
	}
}

// TestClusterJoin_forceKeepsOwnSettings: joining again over old settings
// keeps what the cluster does not decide (the name, the metrics address),
// drops what it does and no longer says (an etcd prefix), and asks under
// the old name.
func TestClusterJoin_forceKeepsOwnSettings(t *testing.T) {
	addr, tok, asked := joinServer(t, join.Response{Seeds: []string{"127.0.0.2:7946"}, JoinPort: join.DefaultPort, Store: "gossip"})

	dir := filepath.Join(t.TempDir(), "vxnet")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"name": "h5", "metrics-addr": "127.0.0.1:9100", "etcd-prefix": "/old", "advertise-addr": "127.0.0.1"}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("cluster", "join", "--force", "--no-start", "--token", tok.String(), "--config-dir", dir,
		"--advertise-addr", "127.0.0.1", "--timeout", "10s", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if req := <-asked; req.Name != "h5" {
		t.Errorf("asked under the name %q, want the old settings' h5", req.Name)
	}
	var got map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "h5" || got["metrics-addr"] != "127.0.0.1:9100" {
		t.Errorf("settings lost: %s", b)
	}
	if _, ok := got["etcd-prefix"]; ok {
		t.Errorf("a setting the cluster decides was kept although it no longer says it: %s", b)
	}
	if !strings.Contains(stdout, "Kept from the old") || !strings.Contains(stdout, ": metrics-addr.") {
		t.Errorf("stdout does not say what was kept:\n%s", stdout)
	}
}

// TestClusterInit_forceSetsStateAside: a new cluster over old settings
// starts from no state: the old data dir is moved aside (refused while an
// agent answers on the old API socket), and the settings a new cluster
// does not decide are kept, those it does are not.
func TestClusterInit_forceSetsStateAside(t *testing.T) {
	base := t.TempDir()
	dir, data, sock := filepath.Join(base, "etc"), filepath.Join(base, "data"), filepath.Join(base, "api.sock")
	for _, d := range []string{dir, data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "state.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf(`{"name": "h5", "data-dir": %q, "api-socket": %q, "join": ["198.18.0.9:7946"], "advertise-addr": "127.0.0.1"}`, data, sock)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	initForce := func() (int, string, string) {
		return runCLI("cluster", "init", "--force", "--no-start", "--config-dir", dir, "--advertise-addr", "127.0.0.1")
	}

	// An agent answering on the old socket: refused, nothing changed.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := initForce()
	l.Close()
	if code == 0 || !strings.Contains(stderr, "an agent runs here (it answers on "+sock) || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("with an agent running: exit %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(b) != old {
		t.Errorf("the refused init changed the settings: %s", b)
	}
	if _, err := os.Stat(filepath.Join(data, "state.json")); err != nil {
		t.Errorf("the refused init moved the state: %v", err)
	}

	code, stdout, stderr := initForce()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the old data dir is still there: %v", err)
	}
	moved, _ := filepath.Glob(data + ".before-init-*")
	if len(moved) != 1 {
		t.Fatalf("set aside as %v, want one %s.before-init-TIME", moved, data)
	}
	if _, err := os.Stat(filepath.Join(moved[0], "state.json")); err != nil {
		t.Errorf("the state set aside lacks its file: %v", err)
	}
	if !strings.Contains(stdout, "set aside: "+data+" is now "+moved[0]) {
		t.Errorf("stdout does not say where the state went:\n%s", stdout)
	}
	var got map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "h5" || got["data-dir"] != data || got["api-socket"] != sock {
		t.Errorf("own settings lost: %s", b)
	}
	if _, ok := got["join"]; ok {
		t.Errorf("the old cluster's members were kept: %s", b)
	}
}

// joinServer is a join service that admits every request with resp (and
// a certificate, a gossip key): its address, a token for it, and the
// requests it got.
func joinServer(t *testing.T, resp join.Response) (string, join.Token, chan join.Request) {
	t.Helper()
	certPEM, keyPEM, cert, tok := newJoinCert(t)
	resp.Cert, resp.Key = string(certPEM), string(keyPEM)
	resp.GossipKeys = []string{base64.StdEncoding.EncodeToString(make([]byte, 32))}
	asked := make(chan join.Request, 4)
	admit := func(_ context.Context, _, _ string, req join.Request) (join.Response, error) {
		asked <- req
		return resp, nil
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", join.ServerTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: join.Handler(admit)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), tok, asked
}

// TestCluster_etcdSettings: init --store etcd writes where the tables are
// and this host's etcd TLS files (absolute); a joining host takes the
// store from the cluster and its own TLS files from its flags, which a
// gossip cluster refuses. Bad store flags name the flag and the value.
func TestCluster_etcdSettings(t *testing.T) {
	base := t.TempDir()
	ca := filepath.Join(base, "ca.pem")
	certPEM, _, err := join.NewCertificate() // any PEM certificate will do as a CA file
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	settings := func(dir string) map[string]any {
		var m map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		return m
	}
	t.Chdir(base)
	initDir := filepath.Join(base, "init")
	code, stdout, stderr := runCLI("cluster", "init", "--no-start", "--config-dir", initDir, "--advertise-addr", "127.0.0.1",
		"--store", "etcd", "--etcd-endpoints", "https://127.0.0.1:2379,https://127.0.0.2:2379", "--etcd-prefix", "/vx7", "--etcd-ca", "ca.pem")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	m := settings(initDir)
	if m["store"] != "etcd" || fmt.Sprint(m["etcd-endpoints"]) != "[https://127.0.0.1:2379 https://127.0.0.2:2379]" || m["etcd-prefix"] != "/vx7" || m["etcd-ca"] != ca {
		t.Errorf("init's settings: %v", m)
	}
	if !strings.Contains(stdout, "in etcd (https://127.0.0.1:2379,https://127.0.0.2:2379), under /vx7") {
		t.Errorf("init does not say where the tables are:\n%s", stdout)
	}

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no endpoints":    {[]string{"--store", "etcd"}, `--etcd-endpoints "": --store etcd needs`},
		"bad store":       {[]string{"--store", "consul"}, "--store consul: want gossip (the default) or etcd"},
		"etcd flag alone": {[]string{"--etcd-prefix", "/x"}, "--etcd-prefix /x: needs --store etcd"},
		"bad endpoint":    {[]string{"--store", "etcd", "--etcd-endpoints", "10.0.0.1:2379"}, "--etcd-endpoints 10.0.0.1:2379: want a client URL"},
		"missing CA":      {[]string{"--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-ca", "nope.pem"}, "--etcd-ca " + filepath.Join(base, "nope.pem")},
	} {
		dir := filepath.Join(base, "bad")
		code, _, stderr := runCLI(append([]string{"cluster", "init", "--no-start", "--config-dir", dir, "--advertise-addr", "127.0.0.1"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", name, code, stderr, c.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: the refused init left %s", name, dir)
		}
	}

	addr, tok, _ := joinServer(t, join.Response{Seeds: []string{"127.0.0.2:7946"}, Store: "etcd", EtcdEndpoints: []string{"https://127.0.0.1:2379"}, EtcdPrefix: "/vx7"})
	joinDir := filepath.Join(base, "join")
	code, _, stderr = runCLI("cluster", "join", "--no-start", "--token", tok.String(), "--config-dir", joinDir, "--advertise-addr", "127.0.0.1",
		"--timeout", "10s", "--etcd-ca", "ca.pem", addr)
	if code != 0 {
		t.Fatalf("join: exit %d: %s", code, stderr)
	}
	if m := settings(joinDir); m["store"] != "etcd" || fmt.Sprint(m["etcd-endpoints"]) != "[https://127.0.0.1:2379]" || m["etcd-prefix"] != "/vx7" || m["etcd-ca"] != ca {
		t.Errorf("join's settings: %v", m)
	}
	addr, tok, _ = joinServer(t, join.Response{Seeds: []string{"127.0.0.2:7946"}, Store: "gossip"})
	code, _, stderr = runCLI("cluster", "join", "--no-start", "--token", tok.String(), "--config-dir", filepath.Join(base, "join2"), "--advertise-addr", "127.0.0.1",
		"--timeout", "10s", "--etcd-ca", "ca.pem", addr)
	if code == 0 || !strings.Contains(stderr, "keeps them in gossip") {
		t.Errorf("join of a gossip cluster with --etcd-ca: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(base, "join2")); !os.IsNotExist(err) {
		t.Errorf("the refused join left its directory: %v", err)
	}
}

// newJoinCert makes a join certificate and a token pinned to it.
func newJoinCert(t *testing.T) (certPEM, keyPEM []byte, cert tls.Certificate, tok join.Token) {
	t.Helper()
	certPEM, keyPEM, err := join.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cert, pin, err := join.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = join.NewToken(pin); err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, cert, tok
}
