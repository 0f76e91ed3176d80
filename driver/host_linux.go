package driver

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/tun"
)

// Host is the host side of the networks whose gateway lives on this host
// (nat): a TUN device per network in the agent's own namespace, holding the
// network's gateway address, attached to the switch as the network's
// gateway port; and one nftables table, "ip vxnet", with the masquerade and
// port-publishing rules. Sync makes both match what it is given; Close
// removes them.
type Host struct {
	sw  *dataplane.Switch
	mtu int
	log *slog.Logger

	mu    sync.Mutex
	gws   map[string]*gateway
	rules string // the ruleset last applied
}

type gateway struct {
	net  GatewayNetwork
	port *dataplane.Port
}

// NewHost returns a Host that attaches gateway ports to sw.
func NewHost(sw *dataplane.Switch, mtu int, log *slog.Logger) *Host {
	return &Host{sw: sw, mtu: mtu, log: log, gws: map[string]*gateway{}}
}

// Port returns the gateway port of a network, or nil.
func (h *Host) Port(network string) *dataplane.Port {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.gws[network]; g != nil {
		return g.port
	}
	return nil
}

// Sync creates the gateways of nets that are missing, removes those of
// networks not in nets, and applies the netfilter rules for nets and pubs.
// It goes on past a failing network and returns every error.
func (h *Host) Sync(nets []GatewayNetwork, pubs []Published) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	want := map[string]GatewayNetwork{}
	for _, n := range nets {
		want[n.Name] = n
	}
	for name, g := range h.gws {
		if w, ok := want[name]; !ok || w.Subnet != g.net.Subnet || w.Gateway != g.net.Gateway {
			h.sw.RemovePort(g.port)
			delete(h.gws, name)
			h.log.Info("gateway removed", "network", name, "device", GatewayDevice(name))
		} else {
			g.net = w
		}
	}
	masq := false
	for _, n := range nets {
		masq = masq || n.Masquerade
		if h.gws[n.Name] != nil {
			continue
		}
		g, err := h.addGateway(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q: gateway: %w", n.Name, err))
			continue
		}
		h.gws[n.Name] = g
		h.log.Info("gateway added", "network", n.Name, "device", GatewayDevice(n.Name), "address", n.Gateway)
	}
	if masq {
		if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
			errs = append(errs, err)
		}
	}
	var live []GatewayNetwork
	for _, n := range nets {
		if h.gws[n.Name] != nil {
			live = append(live, n)
		}
	}
	rules := ruleset(live, pubs)
	if rules != h.rules {
		if err := runNft(rules); err != nil {
			errs = append(errs, err)
		} else {
			h.rules = rules
		}
	}
	return errors.Join(errs...)
}

func (h *Host) addGateway(n GatewayNetwork) (*gateway, error) {
	if !n.Gateway.IsValid() || !n.Subnet.Contains(n.Gateway) {
		return nil, fmt.Errorf("gateway %v is not in subnet %v", n.Gateway, n.Subnet)
	}
	name := GatewayDevice(n.Name)
	dev, err := tun.Create(tun.Config{Name: name, MTU: h.mtu, Addresses: []netip.Prefix{netip.PrefixFrom(n.Gateway, n.Subnet.Bits())}})
	if err != nil {
		return nil, err
	}
	port, err := h.sw.AddPort("gateway/"+n.Name, dev)
	if err != nil {
		dev.Close()
		return nil, err
	}
	// Published ports answer on 127.0.0.1 too: the host may route
	// loopback-sourced packets out of this device (masqueraded below).
	if n.Subnet.Addr().Is4() {
		if err := writeSysctl("net/ipv4/conf/"+name+"/route_localnet", "1"); err != nil {
			h.log.Warn("published ports will not answer on 127.0.0.1", "network", n.Name, "error", err)
		}
	}
	return &gateway{net: n, port: port}, nil
}

// Close removes every gateway and the netfilter table.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, g := range h.gws {
		h.sw.RemovePort(g.port)
		delete(h.gws, name)
	}
	if h.rules == "" {
		return nil
	}
	h.rules = ""
	return runNft(ruleset(nil, nil))
}

// ruleset is the nft script that replaces table ip vxnet (IPv4; NAT of
// IPv6 subnets is not done). With no networks it only removes the table.
func ruleset(nets []GatewayNetwork, pubs []Published) string {
	var b strings.Builder
	// Create-then-delete makes the delete succeed whether or not the table
	// exists; the whole script is one transaction.
	b.WriteString("table ip vxnet\ndelete table ip vxnet\n")
	if len(nets) == 0 {
		return b.String()
	}
	b.WriteString("table ip vxnet {\n")
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	fmt.Fprintf(&b, "\t\tip saddr 127.0.0.0/8 oifname %q masquerade\n", GatewayPrefix+"*")
	sorted := append([]GatewayNetwork(nil), nets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, n := range sorted {
		if n.Masquerade && n.Subnet.Addr().Is4() {
			fmt.Fprintf(&b, "\t\tip saddr %v oifname != %q masquerade comment %q\n", n.Subnet.Masked(), GatewayPrefix+"*", n.Name)
		}
	}
	b.WriteString("\t}\n")
	var dnat strings.Builder
	ps := append([]Published(nil), pubs...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Proto != ps[j].Proto {
			return ps[i].Proto < ps[j].Proto
		}
		return ps[i].HostPort < ps[j].HostPort
	})
	for _, p := range ps {
		if !p.Addr.Is4() {
			continue
		}
		fmt.Fprintf(&dnat, "\t\tfib daddr type local %s dport %d dnat to %v:%d comment %q\n", p.Proto, p.HostPort, p.Addr, p.ContainerPort, p.Network+"/"+p.Endpoint)
	}
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n")
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n}\n")
	return b.String()
}

// runNft applies a script with nft(8).
func runNft(script string) error {
	bin, err := exec.LookPath("nft")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nft"); serr != nil {
			return errors.New("nft not found: the nat driver programs masquerade and published ports with nftables (apt-get install nftables)")
		}
		bin = "/usr/sbin/nft"
	}
	cmd := exec.Command(bin, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

func writeSysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}
