package dns

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vxnet/vxnet/internal/names"
)

// ParsePort parses an SRV port as endpoints give it: NAME=PORT[/tcp|udp],
// tcp when no protocol is given. Errors quote s and name the part at fault.
func ParsePort(s string) (Port, error) {
	const want = "want NAME=PORT[/tcp|udp], e.g. http=80/tcp"
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Port{}, fmt.Errorf("srv port %q: %s", s, want)
	}
	if err := names.PortName(name); err != nil {
		return Port{}, fmt.Errorf("srv port %q: %v", s, err)
	}
	port, proto, ok := strings.Cut(rest, "/")
	if !ok {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return Port{}, fmt.Errorf("srv port %q: protocol %q: want tcp or udp", s, proto)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Port{}, fmt.Errorf("srv port %q: port %q: want 1-65535 (%s)", s, port, want)
	}
	return Port{Name: name, Proto: proto, Port: uint16(n)}, nil
}

// String is p's canonical form, NAME=PORT/PROTO.
func (p Port) String() string { return fmt.Sprintf("%s=%d/%s", p.Name, p.Port, p.Proto) }

// ParsePorts parses the SRV ports of an endpoint row; one that does not
// parse (a row from another host) is left out, and DNS gets the rest.
func ParsePorts(srv []string) []Port {
	var out []Port
	for _, s := range srv {
		if p, err := ParsePort(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
