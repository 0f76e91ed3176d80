package hnstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/hns"
)

var knownTypes = map[hns.NetworkType]bool{
	hns.NAT: true, hns.Transparent: true, hns.L2Bridge: true, hns.L2Tunnel: true, hns.Overlay: true,
	"ICS": true, "Private": true,
}

// checkNetwork refuses what HNS (or hcn, before it) refuses of a new
// network.
func checkNetwork(n hns.Network) error {
	if n.Name == "" {
		return fmt.Errorf("network name is empty")
	}
	if !knownTypes[n.Type] {
		return fmt.Errorf("unknown network type %q", n.Type)
	}
	if err := checkPolicies(n.Policies, func(p hns.NetworkPolicy) (string, json.RawMessage) { return string(p.Type), p.Settings }); err != nil {
		return err
	}
	for _, s := range subnets(n) {
		if err := checkSubnet(n, s); err != nil {
			return fmt.Errorf("subnet %q: %w", s.IpAddressPrefix, err)
		}
	}
	if n.Type == hns.Overlay {
		return checkVxlanPort(n)
	}
	return nil
}

// checkSubnet checks a subnet's routes (hcn's own check) and, on an
// Overlay, its VSID.
func checkSubnet(n hns.Network, s hns.Subnet) error {
	if _, err := netip.ParsePrefix(s.IpAddressPrefix); err != nil {
		return fmt.Errorf("invalid prefix: %v", err)
	}
	if err := checkPolicies(s.Policies, func(p hns.SubnetPolicy) (string, json.RawMessage) { return string(p.Type), p.Settings }); err != nil {
		return err
	}
	hasDefault := false
	for _, r := range s.Routes {
		if r.NextHop == "" {
			return fmt.Errorf("route to %q has no next hop", r.DestinationPrefix)
		}
		if _, err := netip.ParseAddr(r.NextHop); err != nil {
			return fmt.Errorf("route next hop %q: %v", r.NextHop, err)
		}
		hasDefault = hasDefault || r.DestinationPrefix == "0.0.0.0/0" || r.DestinationPrefix == "::/0"
	}
	if !hasDefault {
		return fmt.Errorf("no route with a next hop to 0.0.0.0/0 or ::/0 (no default gateway)")
	}
	if n.Type != hns.Overlay {
		return nil
	}
	for _, p := range s.Policies {
		if p.Type != hns.SubnetPolicyVSID {
			continue
		}
		var v hns.VSID
		if err := json.Unmarshal(p.Settings, &v); err != nil {
			return fmt.Errorf("VSID settings: %v", err)
		}
		if v.IsolationId < hns.MinVNI || v.IsolationId > hns.MaxOverlayVNI {
			return fmt.Errorf("VSID %d out of range %d-%d", v.IsolationId, hns.MinVNI, hns.MaxOverlayVNI)
		}
		return nil
	}
	return fmt.Errorf("overlay subnet has no VSID policy")
}

// checkVxlanPort requires an Overlay's VxlanPort policy to be 4789.
func checkVxlanPort(n hns.Network) error {
	for _, p := range n.Policies {
		if p.Type != hns.NetworkPolicyVxlanPort {
			continue
		}
		var v hns.VxlanPort
		if err := json.Unmarshal(p.Settings, &v); err != nil {
			return fmt.Errorf("VxlanPort settings: %v", err)
		}
		if v.Port != vxlan.DefaultPort {
			return fmt.Errorf("VxlanPort %d: want %d", v.Port, vxlan.DefaultPort)
		}
		return nil
	}
	return fmt.Errorf("overlay network has no VxlanPort policy (want %d)", vxlan.DefaultPort)
}

// checkPolicies requires every policy to have a type and settings that are
// a JSON object (or none).
func checkPolicies[P any](ps []P, get func(P) (string, json.RawMessage)) error {
	for _, p := range ps {
		typ, raw := get(p)
		if typ == "" {
			return fmt.Errorf("policy without a type")
		}
		if len(raw) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return fmt.Errorf("policy %s: settings %s are not a JSON object", typ, raw)
		}
	}
	return nil
}

func subnets(n hns.Network) []hns.Subnet {
	var out []hns.Subnet
	for _, ipam := range n.Ipams {
		out = append(out, ipam.Subnets...)
	}
	return out
}
