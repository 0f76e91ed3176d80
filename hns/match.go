package hns

import (
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Programmer compares what it wants (a builder's output) with what HNS
// lists. HNS may report more than it was given (defaults, extra policies,
// fields in settings), so the comparison asks whether what vxnet set is
// there, not whether the documents are equal. Strings compare without
// regard to case (HNS upper-cases MACs), addresses and prefixes by value.

// rawPolicy is a policy of any kind.
type rawPolicy struct {
	typ      string
	settings json.RawMessage
}

// networkMatches reports whether have, as HNS lists it, is the network
// want that BuildNetwork returned.
func networkMatches(want, have Network) bool {
	if typeOrNAT(want.Type) != typeOrNAT(have.Type) || want.Persistent() != have.Persistent() {
		return false
	}
	// A VxlanPort of 4789 is what HNS speaks anyway: an HNS older than
	// 10.3 refuses the policy, the client leaves it out, and the network
	// comes back without it. It must still match, or every sync would
	// re-create the network and cut its containers off.
	if !policiesIn(networkPolicies(withoutDefaultVxlanPort(want.Policies)), networkPolicies(have.Policies)) {
		return false
	}
	haveSubnets := subnets(have)
	for _, ws := range subnets(want) {
		if !subnetIn(ws, haveSubnets) {
			return false
		}
	}
	return true
}

func typeOrNAT(t NetworkType) NetworkType {
	if t == "" {
		return NAT
	}
	return t
}

func subnets(n Network) []Subnet {
	var out []Subnet
	for _, ipam := range n.Ipams {
		out = append(out, ipam.Subnets...)
	}
	return out
}

// subnetIn reports whether a subnet of have has want's prefix, routes and
// policies.
func subnetIn(want Subnet, have []Subnet) bool {
	for _, hs := range have {
		if !samePrefix(want.IpAddressPrefix, hs.IpAddressPrefix) {
			continue
		}
		for _, r := range want.Routes {
			if !routeIn(r, hs.Routes) {
				return false
			}
		}
		return policiesIn(subnetPolicies(want.Policies), subnetPolicies(hs.Policies))
	}
	return false
}

func routeIn(r Route, have []Route) bool {
	for _, h := range have {
		if sameAddr(r.NextHop, h.NextHop) && samePrefix(r.DestinationPrefix, h.DestinationPrefix) {
			return true
		}
	}
	return false
}

// countedEndpointPolicies are the endpoint policy types whose number must
// match too: a port no longer published, a rule no longer wanted.
var countedEndpointPolicies = []EndpointPolicyType{EndpointPolicyPortMapping, EndpointPolicyACL}

// endpointMatches reports whether have, as HNS lists it, is the endpoint
// want that BuildEndpoint returned.
func endpointMatches(want, have Endpoint) bool {
	if want.Remote() != have.Remote() {
		return false
	}
	if want.MacAddress != "" && !strings.EqualFold(want.MacAddress, have.MacAddress) {
		return false
	}
	if len(want.IpConfigurations) != len(have.IpConfigurations) {
		return false
	}
	for i, w := range want.IpConfigurations {
		h := have.IpConfigurations[i]
		if !sameAddr(w.IpAddress, h.IpAddress) || (h.PrefixLength != 0 && h.PrefixLength != w.PrefixLength) {
			return false
		}
	}
	wp, hp := endpointPolicies(want.Policies), endpointPolicies(have.Policies)
	for _, t := range countedEndpointPolicies {
		if count(wp, string(t)) != count(hp, string(t)) {
			return false
		}
	}
	return policiesIn(wp, hp)
}

func count(ps []rawPolicy, typ string) int {
	n := 0
	for _, p := range ps {
		if strings.EqualFold(p.typ, typ) {
			n++
		}
	}
	return n
}

// policiesIn reports whether every policy of want has one in have of the
// same type whose settings include want's.
func policiesIn(want, have []rawPolicy) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(w.typ, h.typ) && settingsIn(w.settings, h.settings) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// settingsIn reports whether the JSON have includes everything in want.
func settingsIn(want, have json.RawMessage) bool {
	if len(want) == 0 {
		return true
	}
	var w, h any
	if json.Unmarshal(want, &w) != nil || json.Unmarshal(have, &h) != nil {
		return false
	}
	return includes(w, h)
}

// includes reports whether the decoded JSON have includes want: every key
// of an object, every element of an array (in order), equal scalars.
func includes(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if hv, ok := h[k]; !ok || !includes(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !includes(w[i], h[i]) {
				return false
			}
		}
		return true
	case string:
		h, ok := have.(string)
		return ok && (strings.EqualFold(w, h) || sameAddr(w, h) || samePrefix(w, h))
	default:
		return want == have
	}
}

func sameAddr(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return x.Unmap() == y.Unmap()
}

func samePrefix(a, b string) bool {
	x, err1 := netip.ParsePrefix(a)
	y, err2 := netip.ParsePrefix(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return x.Masked() == y.Masked()
}

func networkPolicies(ps []NetworkPolicy) []rawPolicy {
	out := make([]rawPolicy, len(ps))
	for i, p := range ps {
		out[i] = rawPolicy{string(p.Type), p.Settings}
	}
	return out
}

func subnetPolicies(ps []SubnetPolicy) []rawPolicy {
	out := make([]rawPolicy, len(ps))
	for i, p := range ps {
		out[i] = rawPolicy{string(p.Type), p.Settings}
	}
	return out
}

func endpointPolicies(ps []EndpointPolicy) []rawPolicy {
	out := make([]rawPolicy, len(ps))
	for i, p := range ps {
		out[i] = rawPolicy{string(p.Type), p.Settings}
	}
	return out
}

// withoutDefaultVxlanPort drops a VxlanPort policy of the default port.
func withoutDefaultVxlanPort(ps []NetworkPolicy) []NetworkPolicy {
	out := make([]NetworkPolicy, 0, len(ps))
	for _, p := range ps {
		var v VxlanPort
		if p.Type == NetworkPolicyVxlanPort && json.Unmarshal(p.Settings, &v) == nil && v.Port == vxlan.DefaultPort {
			continue
		}
		out = append(out, p)
	}
	return out
}
