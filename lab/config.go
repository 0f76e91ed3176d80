package lab

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/vxnet/vxnet/gossip"
)

// Defaults of Config.
const (
	DefaultID           = "vxlab"
	DefaultHosts        = 3
	DefaultBaseDir      = "/run/vxnet-lab"
	DefaultProfile      = "fast"
	DefaultLogLevel     = "info"
	DefaultGossipPort   = gossip.DefaultPort // the agent's default: its agents need no --gossip-port
	DefaultReadyTimeout = 30 * time.Second
	// MaxHosts bounds Hosts: host addresses are .1 to .MaxHosts of one /24.
	MaxHosts = 200
	// maxIDLen keeps namespace names and socket paths short.
	maxIDLen = 16
)

// Config describes a lab. Only ID and Dir matter to Open and Down.
type Config struct {
	// ID names the lab: namespaces are <ID>-bridge, <ID>-h1, ...,
	// <ID>-h1-c1, .... Lower-case letters and digits, inner hyphens allowed,
	// at most 16 characters. Default "vxlab".
	ID string
	// Hosts is how many hosts (agents) to build, 1 to MaxHosts. Default 3.
	Hosts int
	// Dir holds the state file and, per host, the API socket, the data
	// directory and the agent's log. Default /run/vxnet-lab/<ID>.
	Dir string
	// Binary is the vxnet executable that agents, CLI calls and probes run.
	// Default: the running executable (a test must set it: a test binary
	// is not vxnet).
	Binary string
	// Profile is the agents' gossip timing profile, "lan" or "fast".
	// Default "fast".
	Profile string
	// LogLevel is the agents' log level: debug, info, warn or error.
	// Default "info".
	LogLevel string
	// GossipPort is the agents' gossip port. Default 7946.
	GossipPort int
	// ReadyTimeout bounds each wait: an agent's API coming up, the cluster
	// converging, an endpoint appearing everywhere. Default 30 s.
	ReadyTimeout time.Duration
	// Store is where the agents keep the tables: "gossip" (default) or
	// "etcd": an etcd server (the etcd binary on PATH, Debian's
	// etcd-server) in the outside namespace, at its address, port 2379.
	Store string
	// GossipKey: the agents encrypt their gossip with a key the lab makes
	// (<Dir>/gossip.key, mode 0600). Encrypted networks need it: their
	// keys travel in gossip.
	GossipKey bool
	// Out receives progress lines meant for a person. Nil discards.
	Out io.Writer
}

// DefaultConfig returns a 3-host lab named "vxlab" in /run/vxnet-lab/vxlab.
func DefaultConfig() Config {
	return Config{ID: DefaultID, Hosts: DefaultHosts}.withDefaults()
}

var idPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// withDefaults fills every zero field.
func (c Config) withDefaults() Config {
	if c.ID == "" {
		c.ID = DefaultID
	}
	if c.Hosts == 0 {
		c.Hosts = DefaultHosts
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(DefaultBaseDir, c.ID)
	}
	if c.Binary == "" {
		if exe, err := os.Executable(); err == nil {
			c.Binary = exe
		}
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.GossipPort == 0 {
		c.GossipPort = DefaultGossipPort
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Store == "" {
		c.Store = StoreGossip
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c
}

// validateID checks an ID alone (enough for Open and Down).
func validateID(id string) error {
	if len(id) > maxIDLen || !idPattern.MatchString(id) {
		return fmt.Errorf("lab id %q: want lower-case letters and digits with inner hyphens, at most %d characters", id, maxIDLen)
	}
	return nil
}

// Check reports what is wrong with c's settings, with defaults filled in,
// or nil: what Up and Demo would refuse before building anything.
func (c Config) Check() error { return c.withDefaults().validate() }

// validate checks a Config after withDefaults.
func (c Config) validate() error {
	if err := validateID(c.ID); err != nil {
		return err
	}
	if c.Hosts < 1 || c.Hosts > MaxHosts {
		return fmt.Errorf("hosts %d: want 1 to %d", c.Hosts, MaxHosts)
	}
	if c.Profile != "lan" && c.Profile != "fast" {
		return fmt.Errorf("profile %q: want lan or fast", c.Profile)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.GossipPort < 1 || c.GossipPort > 65535 {
		return fmt.Errorf("gossip port %d: want 1 to 65535", c.GossipPort)
	}
	if c.ReadyTimeout < 0 {
		return fmt.Errorf("ready timeout %v: want a positive duration", c.ReadyTimeout)
	}
	if c.Store != StoreGossip && c.Store != StoreEtcd {
		return fmt.Errorf("store %q: want gossip or etcd", c.Store)
	}
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("lab directory %q: want an absolute path", c.Dir)
	}
	// Unix socket paths are limited to 108 bytes: <Dir>/h200/api.sock.
	if len(c.Dir)+len("/h200/api.sock") >= 108 {
		return fmt.Errorf("lab directory %q is too long for unix socket paths", c.Dir)
	}
	return nil
}

// Stores the agents of a lab can keep their tables in.
const (
	StoreGossip = "gossip"
	StoreEtcd   = "etcd"
)
