package ipam

import (
	"sort"
	"strconv"
	"strings"
)

// Options are the IPAM driver options a network takes (`-o key=value` at
// network create, Docker's --ipam-opt).
type Options struct {
	// BlockSize is the prefix length of the blocks hosts claim in a global
	// network (0: the default, 64 blocks where the range allows, of at
	// most 64 addresses).
	BlockSize int
}

// OptionKeys lists the options ParseOptions knows, for help texts.
var OptionKeys = map[string]string{
	"block-size": "prefix length of the address blocks each host claims in a global network's IPv4 subnet (e.g. 26; IPv6 blocks keep the default, 64 addresses, a /122)",
}

// ParseOptions parses IPAM options; an unknown key or a bad value is an
// error naming it.
func ParseOptions(network string, opts map[string]string) (Options, error) {
	var o Options
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		switch k {
		case "block-size":
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(v), "/"))
			if err != nil || n < 1 || n > 128 {
				return o, &Error{Network: network, Field: "option block-size", Value: v, Err: ErrInvalid, Detail: "want a prefix length such as 26"}
			}
			o.BlockSize = n
		default:
			known := make([]string, 0, len(OptionKeys))
			for k := range OptionKeys {
				known = append(known, k)
			}
			sort.Strings(known)
			return o, &Error{Network: network, Field: "option", Value: k, Err: ErrInvalid, Detail: "known options: " + strings.Join(known, ", ")}
		}
	}
	return o, nil
}

// ParseAuxAddress parses one --aux-address value, NAME=IP. The address is
// checked against the subnet when the pool is made.
func ParseAuxAddress(network, s string) (name, addr string, err error) {
	name, addr, ok := strings.Cut(s, "=")
	name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
	if !ok || name == "" || addr == "" {
		return "", "", &Error{Network: network, Field: "aux-address", Value: s, Err: ErrInvalid, Detail: "want NAME=IP, e.g. router=10.0.9.254"}
	}
	return name, addr, nil
}
