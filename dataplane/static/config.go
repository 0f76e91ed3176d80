package static

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Config is the file `vxnet dataplane --config` runs the switch from,
// before (or without) the control plane: every endpoint and every remote
// entry is written down by hand.
type Config struct {
	// VTEP is this host's underlay address; the VXLAN socket binds to it.
	VTEP netip.Addr
	// VXLANPort is the UDP port of every VTEP. Default 4789.
	VXLANPort uint16
	// MTU of the endpoints' TUN devices. Default 1450 (1430 with an
	// IPv6 VTEP): a 1500-byte underlay less VXLAN's headers.
	MTU int
	// Networks served by this host.
	Networks []Network
	// Encryption: this host's keys, for encrypted networks; nil if none.
	Encryption *Encryption
	// Peers: the keys of the other hosts of encrypted networks.
	Peers []Peer
}

// Encryption holds this host's keys for encrypted networks (package seal).
type Encryption struct {
	// HostKey is the file of the host's long-term private key.
	HostKey string
	// SessionKey is the file of a session private key made for this
	// start alone: Run lists its public key in HostKey+".sessions-used",
	// overwrites and removes the file, and refuses a key listed there
	// (its keys would seal from counter 0 again).
	SessionKey string
	// Cipher seals every datagram; every host must name the same. Default
	// AES-256-GCM, refused on a CPU without AES instructions (set
	// ChaCha20-Poly1305 on every host then).
	Cipher seal.Suite
}

// Peer is another host of encrypted networks: its public keys.
type Peer struct {
	VTEP       netip.Addr
	HostKey    seal.PublicKey
	SessionKey seal.PublicKey
}

// Network is one VXLAN network of a Config.
type Network struct {
	VNI        uint32
	Subnets    []netip.Prefix
	Endpoints  []Endpoint
	Remotes    []Remote
	FloodVTEPs []netip.Addr
	// Encrypted: every datagram between hosts is sealed; remotes must be
	// vxnet hosts listed in Peers.
	Encrypted bool
	// Services have virtual IPs: a local endpoint's connection to one
	// goes to one of its tasks (dataplane.ServiceSpec).
	Services []Service
}

// Service is a service of a network: its VIPs (one per family) and its
// tasks, addresses of the network's endpoints or remotes.
type Service struct {
	Name  string
	VIPs  []netip.Addr
	Tasks []netip.Addr
}

// Endpoint is a local endpoint: a TUN device created in Netns.
type Endpoint struct {
	Name      string
	Netns     string
	Ifname    string
	MAC       vxlan.MAC
	Addresses []netip.Prefix
}

// Remote is an endpoint on another host.
type Remote struct {
	VTEP      netip.Addr
	MAC       vxlan.MAC
	Addresses []netip.Addr
	// Vxnet: the remote host runs vxnet, whose switch takes TCP segments
	// with their checksum left partial (less work on both sides); false
	// for a kernel VXLAN peer.
	Vxnet bool
}

// The JSON form keeps every value a string so that errors can quote what
// the user wrote and name where they wrote it.
type configFile struct {
	VTEP       string          `json:"vtep"`
	VXLANPort  int             `json:"vxlanPort"`
	MTU        int             `json:"mtu"`
	Networks   []networkFile   `json:"networks"`
	Encryption *encryptionFile `json:"encryption"`
	Peers      []peerFile      `json:"peers"`
}

type encryptionFile struct {
	HostKey    string `json:"hostKey"`
	SessionKey string `json:"sessionKey"`
	Cipher     string `json:"cipher"`
}

type peerFile struct {
	VTEP       string `json:"vtep"`
	HostKey    string `json:"hostKey"`
	SessionKey string `json:"sessionKey"`
}

type networkFile struct {
	VNI        int            `json:"vni"`
	Subnets    []string       `json:"subnets"`
	Endpoints  []endpointFile `json:"endpoints"`
	Remotes    []remoteFile   `json:"remotes"`
	FloodVTEPs []string       `json:"floodVteps"`
	Encrypted  bool           `json:"encrypted"`
	Services   []serviceFile  `json:"services"`
}

type serviceFile struct {
	Name  string   `json:"name"`
	VIPs  []string `json:"vips"`
	Tasks []string `json:"tasks"`
}

type endpointFile struct {
	Name      string   `json:"name"`
	Netns     string   `json:"netns"`
	Ifname    string   `json:"ifname"`
	MAC       string   `json:"mac"`
	Addresses []string `json:"addresses"`
}

type remoteFile struct {
	VTEP      string   `json:"vtep"`
	MAC       string   `json:"mac"`
	Addresses []string `json:"addresses"`
	Vxnet     bool     `json:"vxnet"`
}

// Load reads and validates a static data-plane config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses and validates the JSON of a static config.
// Errors name the field by its JSON path and quote the value.
func Parse(b []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f configFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: trailing data after the JSON object")
	}
	return f.convert()
}

type fieldError struct {
	field string
	value any
	why   string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("config %s: %q %s", e.field, fmt.Sprint(e.value), e.why)
}

func (f *configFile) convert() (*Config, error) {
	c := &Config{MTU: f.MTU}
	var err error
	if c.VTEP, err = netip.ParseAddr(f.VTEP); err != nil || c.VTEP.IsUnspecified() || c.VTEP.IsMulticast() {
		return nil, &fieldError{"vtep", f.VTEP, "is not a unicast IP address (this host's underlay address)"}
	}
	switch {
	case f.VXLANPort == 0:
		c.VXLANPort = vxlan.DefaultPort
	case f.VXLANPort < 1 || f.VXLANPort > 65535:
		return nil, &fieldError{"vxlanPort", f.VXLANPort, "is not a port number 1-65535"}
	default:
		c.VXLANPort = uint16(f.VXLANPort)
	}
	if c.MTU == 0 {
		c.MTU = tun.DefaultMTUFor(c.VTEP)
	} else if c.MTU < 576 || c.MTU > 9000 {
		return nil, &fieldError{"mtu", f.MTU, "is out of range 576-9000"}
	}
	if len(f.Networks) == 0 {
		return nil, &fieldError{"networks", "[]", "lists no network"}
	}
	for i := range f.Networks {
		n, err := f.Networks[i].convert(fmt.Sprintf("networks[%d]", i))
		if err != nil {
			return nil, err
		}
		c.Networks = append(c.Networks, n)
	}
	if e := f.Encryption; e != nil {
		c.Encryption = &Encryption{HostKey: e.HostKey, SessionKey: e.SessionKey}
		if e.HostKey == "" {
			return nil, &fieldError{"encryption.hostKey", "", "is empty: name the host's private key file (vxnet dataplane keygen FILE makes one)"}
		}
		if e.SessionKey == "" {
			return nil, &fieldError{"encryption.sessionKey", "", "is empty: name a session private key file made for this start (vxnet dataplane keygen FILE)"}
		}
		switch e.Cipher {
		case "", "auto":
			// Never AES-GCM without AES instructions: Go's software AES
			// is not constant-time.
			if !seal.HasAES() {
				return nil, &fieldError{"encryption.cipher", e.Cipher, "is auto, and this CPU has no AES instructions: set chacha20-poly1305 here and on every peer"}
			}
			c.Encryption.Cipher = seal.AES256GCM
		default:
			if c.Encryption.Cipher, err = seal.ParseSuite(e.Cipher); err != nil {
				return nil, &fieldError{"encryption.cipher", e.Cipher, "is not a cipher: aes-256-gcm, chacha20-poly1305 or auto"}
			}
		}
	}
	for i, p := range f.Peers {
		at := fmt.Sprintf("peers[%d]", i)
		var out Peer
		if out.VTEP, err = netip.ParseAddr(p.VTEP); err != nil {
			return nil, &fieldError{at + ".vtep", p.VTEP, "is not an IP address"}
		}
		if out.HostKey, err = seal.ParsePublicKey(p.HostKey); err != nil {
			return nil, &fieldError{at + ".hostKey", p.HostKey, "is not a public key (32 bytes in base64, as vxnet dataplane keygen prints)"}
		}
		if out.SessionKey, err = seal.ParsePublicKey(p.SessionKey); err != nil {
			return nil, &fieldError{at + ".sessionKey", p.SessionKey, "is not a public key (32 bytes in base64, as vxnet dataplane keygen prints)"}
		}
		c.Peers = append(c.Peers, out)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check holds the rules that span fields: what the data plane would refuse
// later, caught here so the error names the JSON path and no device has
// been created yet.
func (c *Config) check() error {
	vnis := map[uint32]int{}
	names := map[string]string{}
	peers := map[netip.Addr]int{}
	for i, p := range c.Peers {
		at := fmt.Sprintf("peers[%d].vtep", i)
		if err := c.checkVTEP(at, p.VTEP); err != nil {
			return err
		}
		if j, dup := peers[p.VTEP.Unmap()]; dup {
			return &fieldError{at, p.VTEP, fmt.Sprintf("is already listed as peers[%d]", j)}
		}
		peers[p.VTEP.Unmap()] = i
	}
	for i, n := range c.Networks {
		at := fmt.Sprintf("networks[%d]", i)
		if j, dup := vnis[n.VNI]; dup {
			return &fieldError{at + ".vni", n.VNI, fmt.Sprintf("is already used by networks[%d]", j)}
		}
		vnis[n.VNI] = i
		if n.Encrypted {
			if c.Encryption == nil {
				return &fieldError{at + ".encrypted", true, "needs this host's keys: add \"encryption\" with hostKey and sessionKey"}
			}
			if len(n.FloodVTEPs) > 0 {
				return &fieldError{at + ".floodVteps", n.FloodVTEPs[0], "cannot take part in an encrypted network: a kernel VTEP cannot open sealed datagrams"}
			}
			if m := c.MTU - seal.Overhead; m < 576 {
				return &fieldError{"mtu", c.MTU, fmt.Sprintf("leaves %d bytes inside an encrypted network (%d less), below 576", m, seal.Overhead)}
			}
			for j, r := range n.Remotes {
				rp := fmt.Sprintf("%s.remotes[%d]", at, j)
				if !r.Vxnet {
					return &fieldError{rp + ".vxnet", false, "must be true on an encrypted network: only vxnet hosts open sealed datagrams"}
				}
				if _, ok := peers[r.VTEP.Unmap()]; !ok {
					return &fieldError{rp + ".vtep", r.VTEP, "is not in peers: an encrypted network needs that host's public keys"}
				}
			}
		}
		for j, v := range n.FloodVTEPs {
			if err := c.checkVTEP(fmt.Sprintf("%s.floodVteps[%d]", at, j), v); err != nil {
				return err
			}
		}
		addrs := map[netip.Addr]string{}
		macs := map[vxlan.MAC]string{}
		claim := func(field string, a netip.Addr, mac vxlan.MAC) error {
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
				return &fieldError{field, a, "is not a unicast address an endpoint can have"}
			}
			if len(n.Subnets) > 0 && !inAny(n.Subnets, a) {
				return &fieldError{field, a, "is outside the network's subnets"}
			}
			if other, dup := addrs[a]; dup {
				return &fieldError{field, a, "is already used by " + other}
			}
			addrs[a] = field
			return nil
		}
		useMAC := func(field string, m vxlan.MAC) error {
			if other, dup := macs[m]; dup {
				return &fieldError{field, m, "is already used by " + other}
			}
			macs[m] = field
			return nil
		}
		for j, e := range n.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d]", at, j)
			if other, dup := names[e.Name]; dup {
				return &fieldError{ep + ".name", e.Name, "is already used by " + other}
			}
			names[e.Name] = ep
			if err := useMAC(ep+".mac", e.MAC); err != nil {
				return err
			}
			for k, p := range e.Addresses {
				field := fmt.Sprintf("%s.addresses[%d]", ep, k)
				if err := claim(field, p.Addr(), e.MAC); err != nil {
					return err
				}
				if m := c.EndpointMTU(n); p.Addr().Is6() && m < 1280 {
					return &fieldError{field, p, fmt.Sprintf("needs an MTU of at least 1280 (IPv6), the network's is %d", m)}
				}
			}
		}
		for j, r := range n.Remotes {
			rp := fmt.Sprintf("%s.remotes[%d]", at, j)
			if err := c.checkVTEP(rp+".vtep", r.VTEP); err != nil {
				return err
			}
			if err := useMAC(rp+".mac", r.MAC); err != nil {
				return err
			}
			for k, a := range r.Addresses {
				if err := claim(fmt.Sprintf("%s.addresses[%d]", rp, k), a, r.MAC); err != nil {
					return err
				}
			}
		}
		held := map[netip.Addr]bool{}
		for a := range addrs {
			held[a] = true
		}
		for j, s := range n.Services {
			sp := fmt.Sprintf("%s.services[%d]", at, j)
			if s.Name == "" {
				return &fieldError{sp + ".name", "", "is empty: name the service"}
			}
			if len(s.VIPs) == 0 {
				return &fieldError{sp + ".vips", "[]", "lists no VIP"}
			}
			fams := map[bool]bool{}
			for k, v := range s.VIPs {
				field := fmt.Sprintf("%s.vips[%d]", sp, k)
				if err := claim(field, v, vxlan.MAC{}); err != nil {
					return err
				}
				if fams[v.Is6()] {
					return &fieldError{field, v, "is a second VIP of its family"}
				}
				fams[v.Is6()] = true
			}
			for k, tk := range s.Tasks {
				if !held[tk] {
					return &fieldError{fmt.Sprintf("%s.tasks[%d]", sp, k), tk, "is no endpoint's or remote's address on the network"}
				}
			}
		}
	}
	return nil
}

// EndpointMTU is the MTU of n's endpoints: the config's, less what
// sealing adds on an encrypted network.
func (c *Config) EndpointMTU(n Network) int {
	if n.Encrypted {
		return c.MTU - seal.Overhead
	}
	return c.MTU
}

// checkVTEP accepts another host's underlay address.
func (c *Config) checkVTEP(field string, v netip.Addr) error {
	switch {
	case !v.IsValid() || v.IsUnspecified() || v.IsMulticast():
		return &fieldError{field, v, "is not a unicast address"}
	case v.Unmap() == c.VTEP.Unmap():
		return &fieldError{field, v, "is this host's own vtep"}
	case v.Unmap().Is4() != c.VTEP.Unmap().Is4():
		return &fieldError{field, v, fmt.Sprintf("is not of the same IP version as vtep %v", c.VTEP)}
	}
	return nil
}

func inAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (n *networkFile) convert(at string) (Network, error) {
	out := Network{VNI: uint32(n.VNI), Encrypted: n.Encrypted}
	if n.VNI < 1 || n.VNI > vxlan.MaxVNI {
		return out, &fieldError{at + ".vni", n.VNI, fmt.Sprintf("is out of range 1-%d", vxlan.MaxVNI)}
	}
	for i, s := range n.Subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return out, &fieldError{fmt.Sprintf("%s.subnets[%d]", at, i), s, "is not a CIDR prefix such as 10.0.9.0/24"}
		}
		out.Subnets = append(out.Subnets, p.Masked())
	}
	for i, s := range n.FloodVTEPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return out, &fieldError{fmt.Sprintf("%s.floodVteps[%d]", at, i), s, "is not an IP address"}
		}
		out.FloodVTEPs = append(out.FloodVTEPs, a)
	}
	for i := range n.Endpoints {
		e, err := n.Endpoints[i].convert(fmt.Sprintf("%s.endpoints[%d]", at, i))
		if err != nil {
			return out, err
		}
		out.Endpoints = append(out.Endpoints, e)
	}
	for i := range n.Remotes {
		r, err := n.Remotes[i].convert(fmt.Sprintf("%s.remotes[%d]", at, i))
		if err != nil {
			return out, err
		}
		out.Remotes = append(out.Remotes, r)
	}
	for i, s := range n.Services {
		sp := fmt.Sprintf("%s.services[%d]", at, i)
		svc := Service{Name: s.Name}
		for j, v := range s.VIPs {
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" {
				return out, &fieldError{fmt.Sprintf("%s.vips[%d]", sp, j), v, "is not an IP address"}
			}
			svc.VIPs = append(svc.VIPs, a.Unmap())
		}
		for j, tk := range s.Tasks {
			a, err := netip.ParseAddr(tk)
			if err != nil || a.Zone() != "" {
				return out, &fieldError{fmt.Sprintf("%s.tasks[%d]", sp, j), tk, "is not an IP address"}
			}
			svc.Tasks = append(svc.Tasks, a.Unmap())
		}
		out.Services = append(out.Services, svc)
	}
	return out, nil
}

func (e *endpointFile) convert(at string) (Endpoint, error) {
	out := Endpoint{Name: e.Name, Netns: e.Netns, Ifname: e.Ifname}
	if e.Name == "" {
		return out, &fieldError{at + ".name", "", "is empty: every endpoint needs a name"}
	}
	if e.Netns == "" {
		return out, &fieldError{at + ".netns", "", "is empty: name the container's network namespace (ip netns) or give its path"}
	}
	if out.Ifname == "" {
		out.Ifname = tun.DefaultName
	}
	if len(out.Ifname) > tun.MaxNameLen || strings.ContainsAny(out.Ifname, "/: \t\n") {
		return out, &fieldError{at + ".ifname", e.Ifname, fmt.Sprintf("is not an interface name (1-%d characters, no '/', ':' or spaces)", tun.MaxNameLen)}
	}
	if len(e.Addresses) == 0 {
		return out, &fieldError{at + ".addresses", "[]", "lists no address"}
	}
	for i, s := range e.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return out, &fieldError{fmt.Sprintf("%s.addresses[%d]", at, i), s, "is not an address with a prefix length such as 10.0.9.2/24"}
		}
		out.Addresses = append(out.Addresses, p)
	}
	mac, err := parseMACField(at+".mac", e.MAC)
	if err != nil {
		return out, err
	}
	if mac.IsZero() {
		mac = vxlan.StableMAC(out.Addresses[0].Addr())
	}
	out.MAC = mac
	return out, nil
}

func (r *remoteFile) convert(at string) (Remote, error) {
	out := Remote{Vxnet: r.Vxnet}
	var err error
	if out.VTEP, err = netip.ParseAddr(r.VTEP); err != nil {
		return out, &fieldError{at + ".vtep", r.VTEP, "is not an IP address"}
	}
	if len(r.Addresses) == 0 {
		return out, &fieldError{at + ".addresses", "[]", "lists no address"}
	}
	for i, s := range r.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return out, &fieldError{fmt.Sprintf("%s.addresses[%d]", at, i), s, "is not an IP address"}
		}
		out.Addresses = append(out.Addresses, a)
	}
	if out.MAC, err = parseMACField(at+".mac", r.MAC); err != nil {
		return out, err
	}
	if out.MAC.IsZero() {
		out.MAC = vxlan.StableMAC(out.Addresses[0])
	}
	return out, nil
}

func parseMACField(field, s string) (vxlan.MAC, error) {
	if s == "" {
		return vxlan.MAC{}, nil
	}
	m, err := vxlan.ParseMAC(s)
	if err != nil || m.IsMulticast() || m.IsZero() {
		return m, &fieldError{field, s, "is not a unicast MAC address such as 02:42:0a:00:09:02"}
	}
	return m, nil
}
