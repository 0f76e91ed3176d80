package static

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/tun"
)

// Options are the run-time settings of Run.
type Options struct {
	// StatsSocket, when set, is a unix socket path where GET /stats
	// returns the switch's counters as JSON (root only, mode 0600).
	StatsSocket string
	// Logger receives lifecycle logs; nil discards.
	Logger *slog.Logger
	// RxQueues is the number of VXLAN receive queues; 0: one per four
	// cores, up to 4.
	RxQueues int
}

// Run builds the switch described by cfg — the underlay socket, one
// TUN device per local endpoint, the forwarding table — and runs it until
// ctx ends. Devices are removed on return.
func Run(ctx context.Context, cfg *Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	queues := opts.RxQueues
	if queues <= 0 {
		queues = dataplane.DefaultRxQueues()
	}
	sw, err := dataplane.Listen(dataplane.ListenConfig{Addr: cfg.VTEP, Port: cfg.VXLANPort, MTU: cfg.MTU, RxQueues: queues, Logger: log})
	if err != nil {
		return err
	}
	defer sw.Close()

	if cfg.Encryption != nil {
		keys, err := loadKeys(cfg)
		if err != nil {
			return err
		}
		sw.SetKeys(keys)
		log.Info("encryption keys loaded", "cipher", cfg.Encryption.Cipher.String(), "peers", len(cfg.Peers))
	}
	specs, err := attach(sw, cfg)
	if err != nil {
		return err
	}
	tbl, err := dataplane.NewTable(specs)
	if err != nil {
		return err
	}
	sw.SetTable(tbl)

	if opts.StatsSocket != "" {
		stop, err := serveStats(opts.StatsSocket, sw)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("dataplane running", "underlayAddr", netip.AddrPortFrom(cfg.VTEP, cfg.VXLANPort).String(), "queues", queues,
		"networks", len(cfg.Networks))
	return sw.Run(ctx)
}

// attach creates a port per local endpoint and returns the table
// specs that name them.
func attach(sw *dataplane.Switch, cfg *Config) ([]dataplane.NetworkSpec, error) {
	var specs []dataplane.NetworkSpec
	for _, n := range cfg.Networks {
		spec := dataplane.NetworkSpec{VNI: n.VNI, Subnets: n.Subnets, FloodVTEPs: n.FloodVTEPs, Encrypted: n.Encrypted}
		for _, e := range n.Endpoints {
			dev, err := tun.Create(tun.Config{Name: e.Ifname, Netns: e.Netns, MTU: cfg.EndpointMTU(n), Addresses: e.Addresses})
			if err != nil {
				return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
			}
			port, err := sw.AddPort(e.Name, dev)
			if err != nil {
				dev.Close()
				return nil, err
			}
			ep := dataplane.EndpointSpec{MAC: e.MAC, Port: port}
			for _, a := range e.Addresses {
				ep.Addrs = append(ep.Addrs, a.Addr())
			}
			spec.Endpoints = append(spec.Endpoints, ep)
		}
		for _, r := range n.Remotes {
			spec.Endpoints = append(spec.Endpoints, dataplane.EndpointSpec{MAC: r.MAC, VTEP: r.VTEP, Addrs: r.Addresses, Peer: r.Vxnet})
		}
		for _, s := range n.Services {
			ss := dataplane.ServiceSpec{Name: s.Name, VIPs: s.VIPs}
			for _, tk := range s.Tasks {
				ss.Tasks = append(ss.Tasks, dataplane.TaskSpec{Addrs: []netip.Addr{tk}})
			}
			spec.Services = append(spec.Services, ss)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// serveStats serves GET /stats on a unix socket. A unix socket is reached
// by path, so it works across network namespaces.
func serveStats(path string, sw *dataplane.Switch) (stop func(), err error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sw.Stats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		os.Remove(path)
	}, nil
}

// Stats is the JSON document served at GET /stats: the switch's counters.
type Stats = dataplane.Stats

// DropHelp says what each drop reason of Stats counts.
var DropHelp = dataplane.DropHelp

// loadKeys reads this host's keys, derives the keys of every peer, and
// only then takes the session key (so that it is never used for a second
// start, and a start that fails on a peer's keys leaves it usable).
func loadKeys(cfg *Config) (*dataplane.Keyring, error) {
	e := cfg.Encryption
	host, err := seal.LoadKeyFile(e.HostKey)
	if err != nil {
		return nil, fmt.Errorf("encryption.hostKey: %w", err)
	}
	session, err := seal.LoadKeyFile(e.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("encryption.sessionKey: %w (a session key serves one start: make one with vxnet dataplane keygen FILE and give the public key it prints to the peers)", err)
	}
	local := seal.Local{Static: host, Session: session}
	peers := make(map[netip.Addr]dataplane.PeerKeys, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.HostKey == host.Public() {
			return nil, fmt.Errorf("peers[%d].hostKey: %s is this host's own host key; give the peer's (vxnet dataplane pubkey on its host key file)", i, p.HostKey)
		}
		k, err := seal.Derive(e.Cipher, local, seal.Remote{Static: p.HostKey, Session: p.SessionKey})
		if err != nil {
			return nil, fmt.Errorf("peers[%d] (%s): %w", i, p.VTEP, err)
		}
		peers[p.VTEP] = dataplane.PeerKeys{Send: k.Send, Recv: []*seal.RecvKey{k.Recv}}
	}
	ring, err := dataplane.NewKeyring(peers)
	if err != nil {
		return nil, err
	}
	if _, err := takeSessionKey(e.SessionKey, e.HostKey+".sessions-used"); err != nil {
		return nil, err
	}
	return ring, nil
}

// takeSessionKey reads a session key for one start and destroys its
// file. Keys derived from it seal from counter 0, so the same session key
// must never serve two starts: its public key is added to usedList (one
// per line, kept beside the host key) before it is used, and a key listed
// there is refused. The private key is overwritten and removed, so that a
// host key stolen later opens no recorded traffic (forward secrecy).
func takeSessionKey(path, usedList string) (*seal.KeyPair, error) {
	k, err := seal.LoadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption.sessionKey: %w", err)
	}
	pub := k.Public().String()
	used, err := os.ReadFile(usedList)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("encryption.sessionKey: the list of used session keys: %w", err)
	}
	for _, line := range strings.Split(string(used), "\n") {
		if strings.TrimSpace(line) == pub {
			return nil, fmt.Errorf("encryption.sessionKey: %s holds session key %s, which an earlier start used (listed in %s); a session key serves one start: make a new one with vxnet dataplane keygen and give its public key to the peers", path, pub, usedList)
		}
	}
	f, err := os.OpenFile(usedList, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("encryption.sessionKey: the list of used session keys: %w", err)
	}
	_, err = f.WriteString(pub + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("encryption.sessionKey: the list of used session keys: %w", err)
	}
	destroy(path)
	return k, nil
}

// destroy overwrites a private key's file and removes it.
func destroy(path string) {
	if st, err := os.Stat(path); err == nil {
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.Write(make([]byte, st.Size()))
			f.Sync()
			f.Close()
		}
	}
	os.Remove(path)
}
