package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Member is one row of `vxnet cluster members --format json`.
type Member struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// Endpoint is one row of `vxnet endpoint ls --format json`.
type Endpoint struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	Host      string   `json:"host"`
	Addresses []string `json:"addresses"` // "ip/prefix"
	Service   string   `json:"service,omitempty"`
	Netns     string   `json:"netns,omitempty"` // on its host
	// State is "down" for an endpoint its host took out of service (the
	// loser of a name conflict, say), with Reason; only its own host lists
	// it then. Empty: in service.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Down reports whether the endpoint's host took it out of service.
func (e Endpoint) Down() bool { return e.State == "down" }

// Addr returns the endpoint's first IPv4 address, or its first address of
// any family, or the zero Addr.
func (e Endpoint) Addr() netip.Addr {
	var first netip.Addr
	for _, s := range e.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4() {
			return p.Addr()
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	return first
}

// parseMembers parses `cluster members --format json`.
func parseMembers(out string) ([]Member, error) {
	var m []Member
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("cluster members: not a JSON array of members: %w: %q", err, lastLines(out, 3))
	}
	return m, nil
}

// parseEndpoints parses `endpoint ls --format json`.
func parseEndpoints(out string) ([]Endpoint, error) {
	var e []Endpoint
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		return nil, fmt.Errorf("endpoint ls: not a JSON array of endpoints: %w: %q", err, lastLines(out, 3))
	}
	return e, nil
}

// CLI runs `vxnet --socket <host's API socket> args...` and returns its
// standard output and error, combined.
func (l *Lab) CLI(ctx context.Context, host string, args ...string) (string, error) {
	s := l.State()
	h, ok := s.Host(host)
	if !ok {
		return "", fmt.Errorf("no host %q in lab %s", host, s.ID)
	}
	return l.run.run(ctx, append([]string{s.Binary, "--socket", h.Socket}, args...)...)
}

// Members returns the cluster members host's agent knows.
func (l *Lab) Members(ctx context.Context, host string) ([]Member, error) {
	out, err := l.CLI(ctx, host, "cluster", "members", "--format", "json")
	if err != nil {
		return nil, err
	}
	return parseMembers(out)
}

// Endpoints returns the endpoints host's agent lists.
func (l *Lab) Endpoints(ctx context.Context, host string) ([]Endpoint, error) {
	out, err := l.CLI(ctx, host, "endpoint", "ls", "--format", "json")
	if err != nil {
		return nil, err
	}
	return parseEndpoints(out)
}

// hasAll reports whether names holds every one of want.
func hasAll(names map[string]bool, want []string) (missing []string) {
	for _, w := range want {
		if !names[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

func memberNames(m []Member) map[string]bool {
	set := make(map[string]bool, len(m))
	for _, x := range m {
		set[x.Name] = true
	}
	return set
}

func quoteList(s []string) string { return strings.Join(s, ", ") }
