// Package config is the agent's settings: what `vxnet agent`'s flags map
// onto, their defaults, and their checks (errors name the flag and the
// value).
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/join"
)

// Defaults of Config, for the flags that set them.
const (
	DefaultVXLANPort  = vxlan.DefaultPort // IANA's VXLAN port, the same on every host
	DefaultMTU        = tun.DefaultMTU    // a 1500-byte underlay less VXLAN's 50 bytes
	DefaultGossipPort = gossip.DefaultPort
	DefaultDataDir    = "/var/lib/vxnet"
	// DefaultBindTimeout is how long a bind whose address is in use is
	// retried by default (internal/bindretry).
	DefaultBindTimeout = 30 * time.Second

	// MaxRxQueues bounds --rx-queues: each is a socket and a loop.
	MaxRxQueues = 64
)

// Config configures an agent. Flags of `vxnet agent` map onto it.
type Config struct {
	// Name of this host in the cluster. Default: the hostname.
	Name string
	// AdvertiseAddr is this host's underlay address: gossip and VXLAN
	// listen on it and other hosts send to it. Required.
	AdvertiseAddr string
	// GossipPort is the gossip port (TCP and UDP). Default 7946.
	GossipPort int
	// Join lists host:port of agents to join; none starts a cluster.
	Join []string
	// DataDir keeps this host's own state. Default /var/lib/vxnet.
	DataDir string
	// GossipKey, base64 of 16, 24 or 32 bytes, encrypts gossip.
	GossipKey string
	// GossipKeyFile names a file holding GossipKey on its first line
	// (instead of GossipKey, which a command line shows to every user of
	// the host). On Unix the file must not be readable by its group or by
	// others.
	GossipKeyFile string
	// VXLANPort is the underlay UDP port. Default 4789.
	VXLANPort int
	// JoinCert and JoinKey name the cluster's join certificate and its
	// key (PEM files; vxnet cluster init makes them, vxnet cluster join
	// brings them): with them the agent serves the join service on
	// AdvertiseAddr:JoinPort, where new hosts trade a join token for the
	// gossip keys (package join). Without them, no join service.
	JoinCert, JoinKey string
	// JoinPort is the join service's TCP port. Default 7947.
	JoinPort int
	// JoinTokenSeed names a file of join token rows (vxnet cluster init
	// writes it) that the agent adds to the cluster's tokens when it
	// starts, then removes.
	JoinTokenSeed string
	// APISocket is the unix socket of the API. Default
	// /run/vxnet/vxnet.sock.
	APISocket string
	// MTU of endpoints. Default (0): the MTU of the interface holding
	// AdvertiseAddr less VXLAN's overhead (50 bytes over IPv4, 70 over
	// IPv6), up to 9000; 1450 (1430 over IPv6) when that interface is
	// unknown or loopback.
	MTU int
	// MTUFrom says how SetDefaults chose MTU, for the agent's log.
	MTUFrom string
	// RxQueues is the number of VXLAN receive sockets (and loops) sharing
	// the port; flows spread over them. Default: one per four cores, up
	// to 4.
	RxQueues int
	// MetricsAddr, host:port, serves Prometheus metrics at /metrics;
	// empty serves none.
	MetricsAddr string
	// PprofAddr, host:port, serves Go's profiler at /debug/pprof/ (for
	// speed work; keep it on loopback); empty serves none.
	PprofAddr string
	// Profile: "lan" (default) or "fast" (small clusters, tests: failures
	// seen in about a second).
	Profile string
	// DNSUpstreams for names vxnet does not own; nil: the host's
	// resolv.conf; an empty non-nil list: none.
	DNSUpstreams []netip.AddrPort
	// HNS, when set, is programmed with every network and endpoint in use
	// on this host (see hns.Programmer). On Windows New opens the real one
	// (hns.NewHCN) when it is nil; tests pass a fake (hnstest).
	HNS hns.Client
	// Logger receives structured logs; nil discards.
	Logger *slog.Logger
	// Version is reported to other members.
	Version string
	// Recover rebuilds this host's state from the cluster when the state
	// file is damaged or missing: the file is set aside, and the host's
	// own rows (endpoints, address blocks) are taken back from the other
	// hosts instead of being deleted. Needs Join.
	Recover bool
	// BindTimeout is how long a bind whose address is in use (gossip,
	// VXLAN, the API socket, metrics, DNS in a container's namespace) is
	// retried: a restarted agent may find its predecessor still shutting
	// down. Default DefaultBindTimeout; negative: no retry.
	BindTimeout time.Duration
	// SysctlDir is where the agent writes the host's sysctls (IP
	// forwarding for gateways). Default /proc/sys; an agent in a container
	// whose /proc/sys is read-only (a managed Docker plugin) writes the
	// host's, seen at /host/proc/sys.
	SysctlDir string
	// Store is where the replicated tables live: "gossip" (the default:
	// in every agent, no other service) or "etcd" (in an etcd cluster the
	// agents share; gossip then only tells who is alive).
	Store string
	// EtcdEndpoints are the etcd cluster's client URLs (Store "etcd").
	EtcdEndpoints []string
	// EtcdPrefix is where in etcd's key space the tables live. Default
	// /vxnet.
	EtcdPrefix string
	// EtcdCA, EtcdCert and EtcdKey are PEM files for TLS to etcd: the CA
	// that signed etcd's certificates, and this host's client certificate
	// and key (etcd's --client-cert-auth).
	EtcdCA, EtcdCert, EtcdKey string
	// EtcdLeaseTTL is how long this host's rows outlive it in etcd when
	// it stops renewing its lease (it died or lost etcd). Default 10 s.
	EtcdLeaseTTL time.Duration
	// KeyRotation is how often this host replaces its session key, and so
	// every key of its encrypted networks' traffic (docs/ENCRYPTION.md);
	// 0 never (a key lasts until the agent restarts).
	KeyRotation time.Duration
}

// SetDefaults fills in what is not set.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.GossipPort == 0 {
		c.GossipPort = DefaultGossipPort
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.VXLANPort == 0 {
		c.VXLANPort = DefaultVXLANPort
	}
	if c.JoinPort == 0 {
		c.JoinPort = join.DefaultPort
	}
	if c.APISocket == "" {
		c.APISocket = api.DefaultSocket
	}
	if c.RxQueues <= 0 {
		c.RxQueues = dataplane.DefaultRxQueues()
	}
	if c.MTU == 0 {
		c.MTU, c.MTUFrom = underlayMTU(c.AdvertiseAddr)
	} else if c.MTUFrom == "" {
		c.MTUFrom = "set"
	}
	if c.Profile == "" {
		c.Profile = "lan"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BindTimeout == 0 {
		c.BindTimeout = DefaultBindTimeout
	}
}

// underlayMTU is the endpoints' MTU that fits the underlay interface
// holding addr, and how it was found.
func underlayMTU(addr string) (int, string) {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.IsUnspecified() {
		return DefaultMTU, "default"
	}
	a = a.Unmap()
	addrs, err := InterfaceAddrs()
	if err != nil {
		return tun.DefaultMTUFor(a), "default (interfaces unknown: " + err.Error() + ")"
	}
	for _, ia := range addrs {
		if ia.Addr != a {
			continue
		}
		ifc := ia.Iface
		if ifc.Flags&net.FlagLoopback != 0 {
			return tun.DefaultMTUFor(a), "default (the underlay address is on loopback)"
		}
		overhead := 50
		if a.Is6() {
			overhead = 70
		}
		mtu := min(ifc.MTU-overhead, 9000)
		return mtu, fmt.Sprintf("the underlay interface %s's MTU %d less %d bytes of VXLAN", ifc.Name, ifc.MTU, overhead)
	}
	return tun.DefaultMTUFor(a), "default (no interface holds the underlay address)"
}

// IfaceAddr is an address of one of this host's interfaces.
type IfaceAddr struct {
	Iface net.Interface
	Addr  netip.Addr // unmapped
	Bits  int        // its prefix length on the interface (-1: unknown)
}

// Network is the network the address is on (its prefix, masked); not
// valid when the prefix length is unknown.
func (ia IfaceAddr) Network() netip.Prefix {
	p, err := ia.Addr.Prefix(ia.Bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// InterfaceAddrs lists the IP addresses of this host's interfaces (those
// of an interface whose addresses cannot be read are left out).
func InterfaceAddrs() ([]IfaceAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []IfaceAddr
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ia := range addrs {
			if ipn, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(ipn.IP); ok {
					ones, bits := ipn.Mask.Size()
					if a = a.Unmap(); a.Is4() && bits == 128 {
						ones -= 96 // a 16-byte mask over an IPv4 address
					}
					if bits == 0 || ones < 0 {
						ones = -1 // not a canonical mask
					}
					out = append(out, IfaceAddr{ifc, a, ones})
				}
			}
		}
	}
	return out, nil
}

// Error names a bad setting: the flag, its value and what is wrong.
type Error struct {
	Field, Value, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("agent: %s %q: %s", e.Field, e.Value, e.Reason)
}

// CheckName checks a host's name in the cluster (--name, by default the
// hostname): it is in the tables' keys and every host's logs.
func CheckName(name string) error {
	if err := names.Host(name); err != nil {
		var ne *names.Error
		if errors.As(err, &ne) {
			return &Error{"name", name, ne.Reason + " (give one with --name; by default it is the hostname)"}
		}
		return &Error{"name", name, err.Error()}
	}
	return nil
}

// Check validates the settings (after SetDefaults) and returns what they
// come to: the underlay address, the gossip keys and the gossip profile.
func (c *Config) Check() (advertise netip.Addr, keys [][]byte, profile gossip.Profile, err error) {
	if c.Name == "" {
		return advertise, nil, 0, &Error{"name", c.Name, "is empty and the hostname is unknown"}
	}
	if err := CheckName(c.Name); err != nil {
		return advertise, nil, 0, err
	}
	if c.RxQueues > MaxRxQueues {
		return advertise, nil, 0, &Error{"rx-queues", strconv.Itoa(c.RxQueues), fmt.Sprintf("want 1-%d (one per four cores is the default)", MaxRxQueues)}
	}
	if c.Recover && len(c.Join) == 0 {
		return advertise, nil, 0, &Error{"recover", "true", "needs --join: the hosts to rebuild this host's state from"}
	}
	advertise, perr := netip.ParseAddr(c.AdvertiseAddr)
	if perr != nil || advertise.IsUnspecified() || advertise.Zone() != "" {
		return advertise, nil, 0, &Error{"advertise-addr", c.AdvertiseAddr, "want this host's underlay IP address, e.g. 198.18.0.1"}
	}
	if c.GossipPort < 1 || c.GossipPort > 65535 {
		return advertise, nil, 0, &Error{"gossip-port", strconv.Itoa(c.GossipPort), "want 1-65535"}
	}
	if c.KeyRotation != 0 && c.KeyRotation < time.Minute {
		return advertise, nil, 0, &Error{"key-rotation", c.KeyRotation.String(), "want 0 (never) or at least 1m: each rotation takes a minute to finish"}
	}
	if c.VXLANPort < 1 || c.VXLANPort > 65535 {
		return advertise, nil, 0, &Error{"vxlan-port", strconv.Itoa(c.VXLANPort), "want 1-65535"}
	}
	if c.JoinPort < 1 || c.JoinPort > 65535 {
		return advertise, nil, 0, &Error{"join-port", strconv.Itoa(c.JoinPort), "want 1-65535"}
	}
	if err := CheckPorts(c.GossipPort, c.VXLANPort, c.JoinPort, c.JoinCert != ""); err != nil {
		return advertise, nil, 0, err
	}
	if (c.JoinCert == "") != (c.JoinKey == "") {
		return advertise, nil, 0, &Error{"join-cert", c.JoinCert, "give --join-cert and --join-key together"}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return advertise, nil, 0, &Error{"join", j, "want host:port, e.g. 198.18.0.2:7946"}
		}
	}
	texts, keyField, keyValue := []string{c.GossipKey}, "gossip-key", "(hidden)"
	if c.GossipKeyFile != "" {
		if c.GossipKey != "" {
			return advertise, nil, 0, &Error{"gossip-key-file", c.GossipKeyFile, "give the key either in a file or as a value, not both"}
		}
		if texts, err = ReadGossipKeys(c.GossipKeyFile); err != nil {
			return advertise, nil, 0, err
		}
		keyField, keyValue = "gossip-key-file", c.GossipKeyFile
	}
	for i, text := range texts {
		if text == "" {
			continue
		}
		k, derr := base64.StdEncoding.DecodeString(text)
		if derr != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			where := keyValue
			if len(texts) > 1 {
				where = fmt.Sprintf("%s (line %d)", keyValue, i+1)
			}
			return advertise, nil, 0, &Error{keyField, where, "want base64 of 16, 24 or 32 bytes (e.g. `head -c32 /dev/urandom | base64`)"}
		}
		keys = append(keys, k)
	}
	switch c.Profile {
	case "lan":
		profile = gossip.ProfileLAN
	case "fast":
		profile = gossip.ProfileFast
	default:
		return advertise, nil, 0, &Error{"profile", c.Profile, "want lan or fast"}
	}
	if err := c.CheckStore(); err != nil {
		return advertise, nil, 0, err
	}
	if c.MTU < 576 || c.MTU > 9000 {
		reason := "want 576-9000"
		if c.MTUFrom != "set" {
			reason += "; it comes from " + c.MTUFrom + ": set --mtu"
		}
		return advertise, nil, 0, &Error{"mtu", strconv.Itoa(c.MTU), reason}
	}
	return advertise, keys, profile, nil
}

// Store backends.
const (
	StoreGossip = "gossip"
	StoreEtcd   = "etcd"
)

// CheckStore checks the store flags (--store, --etcd-*): errors name the flag.
func (c *Config) CheckStore() error {
	switch c.Store {
	case "", StoreGossip:
		for _, f := range []struct{ name, v string }{{"etcd-endpoints", strings.Join(c.EtcdEndpoints, ",")}, {"etcd-prefix", c.EtcdPrefix},
			{"etcd-ca", c.EtcdCA}, {"etcd-cert", c.EtcdCert}, {"etcd-key", c.EtcdKey}} {
			if f.v != "" {
				return &Error{f.name, f.v, "needs --store etcd (the tables are in gossip unless told)"}
			}
		}
		return nil
	case StoreEtcd:
	default:
		return &Error{"store", c.Store, "want gossip (the default) or etcd"}
	}
	if len(c.EtcdEndpoints) == 0 {
		return &Error{"etcd-endpoints", "", "--store etcd needs the etcd cluster's client URLs, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379"}
	}
	for _, ep := range c.EtcdEndpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return &Error{"etcd-endpoints", ep, "want a client URL such as http://10.0.0.1:2379 or https://10.0.0.1:2379"}
		}
	}
	if p := strings.Trim(c.EtcdPrefix, "/"); c.EtcdPrefix != "" && (p == "" || len(p) > 128 || strings.ContainsAny(p, " \t\n")) {
		return &Error{"etcd-prefix", c.EtcdPrefix, "want a key path of up to 128 characters, such as /vxnet"}
	}
	if c.EtcdLeaseTTL != 0 && (c.EtcdLeaseTTL < 2*time.Second || c.EtcdLeaseTTL > time.Hour) {
		return &Error{"etcd-lease-ttl", c.EtcdLeaseTTL.String(), "want 2s to 1h"}
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		return &Error{"etcd-cert", c.EtcdCert, "give --etcd-cert and --etcd-key together"}
	}
	_, err := c.EtcdTLS()
	return err
}

// EtcdTLS is the TLS configuration for etcd, or nil when neither a CA nor
// a client certificate is given (and every endpoint is http).
func (c *Config) EtcdTLS() (*tls.Config, error) {
	https := false
	for _, ep := range c.EtcdEndpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if c.EtcdCA == "" && c.EtcdCert == "" && !https {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.EtcdCA != "" {
		pem, err := os.ReadFile(c.EtcdCA)
		if err != nil {
			return nil, &Error{"etcd-ca", c.EtcdCA, err.Error()}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &Error{"etcd-ca", c.EtcdCA, "holds no PEM certificate"}
		}
	}
	if c.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(c.EtcdCert, c.EtcdKey)
		if err != nil {
			return nil, &Error{"etcd-cert", c.EtcdCert, "with --etcd-key " + c.EtcdKey + ": " + err.Error()}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// CheckPorts refuses ports of one host that would collide: gossip (TCP
// and UDP) with VXLAN (UDP), and with the join service's (TCP) where it
// runs (joinService: the host has a join certificate).
func CheckPorts(gossip, vxlan, joinPort int, joinService bool) error {
	if vxlan == gossip {
		return &Error{"vxlan-port", strconv.Itoa(vxlan), fmt.Sprintf("gossip listens on UDP %d too: pick another (default 4789)", gossip)}
	}
	if joinService && joinPort == gossip {
		return &Error{"join-port", strconv.Itoa(joinPort), fmt.Sprintf("gossip listens on TCP %d too: pick another (default %d)", gossip, join.DefaultPort)}
	}
	return nil
}
