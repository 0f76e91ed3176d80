package hns

import "encoding/json"

// The model below marshals to the JSON of hcn's v2 schema (hcsshim
// v0.15.0, hcnnetwork.go and hcnendpoint.go): same field names, same order,
// omitempty where hcn has it. The one difference is on purpose: MacPool and
// Dns are pointers here and left out when nil, where hcn writes them as
// empty objects; HNS reads both the same. Fields hcn reports but vxnet does
// not use (Health) are not modelled and are dropped on decoding.

// NetworkType is the kind of an HNS network. The values are HNS's own and
// append-only.
type NetworkType string

// NetworkType values, as HNS spells them.
const (
	NAT         NetworkType = "NAT"
	Transparent NetworkType = "Transparent"
	L2Bridge    NetworkType = "L2Bridge"
	L2Tunnel    NetworkType = "L2Tunnel"
	Overlay     NetworkType = "Overlay"
)

// NetworkFlags are an HNS network's flags (a bit set).
type NetworkFlags uint32

// EnableNonPersistent makes HNS forget the network when it restarts (or the
// host reboots), as hcn's flag of the same name.
const EnableNonPersistent NetworkFlags = 8

// EndpointFlags are an HNS endpoint's flags (a bit set).
type EndpointFlags uint32

// EndpointFlagsRemoteEndpoint marks an endpoint that lives on another host:
// HNS switches frames for it to its ProviderAddress over VXLAN (hcn's
// EndpointFlagsRemoteEndpoint).
const EndpointFlagsRemoteEndpoint EndpointFlags = 1

// SchemaVersion is the version of the HNS schema a document is written in.
type SchemaVersion struct {
	Major int `json:"Major"`
	Minor int `json:"Minor"`
}

// schemaV2 is the schema version of every document this package builds.
var schemaV2 = SchemaVersion{Major: 2, Minor: 0}

// Network is an HNS network (hcn.HostComputeNetwork).
type Network struct {
	ID            string          `json:"ID,omitempty"` // GUID assigned by HNS; empty when creating
	Name          string          `json:",omitempty"`
	Type          NetworkType     `json:",omitempty"` // HNS leaves it out for NAT; decoders default to NAT
	Policies      []NetworkPolicy `json:",omitempty"`
	MacPool       *MacPool        `json:",omitempty"`
	Dns           *Dns            `json:",omitempty"`
	Ipams         []Ipam          `json:",omitempty"`
	Flags         NetworkFlags    `json:",omitempty"`
	SchemaVersion SchemaVersion
}

// Ipam is one address space of a network.
type Ipam struct {
	Type    string   `json:",omitempty"` // "Static" or "DHCP"
	Subnets []Subnet `json:",omitempty"`
}

// Subnet is one subnet of an Ipam. HNS refuses a subnet whose routes do not
// all have a next hop, or that has no default route.
type Subnet struct {
	IpAddressPrefix string         `json:",omitempty"` // CIDR, e.g. "10.0.9.0/24"
	Policies        []SubnetPolicy `json:",omitempty"`
	Routes          []Route        `json:",omitempty"`
	Flags           uint32         `json:",omitempty"`
}

// Route is a route of a subnet or an endpoint.
type Route struct {
	NextHop           string `json:",omitempty"`
	DestinationPrefix string `json:",omitempty"`
	Metric            uint16 `json:",omitempty"`
}

// MacPool is the ranges HNS allocates endpoint MACs from.
type MacPool struct {
	Ranges []MacRange `json:",omitempty"`
}

// MacRange is one range of a MacPool, in HNS's dash form.
type MacRange struct {
	StartMacAddress string `json:",omitempty"`
	EndMacAddress   string `json:",omitempty"`
}

// Dns is the DNS configuration of a network or an endpoint.
type Dns struct {
	Domain     string   `json:",omitempty"`
	Search     []string `json:",omitempty"`
	ServerList []string `json:",omitempty"`
	Options    []string `json:",omitempty"`
}

// Endpoint is an HNS endpoint (hcn.HostComputeEndpoint).
type Endpoint struct {
	ID                 string `json:"ID,omitempty"` // GUID assigned by HNS; empty when creating
	Name               string `json:",omitempty"`
	HostComputeNetwork string `json:",omitempty"` // the network's ID
	// HostComputeNamespace is the namespace (container) the endpoint is
	// attached to. HNS reports it; it is read-only and must be empty on
	// create.
	HostComputeNamespace string           `json:",omitempty"`
	Policies             []EndpointPolicy `json:",omitempty"`
	IpConfigurations     []IpConfig       `json:",omitempty"`
	Dns                  *Dns             `json:",omitempty"`
	Routes               []Route          `json:",omitempty"`
	MacAddress           string           `json:",omitempty"` // dash form, "02-42-0A-00-09-02"
	Flags                EndpointFlags    `json:",omitempty"`
	SchemaVersion        SchemaVersion
}

// IpConfig is one address of an endpoint.
type IpConfig struct {
	IpAddress    string `json:",omitempty"`
	PrefixLength uint8  `json:",omitempty"`
}

// Remote reports whether the endpoint is on another host.
func (e Endpoint) Remote() bool { return e.Flags&EndpointFlagsRemoteEndpoint != 0 }

// Persistent reports whether HNS keeps the network across its restarts.
func (n Network) Persistent() bool { return n.Flags&EnableNonPersistent == 0 }

// UnmarshalJSON decodes a network as HNS writes it, where a missing or
// empty Type means NAT (HNS's network mode 0), as hcn decodes it.
func (n *Network) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does: null leaves the value alone
	}
	type plain Network
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Type == "" {
		p.Type = NAT
	}
	*n = Network(p)
	return nil
}
