// Package cni is vxnet's CNI plugin (spec 1.1.0, and 0.3.x, 0.4.0,
// 1.0.0): ADD, CHECK, DEL, GC and STATUS as a client of the local agent's
// API. ADD asks the agent for an endpoint in the container's namespace,
// on the network the configuration names (created in the cluster on
// first use), and returns its interface, addresses, routes and DNS. The
// binary is cmd/vxnet-cni.
package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/names"
)

// Type is the plugin's "type" in a network configuration.
const Type = "vxnet"

// NetConf is the plugin's network configuration:
//
//	{"cniVersion": "1.1.0", "name": "web", "type": "vxnet",
//	 "network": "web", "driver": "overlay", "subnet": "10.0.9.0/24",
//	 "socket": "/run/vxnet/vxnet.sock"}
//
// network is the vxnet network (default: name); driver, subnet, subnet6,
// gateway, ipRange, internal and options are used when the plugin creates
// it (its first use in the cluster) and must agree with it otherwise.
type NetConf struct {
	types.PluginConf
	Network  string            `json:"network,omitempty"`
	Driver   string            `json:"driver,omitempty"`
	Subnet   string            `json:"subnet,omitempty"`
	Subnet6  string            `json:"subnet6,omitempty"`
	Gateway  string            `json:"gateway,omitempty"`
	IPRange  string            `json:"ipRange,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	MTU      int               `json:"mtu,omitempty"`
	// Socket is the agent's API socket (default api.DefaultSocket).
	Socket string `json:"socket,omitempty"`
	// RuntimeConfig holds what the runtime passes for the capabilities
	// the configuration declares.
	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
}

// RuntimeConfig: the capabilities vxnet takes.
type RuntimeConfig struct {
	// PortMappings (capability "portMappings"): published on this host
	// (nat networks, and overlay networks that are not internal).
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// IPs (capability "ips"): static addresses, one per family.
	IPs []string `json:"ips,omitempty"`
	// Aliases (capability "aliases"), by network name: more DNS names.
	Aliases map[string][]string `json:"aliases,omitempty"`
	// Mac (capability "mac"): the endpoint's MAC on the overlay.
	Mac string `json:"mac,omitempty"`
}

// PortMapping is one entry of the portMappings capability.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// decodeError is the CNI error of a configuration that does not decode:
// a value of the wrong type names its key and the type wanted (valid
// JSON, an invalid configuration); anything else is not JSON.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxnet: configuration key %q: want a JSON %s, not a %s", te.Field, jsonKind(te.Type.Kind()), te.Value), "")
	}
	return types.NewError(types.ErrDecodingFailure, "vxnet: the network configuration is not valid JSON", err.Error())
}

// jsonKind names how JSON writes a value of Go kind k.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "number"
}

// ParseConf reads and checks a network configuration; errors are CNI
// errors naming the field and the value.
func ParseConf(data []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, decodeError(err)
	}
	bad := func(format string, args ...any) error {
		return types.NewError(types.ErrInvalidNetworkConfig, "vxnet: "+fmt.Sprintf(format, args...), "")
	}
	// CNI lets a configuration carry keys of others; one that is nearly
	// one of vxnet's is a typing mistake that would silently make a
	// network other than the one meant.
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) == nil {
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if near := nearKey(k); near != "" {
				return nil, bad("configuration key %q: unknown; did you mean %q?", k, near)
			}
		}
	}
	if c.Type != Type {
		return nil, bad("type %q: want %q", c.Type, Type)
	}
	if c.Network == "" {
		c.Network = c.Name
	}
	if err := names.Network(c.Network); err != nil {
		return nil, bad("network %q: %v", c.Network, err)
	}
	for _, f := range []struct{ field, value string }{{"subnet", c.Subnet}, {"subnet6", c.Subnet6}, {"ipRange", c.IPRange}} {
		if f.value == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f.value); err != nil || p != p.Masked() {
			return nil, bad("%s %q: want a network address with its prefix length", f.field, f.value)
		}
	}
	if c.Gateway != "" {
		if _, err := netip.ParseAddr(c.Gateway); err != nil {
			return nil, bad("gateway %q is not an IP address", c.Gateway)
		}
	}
	if c.MTU < 0 {
		return nil, bad("mtu %d: want a positive number", c.MTU)
	}
	if c.Socket == "" {
		c.Socket = api.DefaultSocket
	}
	for i, pm := range c.RuntimeConfig.PortMappings {
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		switch {
		case pm.HostPort < 1 || pm.HostPort > 65535 || pm.ContainerPort < 1 || pm.ContainerPort > 65535:
			return nil, bad("runtimeConfig.portMappings[%d]: ports %d:%d: want 1 to 65535", i, pm.HostPort, pm.ContainerPort)
		case proto != "tcp" && proto != "udp":
			return nil, bad("runtimeConfig.portMappings[%d]: protocol %q: want tcp or udp", i, pm.Protocol)
		case pm.HostIP != "" && pm.HostIP != "0.0.0.0" && pm.HostIP != "::":
			return nil, bad("runtimeConfig.portMappings[%d]: hostIP %q: vxnet publishes on every address of the host", i, pm.HostIP)
		}
	}
	if m := c.RuntimeConfig.Mac; m != "" {
		if hw, err := net.ParseMAC(m); err != nil || len(hw) != 6 {
			return nil, bad("runtimeConfig.mac %q: not a MAC address", m)
		}
	}
	for i, s := range c.RuntimeConfig.IPs {
		if _, err := parseIP(s); err != nil {
			return nil, bad("runtimeConfig.ips[%d] %q: not an IP address", i, s)
		}
	}
	return &c, nil
}

// ParseConfLoose reads what DEL, GC and STATUS need of a configuration
// (its names and socket): a configuration ADD refused must still be
// deletable, or its container would never go.
func ParseConfLoose(data []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(data, &c.PluginConf); err != nil {
		return nil, decodeError(err)
	}
	var own struct {
		Network string `json:"network"`
		Socket  string `json:"socket"`
	}
	json.Unmarshal(data, &own) // fields of other types: left empty, as absent
	c.Network, c.Socket = own.Network, own.Socket
	if c.Network == "" {
		c.Network = c.Name
	}
	if c.Socket == "" {
		c.Socket = api.DefaultSocket
	}
	if c.Type != Type {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxnet: type %q: want %q", c.Type, Type), "")
	}
	return &c, nil
}

// parseIP reads an address, with or without a prefix length.
func parseIP(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// request is the vxnet network the configuration asks for.
func (c *NetConf) request() api.NetworkCreate {
	return api.NetworkCreate{Name: c.Network, Driver: c.Driver, Subnet: c.Subnet, Subnet6: c.Subnet6, Gateway: c.Gateway,
		IPRange: c.IPRange, Internal: c.Internal, Options: c.Options}
}

// confKeys are the keys of a network configuration vxnet reads.
var confKeys = func() []string {
	var out []string
	for _, t := range []reflect.Type{reflect.TypeFor[NetConf](), reflect.TypeFor[types.PluginConf]()} {
		for i := 0; i < t.NumField(); i++ {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
				out = append(out, name)
			}
		}
	}
	return out
}()

// nearKey returns the key of confKeys that k nearly is: one letter added,
// dropped or changed, or two neighbours swapped; or "" when k is one of
// them (in any case: JSON decoding takes it so) or none is near. A known key with letters added in front or
// behind (isGateway, subnets, gateway6) is another plugin's key or another
// field, not a typing mistake.
func nearKey(k string) string {
	lk := strings.ToLower(k)
	for _, known := range confKeys {
		if lknown := strings.ToLower(known); lk == lknown || len(known) >= 4 && (strings.HasPrefix(lk, lknown) || strings.HasSuffix(lk, lknown)) {
			return "" // the key itself, or one with letters added
		}
	}
	for _, known := range confKeys {
		if len(known) >= 4 && editDistance(lk, strings.ToLower(known)) == 1 {
			return known
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
