// Package api is the agent's HTTP+JSON API over a unix socket: the
// resources, the error document, a client and the server. The CLI uses
// the client; other programs may too. The server is NewHandler over a
// Backend (the agent is one), served by Serve: the routes, the decoding
// of request bodies and the error documents live here, so that whatever
// speaks the API, either side, needs this package only.
//
//	GET    /v1/networks              → []Network
//	POST   /v1/networks              NetworkCreate → Network
//	GET    /v1/networks/{name}       → Network
//	DELETE /v1/networks/{name}
//	GET    /v1/endpoints             → []Endpoint (every host's; ?all=true adds those of hosts that are down)
//	POST   /v1/endpoints             EndpointCreate → Endpoint
//	DELETE /v1/endpoints/{network}/{name}
//	GET    /v1/services              → []Service
//	POST   /v1/services              ServiceCreate → Service
//	GET    /v1/services/{network}/{name} → Service
//	DELETE /v1/services/{network}/{name}
//	GET    /v1/cluster/members       → []Member
//	GET    /v1/cluster/down          → []DownHost (down, not left: rows kept for their return)
//	POST   /v1/cluster/leave         ClusterLeave → ClusterLeave (202: the agent leaves the cluster and stops)
//	POST   /v1/cluster/forget        ClusterForget → ClusterForget (a host that is down, dropped by every host)
//	POST   /v1/cluster/rotate-keys   → KeyRotation (this host's session key)
//	POST   /v1/cluster/rotate-gossip-key → GossipKeyRotation (every member's, done)
//	GET    /v1/cluster/tokens        → []JoinToken
//	POST   /v1/cluster/tokens        JoinTokenCreate → JoinTokenCreated (the token, shown once)
//	DELETE /v1/cluster/tokens/{id}   → JoinToken (revoked)
//	GET    /v1/cluster/store         → StoreStatus
//	GET    /v1/stats                 → Stats (this host's data plane)
//	GET    /v1/store/export          → StoreDump (every row this host sees)
//	POST   /v1/store/import          StoreDump → StoreImport (the cluster tables' rows not there yet)
//
// Request bodies are one JSON object, decoded strictly: a field name must
// be spelled as documented, case included, an unknown field or a key given
// twice is refused, and a body may be at most 1 MiB.
//
// Errors are an Error document with an HTTP status: 400 for a bad
// request (Field names the offending field), 404, 409 for a conflict, 413
// for a body over the limit.
package api

import (
	"encoding/json"
	"sort"
	"time"
)

// Network is a network as the API shows it.
type Network struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Scope   string `json:"scope"` // "global" or "local"
	VNI     uint32 `json:"vni,omitempty"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ipRange,omitempty"`
	// Subnet6, Gateway6, IPRange6: a dual-stack network's IPv6 side
	// (Subnet is then IPv4).
	Subnet6  string `json:"subnet6,omitempty"`
	Gateway6 string `json:"gateway6,omitempty"`
	IPRange6 string `json:"ipRange6,omitempty"`
	Internal bool   `json:"internal,omitempty"`
	// Egress: containers reach beyond the network (through their host's
	// gateway, or a segment's router).
	Egress bool `json:"egress"`
	// ContainerGateway is the gateway a runtime gives containers that it
	// configures itself (Docker): the way out, or on an internal overlay
	// the way to vxnet's DNS alone; empty for none.
	ContainerGateway string `json:"containerGateway,omitempty"`
	// ContainerGateway6 is a dual-stack network's IPv6 way out, for the
	// same runtimes: its IPv6 gateway, empty when it has none or is
	// internal.
	ContainerGateway6 string `json:"containerGateway6,omitempty"`
	// AssignedBy is who gives endpoints their addresses: empty for vxnet's
	// IPAM, AssignedBySwarm for Docker swarm's manager.
	AssignedBy string            `json:"assignedBy,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// MTU is the largest MTU, and the default, of its containers on the
	// host that answers: the agent's --mtu, less what sealing takes on an
	// encrypted network (an endpoint may ask for less); 0 from an agent
	// that does not say.
	MTU     int       `json:"mtu,omitempty"`
	Creator string    `json:"creator"` // host that created it
	Created time.Time `json:"created"`
	// Blocks are the address blocks of a global network that hosts hold,
	// each with its holder (a host hands out addresses, --ip ones too,
	// only from blocks it holds), and OtherBlocks counts the rest: the
	// creator's to hand out (with etcd, free to any host). Only
	// GET /v1/networks/{name}?blocks=true fills them.
	Blocks      []AddressBlock `json:"blocks,omitempty"`
	OtherBlocks uint64         `json:"otherBlocks,omitempty"`
}

// AddressBlock is one address block of a network and the host holding it.
type AddressBlock struct {
	Block string `json:"block"`
	Host  string `json:"host"`
}

// OptionValue reads a network option's value as the agent does: an empty
// one (Docker's --opt KEY alone, the CLI's -o KEY) is the "true" it stands
// for.
func OptionValue(v string) string {
	if v == "" {
		return "true"
	}
	return v
}

// NetworkCreate is the body of POST /v1/networks.
type NetworkCreate struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"` // default "overlay"
	Subnet  string `json:"subnet,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ipRange,omitempty"`
	// Subnet6 makes the network dual stack: its IPv6 subnet beside the
	// IPv4 Subnet (which it then needs); every endpoint gets an address
	// of each. Gateway6 and IPRange6 are as Gateway and IPRange.
	Subnet6  string `json:"subnet6,omitempty"`
	Gateway6 string `json:"gateway6,omitempty"`
	IPRange6 string `json:"ipRange6,omitempty"`
	// AuxAddresses: NAME → address kept out of use, of either family.
	AuxAddresses map[string]string `json:"auxAddresses,omitempty"`
	Internal     bool              `json:"internal,omitempty"`
	Options      map[string]string `json:"options,omitempty"`
	// AssignedBy: empty, vxnet's IPAM hands out the addresses; or
	// AssignedBySwarm, Docker swarm's manager does, and every endpoint
	// comes with its address (EndpointCreate.Assigned).
	AssignedBy string `json:"assignedBy,omitempty"`
}

// AssignedBySwarm is NetworkCreate.AssignedBy of a network whose addresses
// Docker swarm's manager hands out (a swarm-scoped network on the vxnet
// plugin).
const AssignedBySwarm = "docker-swarm"

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	Host      string   `json:"host"`      // the host it runs on
	VTEP      string   `json:"vtep"`      // that host's underlay address
	MAC       string   `json:"mac"`       // its MAC on the overlay
	Addresses []string `json:"addresses"` // "ip/prefix"
	Aliases   []string `json:"aliases,omitempty"`
	Service   string   `json:"service,omitempty"`
	Netns     string   `json:"netns,omitempty"`    // on its host
	Ifname    string   `json:"ifname,omitempty"`   // inside the namespace
	Publish   []string `json:"publish,omitempty"`  // HOSTPORT:CONTAINERPORT/PROTO (nat)
	SRVPorts  []string `json:"srvPorts,omitempty"` // NAME=PORT/PROTO, in DNS as SRV records
	DHCP      *DHCP    `json:"dhcp,omitempty"`     // the lease, when a DHCP server gave the address
	// State is empty for an endpoint in service and StateDown for one its
	// host took out of service, with Reason saying why (its name was taken
	// by an earlier endpoint elsewhere, or it lost its address and none
	// could replace it). Only its own host lists a down endpoint; remove
	// it with endpoint rm.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Labels are the runtime's notes (for a Docker container: its ID and
	// name).
	Labels map[string]string `json:"labels,omitempty"`
}

// StateDown is Endpoint.State of an endpoint out of service.
const StateDown = "down"

// StateHostDown is Endpoint.State of an endpoint whose host is down
// (failed or stopped without leaving): the cluster keeps it for the
// host's return. Listed only when asked for (GET /v1/endpoints?all=true);
// Reason says since when, and until when its name is held.
const StateHostDown = "host down"

// DHCP is an endpoint's lease from the physical segment's DHCP server
// (transparent networks with -o dhcp=true).
type DHCP struct {
	Uplink   string    `json:"uplink,omitempty"` // the NIC the lease was taken on
	Server   string    `json:"server"`
	Router   string    `json:"router,omitempty"`
	Seconds  int64     `json:"seconds"`  // lease time
	Acquired time.Time `json:"acquired"` // last granted or renewed
}

// EndpointCreate is the body of POST /v1/endpoints.
type EndpointCreate struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	Netns   string `json:"netns"` // a name under /var/run/netns, or a path
	Ifname  string `json:"ifname,omitempty"`
	IP      string `json:"ip,omitempty"`  // a static address
	IP6     string `json:"ip6,omitempty"` // a static IPv6 address, on a dual-stack network
	// MAC is the endpoint's MAC on the overlay, as kernel VXLAN peers and
	// captures see it (default: one derived from its address).
	MAC     string   `json:"mac,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	// HNSNamespace (Windows): the HNS namespace, a pod's (what a CNI
	// runtime passes as CNI_NETNS), to attach the HNS endpoint to; empty
	// for one its runtime attaches itself.
	HNSNamespace string `json:"hnsNamespace,omitempty"`
	Service      string `json:"service,omitempty"`
	// Publish: HOSTPORT:CONTAINERPORT[/tcp|udp], nat networks only.
	Publish []string `json:"publish,omitempty"`
	// SRVPorts: NAME=PORT[/tcp|udp] (tcp by default), ports the endpoint
	// serves: DNS answers _NAME._PROTO.SERVICE (SERVICE is Service, or
	// Name without one) with SRV records "0 0 PORT NAME.NETWORK.", one per
	// endpoint of the service. NAME is a service name such as http.
	SRVPorts []string `json:"srvPorts,omitempty"`
	// MTU of the container's device: at most the agent's (--mtu), which
	// is the default.
	MTU int `json:"mtu,omitempty"`
	// Labels: notes kept with the endpoint, shown by endpoint inspect.
	Labels map[string]string `json:"labels,omitempty"`
	// Handover: make the device in the host's namespace, named Ifname
	// (which must start with HandoverPrefix) and left unconfigured, for the container runtime to move into the
	// container at Netns (a path that may not exist yet) and give its
	// addresses and routes; Docker's network plugins work this way. The
	// device outlives an agent restart.
	Handover bool `json:"handover,omitempty"`
	// Reserved: IP was reserved beforehand (Docker's IPAM plugin asks for
	// an address before the endpoint); the endpoint takes the reservation
	// over.
	Reserved bool `json:"reserved,omitempty"`
	// Assigned: IP was given by the network's own authority (its
	// AssignedBy); vxnet's IPAM has no part in it.
	Assigned bool `json:"assigned,omitempty"`
}

// HandoverPrefix starts the name of every handover device
// (EndpointCreate.Handover): the agent removes those left on its host
// when it starts.
const HandoverPrefix = "vxd"

// Service is a name over the endpoints that joined it (EndpointCreate's
// Service), per network. A service created (ServiceCreate) in vip mode
// has virtual IPs: DNS answers its name with them, tasks.NAME with every
// endpoint's address, and connections to a VIP are spread over the
// endpoints. Otherwise (dnsrr mode, or endpoints that joined a name no
// one created) DNS answers the name with all their addresses in a new
// order each time.
type Service struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	Endpoints []string `json:"endpoints"` // NAME@HOST
	Addresses []string `json:"addresses"`
	// EndpointMode is "vip" or "dnsrr" for a created service, empty for
	// a name endpoints joined with none created.
	EndpointMode string   `json:"endpointMode,omitempty"`
	VIPs         []string `json:"vips,omitempty"`
	// Publish are the ports published on every host (PUBLISHED:TARGET/PROTO).
	Publish []string `json:"publish,omitempty"`
	// Flows counts the connections this host's containers made to the
	// VIPs, in all and by endpoint (NAME@HOST), since the agent started.
	Flows     uint64            `json:"flows,omitempty"`
	TaskFlows map[string]uint64 `json:"taskFlows,omitempty"`
	// Moved counts those whose endpoint went away while they lasted.
	Moved   uint64    `json:"moved,omitempty"`
	Creator string    `json:"creator,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// ServiceCreate creates a service on a network. Endpoints join it by
// name (EndpointCreate.Service), before or after.
type ServiceCreate struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	// EndpointMode: "vip" (the default) or "dnsrr".
	EndpointMode string `json:"endpointMode,omitempty"`
	// VIP is the IPv4 VIP (of a network with an IPv4 subnet): "" or
	// "auto" for the next free address, or one of the range. VIP6 is the
	// IPv6 one, for a network with an IPv6 subnet.
	VIP  string `json:"vip,omitempty"`
	VIP6 string `json:"vip6,omitempty"`
	// Publish: ports published on every host, PUBLISHED:TARGET[/PROTO].
	Publish []string `json:"publish,omitempty"`
}

// Reservation is an address a runtime reserved before its endpoint
// (Docker's IPAM plugin), still reserved: held by an endpoint that took it
// over, or not yet (or no more).
type Reservation struct {
	Network string    `json:"network"`
	Address string    `json:"address"`
	Held    bool      `json:"held"`
	Since   time.Time `json:"since"` // zero: from before the agent started
}

// DownHost is a host this agent sees down: it failed or stopped without
// leaving, and the cluster keeps its rows (its networks, endpoints,
// services) for its return. Hosts that left are not down hosts.
type DownHost struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"` // when this agent saw it go
	// EndpointCount is how many endpoints it has; their names stay its
	// own until NamesHeldUntil (zero with none, or once the hold is over).
	EndpointCount  int       `json:"endpointCount"`
	NamesHeldUntil time.Time `json:"namesHeldUntil,omitzero"`
}

// ClusterForget is the body of POST /v1/cluster/forget, and its answer:
// a host that is down (failed or stopped without leaving) is forgotten by
// the whole cluster, its endpoints and address blocks dropped at once
// rather than kept for its return for the reap time.
type ClusterForget struct {
	Name string `json:"name"`
	// Endpoints are the host's endpoints dropped with it, NETWORK/NAME
	// (in the answer).
	Endpoints []string `json:"endpoints,omitempty"`
}

// Member is a cluster member.
type Member struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"` // gossip host:port
	VTEP    string `json:"vtep"`
	Version string `json:"version,omitempty"`
	Self    bool   `json:"self,omitempty"`
	// HostKey is the member's public key for encrypted networks (X25519,
	// base64); empty when it announces none.
	HostKey string `json:"hostKey,omitempty"`
	// Store is where the member keeps the tables: gossip or etcd.
	Store string `json:"store,omitempty"`
}

// StoreStatus is the state of the store that keeps the cluster's tables,
// as this host sees it.
type StoreStatus struct {
	Backend string `json:"backend"` // gossip or etcd
	// Up: the store takes writes (gossip: always; etcd: reachable and
	// this host's lease held). While it is down the data plane keeps
	// forwarding on the last tables and changes fail with "unavailable".
	Up        bool      `json:"up"`
	Since     time.Time `json:"since,omitzero"` // when Up last changed
	Error     string    `json:"error,omitempty"`
	Endpoints []string  `json:"endpoints,omitempty"` // etcd's client URLs
	Prefix    string    `json:"prefix,omitempty"`    // etcd: where the tables are
	Revision  int64     `json:"revision,omitempty"`  // etcd: the revision this host has seen
	Rows      int       `json:"rows"`                // rows this host holds, every owner's
}

// StoreDumpFormat names the layout of a StoreDump.
const StoreDumpFormat = "vxnet-tables/1"

// StoreDump is the cluster's tables as a file: `vxnet store export`
// writes it (from an agent, or from etcd), `vxnet store import` reads it.
type StoreDump struct {
	Format   string     `json:"format"` // StoreDumpFormat
	Store    string     `json:"store"`  // where it was read: gossip or etcd
	Exported time.Time  `json:"exported"`
	Rows     []StoreRow `json:"rows"`
}

// StoreRow is one row of a StoreDump: its value as JSON where it is JSON
// (every table's today), else in base64.
type StoreRow struct {
	Table  string          `json:"table"`
	Key    string          `json:"key"`
	Owner  string          `json:"owner"` // the host that wrote it
	Value  json.RawMessage `json:"value,omitempty"`
	Base64 []byte          `json:"base64,omitempty"`
}

// NewStoreRow makes a row of a dump.
func NewStoreRow(table, key, owner string, value []byte) StoreRow {
	r := StoreRow{Table: table, Key: key, Owner: owner}
	if json.Valid(value) {
		r.Value = append(json.RawMessage(nil), value...)
	} else {
		r.Base64 = append([]byte(nil), value...)
	}
	return r
}

// Bytes is the row's value as the tables hold it.
func (r StoreRow) Bytes() []byte {
	if r.Value != nil {
		return r.Value
	}
	return r.Base64
}

// StoreImport says what an import did with a dump's rows.
type StoreImport struct {
	Written int `json:"written"` // rows written
	Present int `json:"present"` // already in the tables: left alone
	// HostRows are rows of one host (endpoints, address blocks): not
	// imported, since each host writes its own from its state file.
	HostRows int      `json:"hostRows"`
	Refused  []string `json:"refused,omitempty"` // bad rows, each with why
}

// ClusterLeave asks this host's agent to leave the cluster for good: its
// endpoints' rows and etcd lease are withdrawn everywhere at once (a stop
// keeps them for its return), and the agent stops. Refused while the host
// has endpoints, unless Force (their containers lose the network). The
// answer names the endpoints left behind.
type ClusterLeave struct {
	Force     bool     `json:"force,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"` // in the answer: this host's, withdrawn
}

// KeyRotation is a rotation of this host's session key: every key of its
// encrypted networks' traffic with other hosts is replaced, from InUseAt
// on, without a packet lost.
type KeyRotation struct {
	InUseAt time.Time `json:"inUseAt"`
}

// GossipKeyRotation is a gossip key rotation done: every member
// encrypts with the new key and holds no other.
type GossipKeyRotation struct {
	Fingerprint string   `json:"fingerprint"` // the new key's (not the key)
	Hosts       []string `json:"hosts"`
	Took        string   `json:"took"`
	// Down are the hosts down at the end (failed or stopped, not left):
	// they did not get the new key, and come back with a join token.
	Down []string `json:"down,omitempty"`
}

// JoinToken is a join token as the API shows it: never its secret.
type JoinToken struct {
	ID      string    `json:"id"`
	State   string    `json:"state"` // "active", "expired" or "revoked"
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Revoked time.Time `json:"revoked,omitzero"`
}

// JoinTokenCreate asks for a new join token.
type JoinTokenCreate struct {
	// TTL, as Go writes durations ("24h"); empty or "0": the token never
	// expires.
	TTL string `json:"ttl,omitempty"`
	// Rotate revokes every active token once the new one is written.
	Rotate bool `json:"rotate,omitempty"`
}

// JoinTokenCreated is a new join token, with the one time its secret is
// shown.
type JoinTokenCreated struct {
	JoinToken
	// Token is the whole token for vxnet cluster join --token.
	Token string `json:"token"`
	// Join is the command a new host runs.
	Join string `json:"join"`
	// Revoked lists the tokens a rotation revoked.
	RevokedIDs []string `json:"revokedIds,omitempty"`
}

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`            // "bad_request", "not_found", "conflict", "busy", "too_large", "unavailable", "internal"
	Message string `json:"message"`         // for a person
	Field   string `json:"field,omitempty"` // the offending field, when one is at fault
}

func (e *Error) Error() string { return e.Message }

// Error codes.
const (
	CodeBadRequest = "bad_request"
	CodeNotFound   = "not_found"
	CodeConflict   = "conflict"
	CodeBusy       = "busy"      // the resource is being changed: try again (HTTP 409)
	CodeTooLarge   = "too_large" // a request body over the limit (HTTP 413)
	// CodeMethodNotAllowed: the resource exists, but not with that method
	// (HTTP 405, with an Allow header).
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"
	// CodeUnavailable: the store of the cluster's tables cannot take the
	// change now (etcd unreachable); retry once it is back (HTTP 503).
	CodeUnavailable = "unavailable"
)

// Services groups endpoints by (network, service), leaving out those
// that are down; by network, then name.
func Services(eps []Endpoint) []Service {
	byKey := map[string]*Service{}
	for _, e := range eps {
		if e.Service == "" || e.State != "" { // a down endpoint serves nothing
			continue
		}
		k := e.Network + "/" + e.Service
		s := byKey[k]
		if s == nil {
			s = &Service{Name: e.Service, Network: e.Network}
			byKey[k] = s
		}
		s.Endpoints = append(s.Endpoints, e.Name+"@"+e.Host)
		s.Addresses = append(s.Addresses, e.Addresses...)
	}
	out := make([]Service, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Stats are the counters of this host's data plane since the agent
// started: packets through its containers' devices and the underlay, and
// every packet dropped, by reason (the reasons the Prometheus metric
// vxnet_dataplane_drops_total names). The fields are those of the data
// plane's own counters, one for one.
type Stats struct {
	PortRxPackets     uint64            `json:"portRxPackets"`     // packets read from containers
	PortTxPackets     uint64            `json:"portTxPackets"`     // packets written to containers
	UnderlayRxPackets uint64            `json:"underlayRxPackets"` // VXLAN datagrams received
	UnderlayTxPackets uint64            `json:"underlayTxPackets"` // VXLAN datagrams sent (each flood copy counts)
	UnderlayRxBytes   uint64            `json:"underlayRxBytes"`
	UnderlayTxBytes   uint64            `json:"underlayTxBytes"`
	Flooded           uint64            `json:"flooded"`         // packets replicated to every host of a network
	NeighborReplies   uint64            `json:"neighborReplies"` // ARP and neighbour-discovery messages sent
	Coalesced         uint64            `json:"coalesced"`       // received segments merged into super-packets or redundant ACKs left out
	ICMPTooBig        uint64            `json:"icmpTooBig"`      // ICMP "too big" messages sent to containers
	NeighborIn        uint64            `json:"neighborIn"`      // ARP and ND messages from the underlay learnt from
	UplinkRxFrames    uint64            `json:"uplinkRxFrames"`  // frames read from uplinks (transparent, l2bridge)
	UplinkTxFrames    uint64            `json:"uplinkTxFrames"`  // packets sent out of uplinks
	ServiceFlows      uint64            `json:"serviceFlows"`    // flows to a service's VIP that chose a task
	FlowsEvicted      uint64            `json:"flowsEvicted"`    // live flows pushed out of a full flow table
	Drops             map[string]uint64 `json:"drops"`           // by reason
}
