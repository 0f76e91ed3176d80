package docker

import "encoding/json"

// The bodies of Docker's plugin protocol (libnetwork's remote network
// driver and remote IPAM driver), as far as vxnet reads and writes them.
// Every call is a POST of one JSON object to /Plugin.Method; every answer
// is one JSON object, with Err set when the call failed.

// errResponse is a failed call's answer. The network driver API reads
// Err, the IPAM API Error: both are set.
type errResponse struct {
	Err   string `json:"Err,omitempty"`
	Error string `json:"Error,omitempty"`
}

type activateResponse struct {
	Implements []string
}

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

type ipamCapabilitiesResponse struct {
	RequiresMACAddress    bool
	RequiresRequestReplay bool
}

type addressSpacesResponse struct {
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

type requestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

type requestPoolResponse struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type requestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

type requestAddressResponse struct {
	Address string
	Data    map[string]string
}

type releasePoolRequest struct {
	PoolID string
}

type allocateNetworkRequest struct {
	NetworkID string
	Options   map[string]string
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type releaseAddressRequest struct {
	PoolID  string
	Address string
}

// ipamData is a network's pool as the network driver is told it.
type ipamData struct {
	AddressSpace string
	Pool         string
	Gateway      string
	AuxAddresses map[string]string
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]json.RawMessage
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type networkRequest struct {
	NetworkID string
}

type endpointInterface struct {
	Address     string
	AddressIPv6 string
	MacAddress  string
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]json.RawMessage
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]json.RawMessage
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type joinResponse struct {
	InterfaceName         interfaceName
	Gateway               string `json:",omitempty"`
	GatewayIPv6           string `json:",omitempty"`
	DisableGatewayService bool
}

type operInfoResponse struct {
	Value map[string]string
}

// portBinding is one entry of the endpoint option
// com.docker.network.portmap: a port published with docker run -p.
type portBinding struct {
	Proto    int // IP protocol number: 6 tcp, 17 udp
	IP       string
	Port     int
	HostIP   string
	HostPort int
}

// Docker's option and label names.
const (
	optGeneric     = "com.docker.network.generic"
	optEnableIPv6  = "com.docker.network.enable_ipv6"
	optInternal    = "com.docker.network.internal"
	optMTU         = "com.docker.network.driver.mtu"
	optEncrypted   = "encrypted" // Docker's overlay's own; vxnet's -o encrypted
	optPortMap     = "com.docker.network.portmap"
	optAddressType = "RequestAddressType"
	addressGateway = "com.docker.network.gateway"
)
