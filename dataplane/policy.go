package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Policy is what an l2tunnel network's policy host applies to every packet
// it hair-pins: rules on the inner destination address and port. The first
// rule that matches decides; none matching, Default does.
type Policy struct {
	Rules   []PolicyRule
	Default bool // true: allow
}

// PolicyRule matches packets to Dst, and when Port is set, to that TCP or
// UDP port (Proto "tcp" or "udp"; empty for both).
type PolicyRule struct {
	Allow bool
	Dst   netip.Prefix
	Port  uint16
	Proto string
}

// String is the rule as ParsePolicyRule reads it.
func (r PolicyRule) String() string {
	s := "deny "
	if r.Allow {
		s = "allow "
	}
	s += r.Dst.String()
	if r.Port != 0 {
		s += ":" + strconv.Itoa(int(r.Port))
	}
	if r.Proto != "" {
		s += "/" + r.Proto
	}
	return s
}

// ParsePolicyRules reads a list like "10.0.9.3:5201/tcp,10.0.8.0/24"
// (an address alone means that host; ports are optional; an IPv6 address
// with a port is written as a prefix, fd00::3/128:80) into rules that allow
// or deny.
func ParsePolicyRules(list string, allow bool) ([]PolicyRule, error) {
	var out []PolicyRule
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r := PolicyRule{Allow: allow}
		spec := item
		if i := strings.LastIndexByte(spec, '/'); i >= 0 && (spec[i+1:] == "tcp" || spec[i+1:] == "udp") {
			r.Proto, spec = spec[i+1:], spec[:i]
		}
		// An IPv6 address or prefix with a port in brackets, as in a URL:
		// [fd00::3]:80, [fd00::/64]:22.
		if rest, ok := strings.CutPrefix(spec, "["); ok {
			inner, port, found := strings.Cut(rest, "]")
			if !found || (port != "" && !strings.HasPrefix(port, ":")) {
				return nil, fmt.Errorf("policy rule %q: want [IPV6]:PORT or [IPV6/LEN]:PORT", item)
			}
			if port != "" {
				p, err := strconv.ParseUint(port[1:], 10, 16)
				if err != nil || p == 0 {
					return nil, fmt.Errorf("policy rule %q: port %q: want 1-65535", item, port[1:])
				}
				r.Port = uint16(p)
			}
			spec = inner
		}
		// A port follows the last ':' unless the whole is an address (an
		// IPv6 address with a port is written in brackets, or as a
		// prefix: fd00::3/128:80).
		if i := strings.LastIndexByte(spec, ':'); i >= 0 && r.Port == 0 && !parsesAsAddr(spec) {
			p, err := strconv.ParseUint(spec[i+1:], 10, 16)
			if err != nil || p == 0 {
				return nil, fmt.Errorf("policy rule %q: port %q: want 1-65535", item, spec[i+1:])
			}
			r.Port, spec = uint16(p), spec[:i]
		}
		if strings.Contains(spec, "/") {
			p, err := netip.ParsePrefix(spec)
			if err != nil {
				return nil, fmt.Errorf("policy rule %q: address %q: want ADDRESS or CIDR[:PORT][/tcp|udp] ([IPV6]:PORT with a port)", item, spec)
			}
			r.Dst = p.Masked()
		} else {
			a, err := netip.ParseAddr(spec)
			if err != nil {
				return nil, fmt.Errorf("policy rule %q: address %q: want ADDRESS or CIDR[:PORT][/tcp|udp] ([IPV6]:PORT with a port)", item, spec)
			}
			r.Dst = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, r)
	}
	return out, nil
}

func parsesAsAddr(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// compiled is a policy as the hot path reads it.
type compiledPolicy struct {
	rules []compiledRule
	def   bool
}

type compiledRule struct {
	allow bool
	v6    bool
	addr  addrKey
	mask  addrKey
	port  uint16
	proto uint8 // 0: both
}

func compilePolicy(p *Policy) *compiledPolicy {
	if p == nil {
		return nil
	}
	c := &compiledPolicy{def: p.Default}
	for _, r := range p.Rules {
		cr := compiledRule{allow: r.Allow, v6: r.Dst.Addr().Is6(), addr: keyOf(r.Dst.Masked().Addr()), port: r.Port}
		cr.mask = maskKey(r.Dst.Bits(), cr.v6)
		switch r.Proto {
		case "tcp":
			cr.proto = protoTCP
		case "udp":
			cr.proto = protoUDP
		}
		c.rules = append(c.rules, cr)
	}
	return c
}

// maskKey is the address mask of a prefix length, in addrKey form (see
// keyOf: IPv4 addresses are IPv4-mapped).
func maskKey(bits int, v6 bool) addrKey {
	if v6 {
		lo := uint64(0)
		if bits > 64 {
			lo = ^uint64(0) << (128 - bits)
		}
		return addrKey{hi: ^uint64(0) << (64 - min(bits, 64)), lo: lo}
	}
	return addrKey{hi: ^uint64(0), lo: 0xffff<<32 | uint64(^uint32(0)<<(32-bits))}
}

// allows decides for one packet (pkt parsed into info).
//
// A packet whose transport header cannot be read (an IPv4 fragment, an
// IPv6 packet behind extension headers) has no known protocol or port: a
// rule that needs them matches it when it denies and not when it allows,
// so that fragmenting a packet never gets it past a rule.
func (c *compiledPolicy) allows(pkt []byte, info *ipInfo) bool {
	var port uint16
	known := info.l4 != 0 && info.l4+4 <= info.length
	if known && (info.proto == protoTCP || info.proto == protoUDP) {
		port = binary.BigEndian.Uint16(pkt[info.l4+2:])
	}
	for i := range c.rules {
		r := &c.rules[i]
		if r.v6 != info.v6 || info.dst.hi&r.mask.hi != r.addr.hi || info.dst.lo&r.mask.lo != r.addr.lo {
			continue
		}
		if !known && (r.proto != 0 || r.port != 0) {
			if r.allow {
				continue
			}
			return false
		}
		if r.proto != 0 && r.proto != info.proto {
			continue
		}
		if r.port != 0 && r.port != port {
			continue
		}
		return r.allow
	}
	return c.def
}
