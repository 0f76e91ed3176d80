package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Observation is what a campaign sees at one moment: each agent's tables
// and leases, and each container's devices.
type Observation struct {
	At         RunTime
	Hosts      []HostView
	Containers []ContainerView
}

// HostView is one agent's view.
type HostView struct {
	Host      string
	Err       string // the agent did not answer; nothing else is set
	Members   []string
	Networks  []NetworkRow
	Endpoints []Endpoint
	Services  []ServiceRow
	// Tables holds the rows of networks, endpoints and services as the
	// agent lists them, each row as canonical JSON, sorted.
	Tables map[string][]string
	// Leases is the addresses the host holds, by network, from its state
	// file; nil if the file could not be read.
	Leases map[string][]netip.Addr
}

// NetworkRow is one row of `network ls --format json`.
type NetworkRow struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Creator string `json:"creator"`
}

// ServiceRow is one row of `service ls --format json`.
type ServiceRow struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	Endpoints []string `json:"endpoints"` // NAME@HOST
	Addresses []string `json:"addresses"`
}

// ContainerView is one container of the campaign and the devices in its
// namespace.
type ContainerView struct {
	Netns, Host, Network, Name string
	Err                        string // its namespace could not be read
	Devices                    []Device
}

// Device is a network device of a container other than loopback, with its
// global addresses.
type Device struct {
	Name  string
	Addrs []netip.Prefix
}

// The tables HostView.Tables holds, with the CLI command that lists each.
var viewTables = []struct{ name, cmd string }{{"networks", "network"}, {"endpoints", "endpoint"}, {"services", "service"}}

// view asks host's agent for its members and tables and reads its leases.
func (l *Lab) view(ctx context.Context, host string) HostView {
	v := HostView{Host: host, Tables: map[string][]string{}}
	fail := func(err error) HostView { return HostView{Host: host, Err: err.Error()} }
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	m, err := l.Members(ctx, host)
	if err != nil {
		return fail(err)
	}
	for _, x := range m {
		v.Members = append(v.Members, x.Name)
	}
	for _, t := range viewTables {
		out, err := l.CLI(ctx, host, t.cmd, "ls", "--format", "json")
		if err != nil {
			return fail(err)
		}
		if v.Tables[t.name], err = canonicalRows(out); err != nil {
			return fail(fmt.Errorf("%s ls: %w", t.cmd, err))
		}
		switch t.name {
		case "networks":
			err = json.Unmarshal([]byte(out), &v.Networks)
		case "endpoints":
			err = json.Unmarshal([]byte(out), &v.Endpoints)
		case "services":
			err = json.Unmarshal([]byte(out), &v.Services)
		}
		if err != nil {
			return fail(fmt.Errorf("%s ls: %w", t.cmd, err))
		}
	}
	if h, err := l.host(host); err == nil {
		v.Leases = readLeases(h.DataDir)
	}
	return v
}

// canonicalRows turns a JSON array into its elements as canonical JSON
// (keys sorted, no spaces), sorted.
func canonicalRows(out string) ([]string, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, err
	}
	rows := make([]string, 0, len(raw))
	for _, r := range raw {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		rows = append(rows, string(b))
	}
	slices.Sort(rows)
	return rows, nil
}

// readLeases reads the leases of an agent's state file (DATA_DIR/state.json,
// written whole and renamed, so never half-written); nil if it cannot.
// A host without a state file yet holds no lease.
func readLeases(dataDir string) map[string][]netip.Addr {
	b, err := os.ReadFile(filepath.Join(dataDir, "state.json"))
	if os.IsNotExist(err) {
		return map[string][]netip.Addr{}
	}
	if err != nil {
		return nil
	}
	return parseLeases(b)
}

// parseLeases reads the leases of a state file: version 1 holds them at
// the top ({"leases": ...}), version 2 in its checksummed state
// ({"version": 2, "sha256": ..., "state": {"leases": ...}}).
func parseLeases(b []byte) map[string][]netip.Addr {
	type leases struct {
		Leases map[string][]netip.Addr `json:"leases"`
	}
	var st struct {
		leases
		State *leases `json:"state"`
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	l := st.Leases
	if st.State != nil {
		l = st.State.Leases
	}
	if l == nil {
		l = map[string][]netip.Addr{}
	}
	return l
}

// ipLink is what the campaign reads of one link of `ip -j addr`.
type ipLink struct {
	Name     string `json:"ifname"`
	LinkType string `json:"link_type"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

// parseDevices parses `ip -j addr`: the links other than loopback, with
// their global addresses.
func parseDevices(out string) ([]Device, error) {
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("ip -j addr: %w", err)
	}
	var devs []Device
	for _, ln := range links {
		if ln.LinkType == "loopback" {
			continue
		}
		d := Device{Name: ln.Name}
		for _, a := range ln.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil || a.Scope != "global" {
				continue
			}
			d.Addrs = append(d.Addrs, netip.PrefixFrom(ip, a.Prefixlen))
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// containerView reads the devices of container c's namespace.
func (l *Lab) containerView(ctx context.Context, c ContainerView) ContainerView {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	out, err := l.run.run(ctx, "ip", "-j", "-n", c.Netns, "addr")
	if err == nil {
		c.Devices, err = parseDevices(out)
	}
	if err != nil {
		c.Err = err.Error()
	}
	return c
}

// observe asks hosts (in parallel) and reads containers (four at a time).
func (l *Lab) observe(ctx context.Context, hosts []string, containers []ContainerView) Observation {
	var o Observation
	o.Hosts = make([]HostView, len(hosts))
	o.Containers = make([]ContainerView, len(containers))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { o.Hosts[i] = l.view(ctx, h) })
	}
	sem := make(chan struct{}, 4)
	for i, c := range containers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o.Containers[i] = l.containerView(ctx, c)
		})
	}
	wg.Wait()
	return o
}
