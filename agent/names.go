package agent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/internal/names"
)

// The names the API takes are checked by internal/names, one rule per
// kind, so that a name accepted here is one DNS, the tables and HNS take
// on every host. Names are kept as given but are unique without regard to
// case, as DNS answers them: "Web" and "web" are one name there.

// checkEndpointCreate checks the names and SRV ports of req, and puts its
// SRV ports in canonical form (NAME=PORT/PROTO). Errors name the field.
func checkEndpointCreate(req *api.EndpointCreate) error {
	if err := names.Endpoint(req.Name); err != nil {
		return apiError(api.CodeBadRequest, "name", "%v", err)
	}
	for _, al := range req.Aliases {
		if err := names.Alias(al); err != nil {
			return apiError(api.CodeBadRequest, "alias", "%v", err)
		}
	}
	if req.Service != "" {
		if err := names.Service(req.Service); err != nil {
			return apiError(api.CodeBadRequest, "service", "%v", err)
		}
	}
	if req.Ifname != "" {
		if err := names.Ifname(req.Ifname); err != nil {
			return apiError(api.CodeBadRequest, "ifname", "%v", err)
		}
	}
	seen := map[string]string{}
	for i, s := range req.SRVPorts {
		p, err := parseSRVPort(s)
		if err != nil {
			return apiError(api.CodeBadRequest, "srvPorts", "%v", err)
		}
		k := names.Key(p.Name) + "/" + p.Proto
		if other, dup := seen[k]; dup {
			return apiError(api.CodeBadRequest, "srvPorts", "srv port %q: %s/%s is given twice (also %q)", s, p.Name, p.Proto, other)
		}
		seen[k] = s
		req.SRVPorts[i] = formatSRVPort(p)
	}
	return nil
}

// parseSRVPort parses NAME=PORT[/tcp|udp].
func parseSRVPort(s string) (dns.Port, error) {
	const want = "want NAME=PORT[/tcp|udp], e.g. http=80/tcp"
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return dns.Port{}, fmt.Errorf("srv port %q: %s", s, want)
	}
	if err := names.PortName(name); err != nil {
		return dns.Port{}, fmt.Errorf("srv port %q: %v", s, err)
	}
	port, proto, ok := strings.Cut(rest, "/")
	if !ok {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return dns.Port{}, fmt.Errorf("srv port %q: protocol %q: want tcp or udp", s, proto)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return dns.Port{}, fmt.Errorf("srv port %q: port %q: want 1-65535 (%s)", s, port, want)
	}
	return dns.Port{Name: name, Proto: proto, Port: uint16(n)}, nil
}

func formatSRVPort(p dns.Port) string { return fmt.Sprintf("%s=%d/%s", p.Name, p.Port, p.Proto) }

// dnsPorts turns an endpoint's SRV ports into DNS's; one that does not
// parse (a row from another host) is left out, and DNS gets the rest.
func dnsPorts(srv []string) []dns.Port {
	var out []dns.Port
	for _, s := range srv {
		if p, err := parseSRVPort(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// claimNetworkName holds name for a network being created, until release:
// it fails if a network of that name exists, in any case, or is being
// created on this host.
func (a *Agent) claimNetworkName(name string) (release func(), err error) {
	for _, e := range a.kv.List(tableNetworks) {
		if existing, _, _ := strings.Cut(e.Key, "/"); names.Same(existing, name) {
			return nil, nameTaken("network", name, existing, "")
		}
	}
	return a.claimName("network "+names.Key(name), func() error {
		return apiError(api.CodeConflict, "name", "network %q is being created", name)
	})
}

// claimEndpointName holds name on network for an endpoint being created,
// until release: it fails if an endpoint of that name exists on the
// network, in any case, on any host, or is being created on this host.
func (a *Agent) claimEndpointName(network, name string) (release func(), err error) {
	taken := func(key string) bool {
		n, ep, ok := strings.Cut(key, "/")
		return ok && n == network && names.Same(ep, name)
	}
	for _, e := range a.kv.List(tableEndpoints) {
		if taken(e.Key) {
			return nil, nameTaken("endpoint", name, strings.TrimPrefix(e.Key, network+"/"), network)
		}
	}
	a.mu.Lock()
	for k := range a.endpoints {
		if taken(k) {
			a.mu.Unlock()
			return nil, nameTaken("endpoint", name, strings.TrimPrefix(k, network+"/"), network)
		}
	}
	a.mu.Unlock()
	return a.claimName("endpoint "+network+"/"+names.Key(name), func() error {
		return apiError(api.CodeConflict, "name", "endpoint %q exists on network %q", name, network)
	})
}

// claimName takes key in the names being created, or returns busy().
func (a *Agent) claimName(key string, busy func() error) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.creating[key]; ok {
		return nil, busy()
	}
	if a.creating == nil {
		a.creating = map[string]struct{}{}
	}
	a.creating[key] = struct{}{}
	return func() {
		a.mu.Lock()
		delete(a.creating, key)
		a.mu.Unlock()
	}, nil
}

// nameTaken is the conflict of a name with one that exists: the same, or
// the same but for case.
func nameTaken(kind, name, existing, network string) error {
	where := ""
	if network != "" {
		where = fmt.Sprintf(" on network %q", network)
	}
	if existing == name {
		return apiError(api.CodeConflict, "name", "%s %q exists%s", kind, name, where)
	}
	return apiError(api.CodeConflict, "name", "%s %q: %s %q exists%s, and names that differ only in case are one name in DNS", kind, name, kind, existing, where)
}
