package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is the gossip port (TCP and UDP), as Docker Swarm's.
const DefaultPort = 7946

// Profile picks memberlist's timings.
type Profile int

const (
	// ProfileLAN suits a data-centre network: memberlist's LAN defaults
	// (probe every second, gossip every 200 ms, push/pull every 30 s).
	ProfileLAN Profile = iota
	// ProfileFast suits tests and small clusters on one fast network:
	// failures are detected in about two seconds and push/pull runs every
	// 5 s. It costs more packets per second per node.
	ProfileFast
)

func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileFast:
		return "fast"
	}
	return fmt.Sprintf("profile(%d)", int(p))
}

// Config configures a Node. Zero values take the defaults given.
type Config struct {
	// Name is the node's unique name in the cluster. Required.
	Name string
	// BindAddr and BindPort are where the node listens. Defaults
	// "0.0.0.0" and 7946. Ignored when Transport is set.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what other nodes dial. Default:
	// the bind address (or the first private address when binding to all)
	// and BindPort.
	AdvertiseAddr string
	AdvertisePort int
	// Seeds are "host:port" addresses to join. A node with no seeds starts
	// a cluster of its own.
	Seeds []string
	// JoinRetry is the pause between join attempts while no seed answers.
	// Default 1 s.
	JoinRetry time.Duration
	// RejoinInterval is how often seeds that are not members are joined
	// again, which heals partitions. Default 30 s (LAN), 2 s (fast); a
	// negative value disables it.
	RejoinInterval time.Duration
	// Profile picks the timings. Default ProfileLAN.
	Profile Profile
	// Keys is the keyring for AES-GCM encryption of all gossip (16, 24 or
	// 32 bytes each); the first is the primary key used to encrypt. Empty
	// means no encryption.
	Keys [][]byte
	// Meta is this node's metadata, carried to every member.
	Meta Meta
	// Transport replaces the UDP/TCP transport: memnet's in-memory one
	// runs many nodes in one process (benchmarks and tests).
	Transport memberlist.NodeAwareTransport
	// Logger receives membership logs; nil discards.
	Logger *slog.Logger

	// Tune, when set, adjusts memberlist's config last. For tests and
	// benchmarks (an ephemeral port, a shorter interval); nil in production.
	Tune func(*memberlist.Config)
}

// Meta is the metadata a node publishes to the cluster.
type Meta struct {
	// VTEP is the node's VXLAN underlay address.
	VTEP string `json:"vtep,omitempty"`
	// Version is the node's vxnet version.
	Version string `json:"version,omitempty"`
	// HostKey and SessionKey are the node's public keys for encrypted
	// networks (X25519, base64), AES whether its CPU has AES
	// instructions; empty for a node that announces none.
	HostKey    string `json:"hostKey,omitempty"`
	SessionKey string `json:"sessionKey,omitempty"`
	// NextKey and PreviousKey are the session keys of a rotation under
	// way: announced before use, kept after (agent/seal.go).
	NextKey     string `json:"nextKey,omitempty"`
	PreviousKey string `json:"previousKey,omitempty"`
	AES         bool   `json:"aes,omitempty"`
	// Store is where the node keeps the replicated tables: "etcd", or
	// empty for gossip (the default, and every node before stores were
	// chosen). A cluster keeps its tables in one store.
	Store string `json:"store,omitempty"`
	// StorePrefix is where in that store the tables are (etcd: the key
	// prefix); the same on every node of a cluster.
	StorePrefix string `json:"storePrefix,omitempty"`
	// GossipKeys are the fingerprints of the gossip keys the node holds,
	// comma-separated, the one it encrypts with first: how a key
	// rotation sees each step done everywhere (agent/gossipkey.go).
	GossipKeys string `json:"gossipKeys,omitempty"`
}

// DefaultLANConfig returns a config with the LAN profile.
func DefaultLANConfig(name string) Config {
	return Config{Name: name, Profile: ProfileLAN}
}

// DefaultFastConfig returns a config with the fast profile.
func DefaultFastConfig(name string) Config {
	return Config{Name: name, Profile: ProfileFast}
}

func (c *Config) setDefaults() {
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if c.BindPort == 0 {
		c.BindPort = DefaultPort
	}
	if c.JoinRetry == 0 {
		c.JoinRetry = time.Second
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 30 * time.Second
		if c.Profile == ProfileFast {
			c.RejoinInterval = 2 * time.Second
		}
	}
}

func (c *Config) validate() error {
	if c.Name == "" {
		return errors.New("gossip: config Name is empty: every node needs a unique name")
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fmt.Errorf("gossip: config BindPort %d out of range 0-65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("gossip: config AdvertisePort %d out of range 0-65535", c.AdvertisePort)
	}
	if c.Transport == nil && net.ParseIP(c.BindAddr) == nil {
		return fmt.Errorf("gossip: config BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return fmt.Errorf("gossip: config AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	for i, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("gossip: config Seeds[%d] %q: want host:port", i, s)
		}
	}
	for i, k := range c.Keys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("gossip: config Keys[%d]: %d bytes, want 16, 24 or 32 (AES-128/192/256)", i, n)
		}
	}
	if c.Profile != ProfileLAN && c.Profile != ProfileFast {
		return fmt.Errorf("gossip: config Profile %d unknown", int(c.Profile))
	}
	return nil
}

// memberlistConfig turns c into memberlist's config.
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	var mc *memberlist.Config
	switch c.Profile {
	case ProfileFast:
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 200 * time.Millisecond
		mc.SuspicionMult = 2
		mc.SuspicionMaxTimeoutMult = 2
		mc.GossipInterval = 100 * time.Millisecond
		mc.PushPullInterval = 5 * time.Second
		mc.GossipToTheDeadTime = 5 * time.Second
	default:
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = c.Name
	mc.BindAddr, mc.BindPort = c.BindAddr, c.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = c.AdvertiseAddr, c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	// memberlist's LZW compression allocates its tables for every message
	// (a quarter of the CPU of a 100-node in-process cluster went there);
	// our messages are compact binary already and the LAN is cheap.
	mc.EnableCompression = false
	// A restarted node keeps its name, maybe not its address.
	mc.DeadNodeReclaimTime = mc.GossipToTheDeadTime
	if c.Transport != nil {
		mc.Transport = c.Transport
	}
	if len(c.Keys) > 0 {
		kr, err := memberlist.NewKeyring(c.Keys, c.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	return mc, nil
}
