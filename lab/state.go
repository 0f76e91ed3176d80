package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// StateFile is the name of the state file in the lab directory.
const StateFile = "state.json"

// State is what a lab is made of, written to <Dir>/state.json whenever it
// changes so that another process can show it or take it down.
type State struct {
	ID          string       `json:"id"`
	Dir         string       `json:"dir"`
	Binary      string       `json:"binary"`
	Subnet      netip.Prefix `json:"subnet"`
	BridgeNetns string       `json:"bridgeNetns"`
	GossipPort  int          `json:"gossipPort"`
	Profile     string       `json:"profile"`         // agents' gossip profile
	LogLevel    string       `json:"logLevel"`        // agents' log level
	Store       string       `json:"store,omitempty"` // where the agents keep the tables: gossip (or empty) or etcd
	// GossipKeyFile is the agents' --gossip-key-file; empty: plain gossip.
	GossipKeyFile string `json:"gossipKeyFile,omitempty"`
	// JoinCertFile and JoinKeyFile are the agents' join certificate and
	// key (--join-cert, --join-key: every agent serves joins, so join
	// tokens work in the lab); empty: none (plain gossip, or an older lab).
	JoinCertFile string      `json:"joinCertFile,omitempty"`
	JoinKeyFile  string      `json:"joinKeyFile,omitempty"`
	Hosts        []HostState `json:"hosts"`
	// Outside is the namespace beyond the cluster; zero in the state of a
	// lab built before it had one.
	Outside OutsideState `json:"outside,omitzero"`
	// Network is the overlay network the demo created, if any.
	Network    string           `json:"network,omitempty"`
	Containers []ContainerState `json:"containers,omitempty"`
}

// HostState is one host: its namespace, underlay address and agent.
type HostState struct {
	Name       string     `json:"name"`  // h1: also the agent's member name
	Netns      string     `json:"netns"` // <ID>-h1
	Addr       netip.Addr `json:"addr"`  // underlay address (VTEP)
	BridgePort string     `json:"bridgePort"`
	Socket     string     `json:"socket"` // the agent's API socket
	DataDir    string     `json:"dataDir"`
	Log        string     `json:"log"` // the agent's stdout and stderr
	Agent      Proc       `json:"agent,omitzero"`
}

// OutsideState is the outside: a namespace joined to the underlay switch
// like a host, but with no agent and no route to any overlay subnet, so a
// container reaches it only through its host's gateway (masqueraded), as it
// would reach the world beyond a real cluster. The agents forward the DNS
// names they do not own to it (--dns-upstream); the demo runs a TCP echo
// server and a DNS server there.
type OutsideState struct {
	Netns      string     `json:"netns"` // <ID>-outside
	Addr       netip.Addr `json:"addr"`  // .250 of the lab's /24
	BridgePort string     `json:"bridgePort"`
	Echo       Proc       `json:"echo,omitzero"` // the demo's TCP echo server
	// Etcd is the etcd server of a lab whose agents keep their tables in
	// etcd (Store etcd), at Addr:2379.
	Etcd Proc `json:"etcd,omitzero"`
	DNS  Proc `json:"dns,omitzero"` // the demo's DNS server (dnsmasq)
}

// ContainerState is one container (of the demo or of a chaos campaign): a
// namespace with an endpoint.
type ContainerState struct {
	Name    string     `json:"name"` // endpoint name, h1c1
	Host    string     `json:"host"` // h1
	Netns   string     `json:"netns"`
	Network string     `json:"network,omitempty"` // the endpoint's network, when not the demo's
	Addr    netip.Addr `json:"addr,omitzero"`
	Echo    Proc       `json:"echo,omitzero"` // the TCP echo server in it
}

// Proc identifies a process the lab started: its PID and its start time
// (clock ticks after boot, from /proc/PID/stat), so that a PID reused by
// another process after ours exited is never signalled. Zero: none.
type Proc struct {
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

// Host returns the host named name.
func (s *State) Host(name string) (*HostState, bool) {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i], true
		}
	}
	return nil, false
}

// Namespaces lists every namespace of the state: containers first, then
// hosts and the outside, then the bridge (the order Down deletes them in).
func (s *State) Namespaces() []string {
	var ns []string
	for _, c := range s.Containers {
		ns = append(ns, c.Netns)
	}
	for _, h := range s.Hosts {
		ns = append(ns, h.Netns)
	}
	if s.Outside.Netns != "" {
		ns = append(ns, s.Outside.Netns)
	}
	return append(ns, s.BridgeNetns)
}

// Save writes the state atomically (temporary file, then rename).
func (s *State) Save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, StateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	return nil
}

// LoadState reads the state file of the lab in dir. It returns ErrNotUp
// when there is none.
func LoadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNotUp, path)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := validateID(s.ID); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// statusDownHint is the commands that look at the lab and take it down.
func (s State) statusDownHint() string {
	return fmt.Sprintf("%s lab status --id %s; %s lab down --id %s", s.Binary, s.ID, s.Binary, s.ID)
}

// containerNetns names a new container namespace on host: ID-host-cN for
// the first N from on that no container in the state has (one an earlier
// run could not delete keeps its name). It returns the name and N.
func (s *State) containerNetns(host string, from int) (string, int) {
	for n := from; ; n++ {
		ns := s.ID + "-" + host + "-c" + strconv.Itoa(n)
		if !slices.ContainsFunc(s.Containers, func(o ContainerState) bool { return o.Netns == ns }) {
			return ns, n
		}
	}
}
