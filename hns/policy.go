package hns

import (
	"encoding/json"
	"strconv"
)

// Policies are a type name and settings whose shape the type decides. The
// settings structs below are the ones vxnet uses, with hcn's JSON shapes
// (hcnpolicy.go); policy type names are HNS's and append-only.

// NetworkPolicyType names a network policy.
type NetworkPolicyType string

// Network policy types.
const (
	NetworkPolicyNetAdapterName  NetworkPolicyType = "NetAdapterName"  // NetAdapterName
	NetworkPolicyProviderAddress NetworkPolicyType = "ProviderAddress" // ProviderAddressNetwork
	NetworkPolicyVxlanPort       NetworkPolicyType = "VxlanPort"       // VxlanPort
)

// SubnetPolicyType names a subnet policy.
type SubnetPolicyType string

// SubnetPolicyVSID isolates a subnet with a virtual subnet ID (VSID).
const SubnetPolicyVSID SubnetPolicyType = "VSID"

// EndpointPolicyType names an endpoint policy.
type EndpointPolicyType string

// Endpoint policy types.
const (
	EndpointPolicyOutBoundNAT     EndpointPolicyType = "OutBoundNAT"     // OutboundNat
	EndpointPolicyPortMapping     EndpointPolicyType = "PortMapping"     // PortMapping
	EndpointPolicyACL             EndpointPolicyType = "ACL"             // ACL
	EndpointPolicyProviderAddress EndpointPolicyType = "ProviderAddress" // ProviderAddressEndpoint
)

// NetworkPolicy is a policy of a network.
type NetworkPolicy struct {
	Type     NetworkPolicyType
	Settings json.RawMessage `json:",omitempty"`
}

// SubnetPolicy is a policy of a subnet.
type SubnetPolicy struct {
	Type     SubnetPolicyType
	Settings json.RawMessage `json:",omitempty"`
}

// EndpointPolicy is a policy of an endpoint.
type EndpointPolicy struct {
	Type     EndpointPolicyType
	Settings json.RawMessage `json:",omitempty"`
}

// IP protocol numbers, as PortMapping and ACL settings take them.
const (
	ProtocolTCP = 6
	ProtocolUDP = 17
)

// VSID is the settings of a VSID subnet policy: the VXLAN network
// identifier of an overlay.
type VSID struct {
	IsolationId uint32
}

// ProviderAddressNetwork is the settings of a ProviderAddress network
// policy: the host's underlay address (VTEP), which picks the adapter.
type ProviderAddressNetwork struct {
	ProviderAddress string `json:",omitempty"`
}

// VxlanPort is the settings of a VxlanPort network policy.
type VxlanPort struct {
	Port uint16
}

// NetAdapterName is the settings of a NetAdapterName network policy: the
// host adapter the network's virtual switch is bound to.
type NetAdapterName struct {
	NetworkAdapterName string `json:",omitempty"`
}

// OutboundNat is the settings of an OutBoundNAT endpoint policy: traffic
// leaves with the host's address, except to the Exceptions (CIDRs).
type OutboundNat struct {
	Exceptions []string `json:",omitempty"`
}

// PortMapping is the settings of a PortMapping endpoint policy: the host's
// ExternalPort forwarded to the endpoint's InternalPort.
type PortMapping struct {
	Protocol     uint32 `json:",omitempty"` // ProtocolTCP or ProtocolUDP
	InternalPort uint16 `json:",omitempty"`
	ExternalPort uint16 `json:",omitempty"`
}

// ProviderAddressEndpoint is the settings of a ProviderAddress endpoint
// policy: the underlay address of a remote endpoint's host.
type ProviderAddressEndpoint struct {
	ProviderAddress string `json:",omitempty"`
}

// ACL values.
const (
	ACLActionAllow    = "Allow"
	ACLActionBlock    = "Block"
	ACLDirectionOut   = "Out"
	ACLRuleTypeSwitch = "Switch" // enforced in the virtual switch (VFP)
)

// ACL is the settings of an ACL endpoint policy. Addresses and ports are
// comma-separated lists; Protocols is an IP protocol number ("6"); among
// the rules that match, the one with the lowest Priority decides.
type ACL struct {
	Protocols       string `json:",omitempty"`
	Action          string // ACLActionAllow or ACLActionBlock
	Direction       string // "In" or ACLDirectionOut
	LocalAddresses  string `json:",omitempty"`
	RemoteAddresses string `json:",omitempty"`
	LocalPorts      string `json:",omitempty"`
	RemotePorts     string `json:",omitempty"`
	RuleType        string `json:",omitempty"`
	Priority        uint16 `json:",omitempty"`
}

// settings marshals a settings struct. The structs above hold only strings,
// numbers and bools, so marshaling cannot fail.
func settings(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hns: marshal policy settings: " + err.Error())
	}
	return b
}

// networkPolicy returns a network policy of type t with settings v.
func networkPolicy(t NetworkPolicyType, v any) NetworkPolicy {
	return NetworkPolicy{Type: t, Settings: settings(v)}
}

// subnetPolicy returns a subnet policy of type t with settings v.
func subnetPolicy(t SubnetPolicyType, v any) SubnetPolicy {
	return SubnetPolicy{Type: t, Settings: settings(v)}
}

// endpointPolicy returns an endpoint policy of type t with settings v.
func endpointPolicy(t EndpointPolicyType, v any) EndpointPolicy {
	return EndpointPolicy{Type: t, Settings: settings(v)}
}

// protocolNumber is the IP protocol number of "tcp" or "udp", 0 otherwise.
func protocolNumber(proto string) uint32 {
	switch proto {
	case "tcp":
		return ProtocolTCP
	case "udp":
		return ProtocolUDP
	}
	return 0
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
