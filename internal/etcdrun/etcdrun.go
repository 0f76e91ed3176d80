// Package etcdrun runs a real etcd cluster from the etcd binary on PATH
// (Debian's etcd-server), for tests (through etcdtest) and for `vxnet
// bench control`: each member a process with its own data directory,
// listening on loopback or on an address inside a network namespace.
package etcdrun

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vxnet/vxnet/internal/freeport"
)

// ErrNoBinary: etcd is not installed.
var ErrNoBinary = errors.New("etcd is not installed (make deps installs Debian's etcd-server)")

// Options say where a cluster runs.
type Options struct {
	// Dir holds the members' data directories and logs. Default: a new
	// temporary directory, removed by Close.
	Dir string
	// Members is the cluster's size. Default 3.
	Members int
	// Netns, when set, is a network namespace (ip netns) the members run
	// in, listening on Host: an end-to-end lab's underlay, say.
	Netns string
	// Host is the address members listen on. Default 127.0.0.1 (with a
	// free port each); in Netns, ports from 2379 up.
	Host string
	// TLS, when set, has clients speak TLS to the members (https client
	// URLs) with client certificates required (--client-cert-auth);
	// peers still speak plain HTTP among themselves.
	TLS *TLSFiles
}

// TLSFiles are PEM files: the CA that signed the others, the members'
// server certificate (for Host) and a client certificate.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// Cluster is a running etcd cluster.
type Cluster struct {
	bin     string
	opts    Options
	ownDir  bool
	members []*member
}

type member struct {
	name      string
	args      []string
	clientURL string
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
}

// Binary returns the path of the etcd binary, or ErrNoBinary.
func Binary() (string, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return "", ErrNoBinary
	}
	return bin, nil
}

func freePort() (int, error) { return freeport.Loopback(false) }

// Start starts a cluster and waits (at most 30 s) until every member is
// healthy. Close stops it. On loopback, a start that fails because
// another process took a member's port is tried again on new ports, at
// most three times in all, with the failed try's data removed.
func Start(opts Options) (*Cluster, error) {
	for try := 1; ; try++ {
		c, err := start(opts, try > 1)
		if err == nil || opts.Netns != "" || try == 3 || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
	}
}

func start(opts Options, again bool) (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.Members == 0 {
		opts.Members = 3
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	c := &Cluster{bin: bin, opts: opts}
	if c.opts.Dir == "" {
		if c.opts.Dir, err = os.MkdirTemp("", "vxnet-etcd-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	port := func(i int) (int, error) {
		if opts.Netns != "" {
			return 2379 + i, nil
		}
		return freePort()
	}
	n := opts.Members
	token := fmt.Sprintf("vxnet-%d-%d", os.Getpid(), time.Now().UnixNano())
	var initial []string
	peers := make([]string, n)
	for i := range n {
		p, err := port(2*i + 1)
		if err != nil {
			c.Close()
			return nil, err
		}
		peers[i] = fmt.Sprintf("http://%s:%d", opts.Host, p)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range n {
		p, err := port(2 * i)
		if err != nil {
			c.Close()
			return nil, err
		}
		scheme := "http"
		if opts.TLS != nil {
			scheme = "https"
		}
		m := &member{name: fmt.Sprintf("m%d", i), clientURL: fmt.Sprintf("%s://%s:%d", scheme, opts.Host, p),
			logPath: filepath.Join(c.opts.Dir, fmt.Sprintf("m%d.log", i))}
		if again { // nothing of the failed try, on other ports, stays
			os.RemoveAll(filepath.Join(c.opts.Dir, m.name))
			os.Remove(m.logPath)
		}
		m.args = []string{"--name", m.name, "--data-dir", filepath.Join(c.opts.Dir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token, "--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-level", "warn"}
		if t := opts.TLS; t != nil {
			m.args = append(m.args, "--cert-file", t.ServerCert, "--key-file", t.ServerKey, "--trusted-ca-file", t.CA, "--client-cert-auth")
		}
		c.members = append(c.members, m)
	}
	for i := range c.members {
		if err := c.StartMember(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL)
	}
	return out
}

// StartMember starts member i (again, after Kill), with its data.
func (c *Cluster) StartMember(i int) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := append([]string{c.bin}, m.args...)
	if c.opts.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", c.opts.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting etcd member %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	return nil
}

// Kill stops member i with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Close kills every member and removes the directory it made.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Kill(i)
	}
	if c.ownDir {
		os.RemoveAll(c.opts.Dir)
	}
}

// Healthy reports whether member i answers its health check.
func (c *Cluster) Healthy(i int) bool {
	url := c.members[i].clientURL + "/health"
	var body []byte
	if c.opts.Netns != "" {
		out, err := exec.Command("ip", "netns", "exec", c.opts.Netns, "curl", "-s", "-m", "1", url).Output()
		if err != nil {
			return false
		}
		body = out
	} else {
		cl := http.Client{Timeout: time.Second}
		if t := c.opts.TLS; t != nil {
			tc, err := t.ClientConfig()
			if err != nil {
				return false
			}
			cl.Transport = &http.Transport{TLSClientConfig: tc}
		}
		resp, err := cl.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 256))
	}
	return strings.Contains(string(body), `"health":"true"`)
}

// WaitHealthy waits until every running member is healthy (a leader is
// elected); the error carries the log of a member that exited (any of
// them, at once) or of the first that is not healthy by the deadline.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		healthy := true
		for i, m := range c.members {
			m.mu.Lock()
			running, done := m.cmd != nil, m.done
			m.mu.Unlock()
			if !running {
				continue
			}
			select {
			case <-done:
				b, _ := os.ReadFile(m.logPath)
				return fmt.Errorf("etcd member %s exited; its log:\n%s", m.name, b)
			default:
			}
			if healthy && !c.Healthy(i) {
				healthy = false
				if time.Now().After(deadline) {
					b, _ := os.ReadFile(m.logPath)
					return fmt.Errorf("etcd member %s not healthy after %v; its log:\n%s", m.name, timeout, b)
				}
			}
		}
		if healthy {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClientConfig is the TLS configuration of a client of the cluster: its
// CA and the client certificate.
func (t *TLSFiles) ClientConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", t.CA)
	}
	cert, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// WriteCerts makes a CA, a server certificate for host and a client
// certificate in dir (ECDSA P-256, valid for a day), for a test.
func WriteCerts(dir, host string) (*TLSFiles, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vxnet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	f := &TLSFiles{CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}
	if err := writePEM(f.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, certPath, keyPath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		} else {
			tmpl.DNSNames = []string{host}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "EC PRIVATE KEY", kb)
	}
	if err := leaf(2, host, x509.ExtKeyUsageServerAuth, f.ServerCert, f.ServerKey); err != nil {
		return nil, err
	}
	if err := leaf(3, "vxnet test client", x509.ExtKeyUsageClientAuth, f.ClientCert, f.ClientKey); err != nil {
		return nil, err
	}
	return f, nil
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}
