package hostnet

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/afpacket"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dhcp"
)

// Host is the host side of the networks with a gateway on this host (nat,
// overlay, l2tunnel): a TUN device per network in the agent's own
// namespace, holding the network's gateway address, attached to the switch
// as the network's gateway port; and the nftables tables "ip vxnet" and
// "ip6 vxnet", with the masquerade, port-publishing and filter rules. Sync
// makes both match what it is given; Close removes them.
type Host struct {
	sw    *dataplane.Switch
	mtu   int
	log   *slog.Logger
	guard Guard

	mu      sync.Mutex
	gws     map[string]*gateway
	rules   string // the ruleset last applied
	v6      bool   // it holds an ip6 table (removed only when gone)
	uplinks map[string]*dataplane.Uplink
	dhcp    map[string]*dhcp.Clients
}

type gateway struct {
	net  Gateway
	port *dataplane.Port
}

// NewHost returns a Host that attaches gateway ports to sw, guarding the
// host's own ports.
func NewHost(sw *dataplane.Switch, mtu int, log *slog.Logger, guard Guard) *Host {
	return &Host{sw: sw, mtu: mtu, log: log, guard: guard, gws: map[string]*gateway{}, uplinks: map[string]*dataplane.Uplink{}, dhcp: map[string]*dhcp.Clients{}}
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

// Sync applies the netfilter rules for nets and pubs, then creates the
// gateways of nets that are missing: a gateway never forwards without its
// rules (without nft there is none). Gateways of networks gone stay until
// Prune, so that the caller can first publish a forwarding table without
// them. It goes on past a failing network and returns every error.
func (h *Host) Sync(nets []Gateway, pubs []Published) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Nothing applied yet and nothing to apply: no nft run at all (a host
	// without gateways never needs nftables).
	if len(nets) == 0 && h.rules == "" {
		return nil
	}
	v6 := needsV6(nets, pubs) || h.v6
	if rules := ruleset(nets, pubs, h.guard, v6); rules != h.rules {
		if err := runNft(rules); err != nil {
			return err
		}
		h.rules, h.v6 = rules, needsV6(nets, pubs)
	}
	var errs []error
	for _, n := range nets {
		if h.gws[n.Name] != nil {
			continue
		}
		g, err := h.addGateway(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q: gateway: %w", n.Name, err))
			continue
		}
		h.gws[n.Name] = g
		h.log.Info("gateway added", "network", n.Name, "device", GatewayDevice(n.Name), "addresses", fmt.Sprint(gatewayAddrs(n)))
	}
	return errors.Join(errs...)
}

// Prune removes the gateways of networks not in nets, or whose subnet or
// gateway changed (Sync adds them again). It reports whether it removed
// any.
func (h *Host) Prune(nets []Gateway) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[string]Gateway{}
	for _, n := range nets {
		want[n.Name] = n
	}
	removed := false
	for name, g := range h.gws {
		if w, ok := want[name]; !ok || w.Subnet != g.net.Subnet || w.Gateway != g.net.Gateway ||
			w.Subnet6 != g.net.Subnet6 || w.Gateway6 != g.net.Gateway6 {
			h.sw.RemovePort(g.port)
			delete(h.gws, name)
			removed = true
			h.log.Info("gateway removed", "network", name, "device", GatewayDevice(name))
		}
	}
	return removed
}

// gatewayAddrs are the addresses a gateway holds.
func gatewayAddrs(n Gateway) []netip.Addr {
	out := []netip.Addr{n.Gateway}
	if n.Gateway6.IsValid() {
		out = append(out, n.Gateway6)
	}
	return out
}

func (h *Host) addGateway(n Gateway) (*gateway, error) {
	if !n.Gateway.IsValid() || !n.Subnet.Contains(n.Gateway) {
		return nil, fmt.Errorf("gateway %v is not in subnet %v", n.Gateway, n.Subnet)
	}
	addrs := []netip.Prefix{netip.PrefixFrom(n.Gateway, n.Subnet.Bits())}
	if n.Subnet6.IsValid() {
		if !n.Gateway6.IsValid() || !n.Subnet6.Contains(n.Gateway6) || n.Subnet.Addr().Is6() {
			return nil, fmt.Errorf("IPv6 gateway %v is not in IPv6 subnet %v", n.Gateway6, n.Subnet6)
		}
		addrs = append(addrs, netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()))
	}
	name := GatewayDevice(n.Name)
	dev, err := tun.Create(tun.Config{Name: name, MTU: h.mtu, Addresses: addrs})
	if err != nil && len(addrs) > 1 {
		// A dual-stack network's IPv6 half must not take its IPv4 half
		// down (a host with IPv6 disabled): IPv4 alone, and said so.
		h.log.Warn("the network's gateway gets no IPv6 address: its containers have no IPv6 way out on this host", "network", n.Name, "error", err)
		addrs = addrs[:1]
		dev, err = tun.Create(tun.Config{Name: name, MTU: h.mtu, Addresses: addrs})
	}
	if err != nil {
		return nil, err
	}
	// The host routes between networks and out of them.
	for _, v6 := range []bool{false, true} {
		if _, _, ok := n.side(v6); !ok {
			continue
		}
		forward := "net/ipv4/ip_forward"
		if v6 {
			forward = "net/ipv6/conf/all/forwarding"
		}
		err := h.writeSysctl(forward, "1")
		if err != nil && v6 && !n.Subnet.Addr().Is6() {
			h.log.Warn("IPv6 forwarding stays off: the network's containers have no IPv6 way out on this host", "network", n.Name, "error", err)
			continue
		}
		if err != nil {
			dev.Close()
			return nil, err
		}
	}
	port, err := h.sw.AddPort("gateway/"+n.Name, dev)
	if err != nil {
		dev.Close()
		return nil, err
	}
	// Published ports answer on 127.0.0.1 too: the host may route
	// loopback-sourced packets out of this device (masqueraded below).
	if n.Subnet.Addr().Is4() {
		if err := h.writeSysctl("net/ipv4/conf/"+name+"/route_localnet", "1"); err != nil {
			h.log.Warn("published ports will not answer on 127.0.0.1", "network", n.Name, "error", err)
		}
	}
	return &gateway{net: n, port: port}, nil
}

// Uplink returns the switch's uplink on this host's NIC called name
// (transparent, l2bridge), opening it on first use, in promiscuous mode:
// transparent endpoints have MACs of their own.
func (h *Host) Uplink(name string) (*dataplane.Uplink, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.uplinks[name]; u != nil {
		return u, nil
	}
	c, err := afpacket.Open(name, true)
	if err != nil {
		return nil, err
	}
	u, err := h.sw.AddUplink(name, uplinkDev{c})
	if err != nil {
		c.Close()
		return nil, err
	}
	h.uplinks[name] = u
	h.log.Info("uplink opened", "uplink", name)
	return u, nil
}

// DHCP returns the DHCP clients of the uplink on the NIC called name,
// opening the uplink on first use.
func (h *Host) DHCP(name string) (*dhcp.Clients, error) {
	u, err := h.Uplink(name)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.dhcp[name]
	if c == nil {
		c = dhcp.NewClients(u)
		h.dhcp[name] = c
	}
	return c, nil
}

// uplinkDev adapts an AF_PACKET socket to the switch's UplinkDevice.
type uplinkDev struct{ *afpacket.Conn }

func (u uplinkDev) NewWriter() dataplane.FrameWriter { return u.Conn.NewWriter() }

// PruneUplinks closes the uplinks not named in keep; call it after a
// table without them is published.
func (h *Host) PruneUplinks(keep map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, u := range h.uplinks {
		if !keep[name] {
			h.sw.RemoveUplink(u)
			delete(h.uplinks, name)
			delete(h.dhcp, name)
			h.log.Info("uplink closed", "uplink", name)
		}
	}
}

// Close removes every gateway and uplink and the netfilter table.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, u := range h.uplinks {
		h.sw.RemoveUplink(u)
		delete(h.uplinks, name)
	}
	for name, g := range h.gws {
		h.sw.RemovePort(g.port)
		delete(h.gws, name)
	}
	if h.rules == "" {
		return nil
	}
	v6 := h.v6
	h.rules, h.v6 = "", false
	return runNft(ruleset(nil, nil, h.guard, v6))
}

// runNft applies a script with nft(8).
func runNft(script string) error {
	bin, err := exec.LookPath("nft")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nft"); serr != nil {
			return errors.New("nft not found: the way out of nat, overlay and l2tunnel networks (masquerade) and published ports are nftables rules (apt-get install nftables)")
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

func (h *Host) writeSysctl(key, value string) error {
	dir := h.guard.SysctlDir
	if dir == "" {
		dir = "/proc/sys"
	}
	if err := os.WriteFile(filepath.Join(dir, key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}
