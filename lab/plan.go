package lab

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
)

// Fixed names inside the lab's namespaces. They live in namespaces the lab
// owns, so they never clash with the machine's interfaces.
const (
	bridgeDev   = "br0"  // the underlay switch, in <ID>-bridge
	underlayDev = "u0"   // each host's underlay interface
	outsideDev  = "eth0" // the outside's interface, in <ID>-outside
	outsidePort = "out"  // the outside's port on br0 (hosts' ports are hN)
)

// outsideOctet is the last byte of the outside's underlay address. It is
// above MaxHosts, so no host ever takes it.
const outsideOctet = 250

// OutsideName is the one name the demo's DNS server in the outside
// answers (with the outside's address). .test is reserved (RFC 2606), so it
// is nobody's real name, and the demo's network is not called "test", so it
// is none of vxnet's names either: an agent answers it only by forwarding.
const OutsideName = "outside.test"

// SubnetFor returns the underlay /24 of a lab: one of the 512 /24s of
// 198.18.0.0/15, picked by a hash of the ID, so two labs with different IDs
// usually differ in addresses too (they never share a link either way).
func SubnetFor(id string) netip.Prefix {
	h := fnv.New32a()
	h.Write([]byte(id))
	k := h.Sum32() % 512
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(k/256), byte(k % 256), 0}), 24)
}

// HostAddr returns host i's (1-based) underlay address in subnet.
func HostAddr(subnet netip.Prefix, i int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// HostName is host i's name (1-based): h1, h2, ...; it is also the agent's
// cluster member name.
func HostName(i int) string { return "h" + strconv.Itoa(i) }

// HostNetns is the namespace of host i.
func HostNetns(id string, i int) string { return id + "-" + HostName(i) }

// BridgeNetns is the namespace that holds the underlay bridge.
func BridgeNetns(id string) string { return id + "-bridge" }

// OutsideNetns is the namespace of the outside: a machine on the underlay
// switch that is not a host, standing for the world beyond the cluster.
func OutsideNetns(id string) string { return id + "-outside" }

// OutsideAddr returns the outside's underlay address in subnet (.250).
func OutsideAddr(subnet netip.Prefix) netip.Addr { return HostAddr(subnet, outsideOctet) }

// ContainerName is the endpoint name of container j on host i: h1c1, ...
func ContainerName(i, j int) string { return fmt.Sprintf("h%dc%d", i, j) }

// ContainerNetns is the namespace of container j on host i.
func ContainerNetns(id string, i, j int) string { return fmt.Sprintf("%s-h%d-c%d", id, i, j) }

var netnsPattern = regexp.MustCompile(`^-(bridge|outside|h[0-9]+(-c[0-9]+)?)$`)

// IsLabNetns reports whether a namespace name follows lab id's pattern
// (<id>-bridge, <id>-outside, <id>-hN, <id>-hN-cM). Down deletes exactly these, so a lab
// whose state file was lost still comes down, and another lab's namespaces
// (even one whose ID starts with this ID) are left alone.
func IsLabNetns(id, name string) bool {
	if len(name) <= len(id) || name[:len(id)] != id {
		return false
	}
	return netnsPattern.MatchString(name[len(id):])
}

// newState lays out a lab from a validated Config: names, addresses and
// paths, with no process yet.
func newState(c Config) *State {
	s := &State{
		ID:          c.ID,
		Dir:         c.Dir,
		Binary:      c.Binary,
		Subnet:      SubnetFor(c.ID),
		BridgeNetns: BridgeNetns(c.ID),
		GossipPort:  c.GossipPort,
		Profile:     c.Profile,
		LogLevel:    c.LogLevel,
		Store:       c.Store,
	}
	if c.GossipKey {
		// Joins hand the gossip key over: with one, every agent serves
		// them.
		s.GossipKeyFile = filepath.Join(c.Dir, gossipKeyName)
		s.JoinCertFile, s.JoinKeyFile = filepath.Join(c.Dir, joinCertName), filepath.Join(c.Dir, joinKeyName)
	}
	s.Outside = OutsideState{Netns: OutsideNetns(c.ID), Addr: OutsideAddr(s.Subnet), BridgePort: outsidePort}
	for i := 1; i <= c.Hosts; i++ {
		hdir := filepath.Join(c.Dir, HostName(i))
		s.Hosts = append(s.Hosts, HostState{
			Name:       HostName(i),
			Netns:      HostNetns(c.ID, i),
			Addr:       HostAddr(s.Subnet, i),
			BridgePort: HostName(i),
			Socket:     filepath.Join(hdir, "api.sock"),
			DataDir:    filepath.Join(hdir, "data"),
			Log:        filepath.Join(hdir, "agent.log"),
		})
	}
	return s
}
