package tables

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vxnet/vxnet/internal/names"
)

// Services is a cluster table: a service is the cluster's, not its
// creator's. Key: network/name. Of two creations of one key, the store
// keeps one (kvs: the greatest write wins); the other's creator gives its
// VIPs back when it sees that.
const Services = "services"

// Endpoint modes of a service.
const (
	// ModeVIP: the service's name resolves to its virtual IPs, and the
	// switches spread connections to them over the tasks.
	ModeVIP = "vip"
	// ModeDNSRR: the name resolves to the tasks' addresses, in a new
	// order each time; no VIP.
	ModeDNSRR = "dnsrr"
)

// Service is a service: a name on a network over the endpoints that
// joined it (Endpoint.Service), with virtual IPs in ModeVIP.
type Service struct {
	Name    string
	Network string
	Mode    string       // ModeVIP or ModeDNSRR
	VIPs    []netip.Addr // ModeVIP: one per family of the network; leased by VIPHost
	// VIPHost is the host whose IPAM lease the VIPs are (the creator).
	VIPHost string
	// Ports are published on every host of the cluster (the routing
	// mesh).
	Ports   []PublishedPort
	Creator string
	Created time.Time
}

// PublishedPort is a port of a service published on every host:
// connections to a host's Published port reach a task's Target port.
type PublishedPort struct {
	Published uint16
	Target    uint16
	Proto     string // "tcp" or "udp"
}

// String is the port as -p takes it: 8080:80/tcp.
func (p PublishedPort) String() string {
	return fmt.Sprintf("%d:%d/%s", p.Published, p.Target, p.Proto)
}

// ParsePublishedPort reads PUBLISHED:TARGET[/PROTO] (PROTO tcp by
// default), or a single PORT for both.
func ParsePublishedPort(s string) (PublishedPort, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return PublishedPort{}, fmt.Errorf("port %q: protocol %q: want tcp or udp", s, proto)
	}
	pub, target, two := strings.Cut(spec, ":")
	if !two {
		target = pub
	}
	p, err1 := strconv.ParseUint(pub, 10, 16)
	t, err2 := strconv.ParseUint(target, 10, 16)
	if err1 != nil || err2 != nil || p == 0 || t == 0 {
		return PublishedPort{}, fmt.Errorf("port %q: want PUBLISHED:TARGET[/tcp|udp] with ports 1-65535 (8080:80/tcp)", s)
	}
	return PublishedPort{Published: uint16(p), Target: uint16(t), Proto: proto}, nil
}

// ServiceKey is the key of a service in Services.
func ServiceKey(network, name string) string { return network + "/" + name }

// Key is s's key in Services.
func (s Service) Key() string { return ServiceKey(s.Network, s.Name) }

// VIP returns the VIP of a family, if the service has one.
func (s Service) VIP(v6 bool) (netip.Addr, bool) {
	for _, a := range s.VIPs {
		if a.Is6() == v6 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

type serviceWire struct {
	V       int       `json:"v,omitempty"`
	Name    string    `json:"name"`
	Network string    `json:"network"`
	Mode    string    `json:"mode"`
	VIPs    []string  `json:"vips,omitempty"`
	VIPHost string    `json:"vipHost,omitempty"`
	Ports   []string  `json:"ports,omitempty"`
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
}

// Encode is s's wire form.
func (s Service) Encode() []byte {
	w := serviceWire{V: 1, Name: s.Name, Network: s.Network, Mode: s.Mode, VIPHost: s.VIPHost, Creator: s.Creator, Created: s.Created}
	for _, a := range s.VIPs {
		w.VIPs = append(w.VIPs, a.String())
	}
	for _, p := range s.Ports {
		w.Ports = append(w.Ports, p.String())
	}
	b, _ := json.Marshal(w) // plain fields: cannot fail
	return b
}

// DecodeService reads the row at key of Services; the key must be the
// row's network/name.
func DecodeService(key string, value []byte) (Service, error) {
	var w serviceWire
	if err := json.Unmarshal(value, &w); err != nil {
		return Service{}, &RowError{Table: Services, Key: key, Reason: "not a service row: " + err.Error()}
	}
	if err := checkVersion(Services, key, w.V); err != nil {
		return Service{}, err
	}
	if key != ServiceKey(w.Network, w.Name) {
		return Service{}, &RowError{Services, key, "network/name", ServiceKey(w.Network, w.Name), "does not match the key"}
	}
	if err := names.Service(w.Name); err != nil {
		return Service{}, &RowError{Services, key, "name", w.Name, err.Error()}
	}
	if err := names.Network(w.Network); err != nil {
		return Service{}, &RowError{Services, key, "network", w.Network, err.Error()}
	}
	s := Service{Name: w.Name, Network: w.Network, Mode: w.Mode, VIPHost: w.VIPHost, Creator: w.Creator, Created: w.Created}
	switch w.Mode {
	case ModeVIP:
		if len(w.VIPs) == 0 || len(w.VIPs) > 2 {
			return Service{}, &RowError{Services, key, "vips", strings.Join(w.VIPs, ","), "a vip-mode service has one VIP per family"}
		}
	case ModeDNSRR:
		if len(w.VIPs) != 0 {
			return Service{}, &RowError{Services, key, "vips", strings.Join(w.VIPs, ","), "a dnsrr service has no VIP"}
		}
	default:
		return Service{}, &RowError{Services, key, "mode", w.Mode, "want vip or dnsrr"}
	}
	for _, v := range w.VIPs {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" || !a.IsGlobalUnicast() && !a.IsPrivate() {
			return Service{}, &RowError{Services, key, "vips", v, "not a unicast IP address"}
		}
		if _, dup := s.VIP(a.Is6()); dup {
			return Service{}, &RowError{Services, key, "vips", v, "a second VIP of its family"}
		}
		s.VIPs = append(s.VIPs, a.Unmap())
	}
	for _, ps := range w.Ports {
		p, err := ParsePublishedPort(ps)
		if err != nil {
			return Service{}, &RowError{Services, key, "ports", ps, err.Error()}
		}
		s.Ports = append(s.Ports, p)
	}
	return s, nil
}
