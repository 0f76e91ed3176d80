package static

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

const goodConfig = `{
  "vtep": "198.18.0.1",
  "networks": [{
    "vni": 4097,
    "subnets": ["10.0.9.0/24", "fd00:9::/64"],
    "endpoints": [{"name": "web", "netns": "c1", "addresses": ["10.0.9.2/24", "fd00:9::2/64"]}],
    "remotes": [{"vtep": "198.18.0.2", "mac": "02:00:00:00:09:03", "addresses": ["10.0.9.3"]}],
    "floodVteps": ["198.18.0.3"],
    "services": [{"name": "api", "vips": ["10.0.9.100"], "tasks": ["10.0.9.3", "10.0.9.2"]}]
  }]
}`

func TestParse_good(t *testing.T) {
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.VXLANPort != 4789 || c.MTU != 1450 {
		t.Errorf("defaults: port %d mtu %d, want 4789 and 1450", c.VXLANPort, c.MTU)
	}
	n := c.Networks[0]
	e := n.Endpoints[0]
	if e.Ifname != "vxnet0" || e.MAC != (vxlan.MAC{0x02, 0x42, 10, 0, 9, 2}) {
		t.Errorf("endpoint defaults: ifname %q mac %v", e.Ifname, e.MAC)
	}
	if n.Remotes[0].MAC != (vxlan.MAC{2, 0, 0, 0, 9, 3}) || n.Remotes[0].VTEP != netip.MustParseAddr("198.18.0.2") {
		t.Errorf("remote %+v", n.Remotes[0])
	}
	if len(n.FloodVTEPs) != 1 || len(n.Subnets) != 2 {
		t.Errorf("network %+v", n)
	}
	if len(n.Services) != 1 || n.Services[0].Name != "api" || len(n.Services[0].Tasks) != 2 || n.Services[0].VIPs[0] != netip.MustParseAddr("10.0.9.100") {
		t.Errorf("services %+v", n.Services)
	}
	// Over an IPv6 underlay the headers are 20 bytes longer: 1430 fits.
	v6 := strings.NewReplacer(`"198.18.0.1"`, `"fd18::1"`, `"198.18.0.2"`, `"fd18::2"`, `"198.18.0.3"`, `"fd18::3"`).Replace(goodConfig)
	if c, err := Parse([]byte(v6)); err != nil || c.MTU != 1430 {
		t.Errorf("IPv6 vtep: config %+v (%v), want mtu 1430", c, err)
	}
}

func TestParse_errorsNameFieldAndValue(t *testing.T) {
	for name, tc := range map[string]struct {
		edit string // replaces the first occurrence of from
		from string
		want []string
	}{
		"bad vtep":         {`"vtep": "198.18.0.x"`, `"vtep": "198.18.0.1"`, []string{"vtep", "198.18.0.x"}},
		"vni zero":         {`"vni": 0`, `"vni": 4097`, []string{"networks[0].vni", `"0"`}},
		"vni too big":      {`"vni": 16777216`, `"vni": 4097`, []string{"networks[0].vni", "16777216"}},
		"bad subnet":       {`"10.0.9.0/33"`, `"10.0.9.0/24"`, []string{"networks[0].subnets[0]", "10.0.9.0/33"}},
		"address no mask":  {`"10.0.9.2"`, `"10.0.9.2/24"`, []string{"networks[0].endpoints[0].addresses[0]", "10.0.9.2"}},
		"no netns":         {`"netns": ""`, `"netns": "c1"`, []string{"networks[0].endpoints[0].netns"}},
		"multicast mac":    {`"mac": "01:00:00:00:09:03"`, `"mac": "02:00:00:00:09:03"`, []string{"networks[0].remotes[0].mac", "01:00:00:00:09:03"}},
		"bad remote addr":  {`"10.0.9.300"`, `"10.0.9.3"`, []string{"networks[0].remotes[0].addresses[0]", "10.0.9.300"}},
		"bad flood vtep":   {`"198.18.0.300"`, `"198.18.0.3"`, []string{"networks[0].floodVteps[0]", "198.18.0.300"}},
		"unknown field":    {`"vtepp": "198.18.0.1"`, `"vtep": "198.18.0.1"`, []string{"unknown field", "vtepp"}},
		"wrong type":       {`"vni": "4097"`, `"vni": 4097`, []string{"vni", "string"}},
		"long ifname":      {`"name": "web", "ifname": "a-very-long-interface"`, `"name": "web"`, []string{"ifname", "a-very-long-interface"}},
		"unknown nested":   {`"networks": [], "x": [{`, `"networks": [{`, []string{"unknown field"}},
		"dup vni":          {`"networks": [{"vni": 4097}, {`, `"networks": [{`, []string{"networks[1].vni", "already used by networks[0]"}},
		"remote is self":   {`"vtep": "198.18.0.1", "mac"`, `"vtep": "198.18.0.2", "mac"`, []string{"networks[0].remotes[0].vtep", "own vtep"}},
		"remote family":    {`"vtep": "fd00::2", "mac"`, `"vtep": "198.18.0.2", "mac"`, []string{"networks[0].remotes[0].vtep", "IP version"}},
		"flood vtep self":  {`"floodVteps": ["198.18.0.1"]`, `"floodVteps": ["198.18.0.3"]`, []string{"networks[0].floodVteps[0]", "own vtep"}},
		"addr outside":     {`"10.0.8.2/24"`, `"10.0.9.2/24"`, []string{"networks[0].endpoints[0].addresses[0]", "outside"}},
		"addr taken":       {`"addresses": ["10.0.9.2"]`, `"addresses": ["10.0.9.3"]`, []string{"networks[0].remotes[0].addresses[0]", "already used by networks[0].endpoints[0].addresses[0]"}},
		"mac taken":        {`"mac": "02:42:0a:00:09:02"`, `"mac": "02:00:00:00:09:03"`, []string{"networks[0].remotes[0].mac", "already used"}},
		"ifname slash":     {`"name": "web", "ifname": "a/b"`, `"name": "web"`, []string{"ifname", "a/b"}},
		"ipv6 small mtu":   {`"vtep": "198.18.0.1", "mtu": 1000`, `"vtep": "198.18.0.1"`, []string{"fd00:9::2/64", "1280"}},
		"mtu out of range": {`"vtep": "198.18.0.1", "mtu": 100`, `"vtep": "198.18.0.1"`, []string{"mtu", "100"}},
		"bad vip":          {`"vips": ["10.0.9.x"]`, `"vips": ["10.0.9.100"]`, []string{"networks[0].services[0].vips[0]", "10.0.9.x"}},
		"vip taken":        {`"vips": ["10.0.9.3"]`, `"vips": ["10.0.9.100"]`, []string{"networks[0].services[0].vips[0]", "already used by networks[0].remotes[0]"}},
		"two v4 vips":      {`"vips": ["10.0.9.100", "10.0.9.101"]`, `"vips": ["10.0.9.100"]`, []string{"networks[0].services[0].vips[1]", "second VIP"}},
		"no vip":           {`"vips": []`, `"vips": ["10.0.9.100"]`, []string{"networks[0].services[0].vips", "no VIP"}},
		"unknown task":     {`"tasks": ["10.0.9.9"]`, `"tasks": ["10.0.9.3", "10.0.9.2"]`, []string{"networks[0].services[0].tasks[0]", "10.0.9.9", "no endpoint's"}},
		"no service name":  {`"name": "", "vips"`, `"name": "api", "vips"`, []string{"networks[0].services[0].name"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := strings.Replace(goodConfig, tc.from, tc.edit, 1)
			if cfg == goodConfig {
				t.Fatalf("test case edits nothing: %q not found", tc.from)
			}
			_, err := Parse([]byte(cfg))
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(`{"vtep":"::1","networks":[{"vni":1,"endpoints":[{"name":"a","netns":"/proc/1/ns/net","addresses":["::2/64"]}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if c != nil {
				t.Fatalf("config returned with error %v", err)
			}
			return
		}
		// An accepted config is complete.
		if !c.VTEP.IsValid() || c.VXLANPort == 0 || c.MTU == 0 || len(c.Networks) == 0 {
			t.Fatalf("accepted config with holes: %+v", c)
		}
		for _, n := range c.Networks {
			if vxlan.ValidVNI(n.VNI) != nil {
				t.Fatalf("accepted vni %d", n.VNI)
			}
			for _, e := range n.Endpoints {
				if e.MAC.IsZero() || e.MAC.IsMulticast() || len(e.Addresses) == 0 || e.Netns == "" {
					t.Fatalf("accepted endpoint %+v", e)
				}
			}
		}
	})
}

const encryptedConfig = `{
  "vtep": "198.18.0.1",
  "networks": [{
    "vni": 4097,
    "subnets": ["10.0.9.0/24", "fd00:9::/64"],
    "endpoints": [{"name": "web", "netns": "c1", "addresses": ["10.0.9.2/24", "fd00:9::2/64"]}],
    "remotes": [{"vtep": "198.18.0.2", "addresses": ["10.0.9.3"], "vxnet": true}],
    "encrypted": true
  }],
  "encryption": {"hostKey": "/k/host.key", "sessionKey": "/k/session.key", "cipher": "chacha20-poly1305"},
  "peers": [{"vtep": "198.18.0.2", "hostKey": "lsz4diHBor6k8hD+wsgOsYjgH/coC0uEu4M+fFSw8xA=", "sessionKey": "lsz4diHBor6k8hD+wsgOsYjgH/coC0uEu4M+fFSw8xA="}]
}`

func TestParse_encrypted(t *testing.T) {
	c, err := Parse([]byte(encryptedConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Networks[0].Encrypted || c.Encryption == nil || c.Encryption.Cipher.String() != "chacha20-poly1305" || len(c.Peers) != 1 {
		t.Fatalf("config %+v", c)
	}
	if m := c.EndpointMTU(c.Networks[0]); m != 1450-28 {
		t.Fatalf("endpoint MTU %d, want %d", m, 1450-28)
	}
	for name, tc := range map[string]struct {
		from, edit string
		want       []string
	}{
		"no keys":         {`"encryption": {"hostKey": "/k/host.key", "sessionKey": "/k/session.key", "cipher": "chacha20-poly1305"},`, ``, []string{"networks[0].encrypted", "encryption"}},
		"kernel remote":   {`"vxnet": true`, `"vxnet": false`, []string{"networks[0].remotes[0].vxnet", "vxnet hosts"}},
		"remote no peer":  {`"peers": [{"vtep": "198.18.0.2"`, `"peers": [{"vtep": "198.18.0.9"`, []string{"networks[0].remotes[0].vtep", "198.18.0.2", "peers"}},
		"bad peer key":    {`"hostKey": "lsz4`, `"hostKey": "xx`, []string{"peers[0].hostKey", "xxdiHBor"}},
		"bad cipher":      {`"cipher": "chacha20-poly1305"`, `"cipher": "des"`, []string{"encryption.cipher", "des"}},
		"no session key":  {`"sessionKey": "/k/session.key"`, `"sessionKey": ""`, []string{"encryption.sessionKey"}},
		"peer is me":      {`"peers": [{"vtep": "198.18.0.2"`, `"peers": [{"vtep": "198.18.0.1"`, []string{"peers[0].vtep", "own vtep"}},
		"mtu too small":   {`"vtep": "198.18.0.1",`, `"vtep": "198.18.0.1", "mtu": 600,`, []string{"mtu", "600", "576"}},
		"ipv6 needs 1280": {`"vtep": "198.18.0.1",`, `"vtep": "198.18.0.1", "mtu": 1300,`, []string{"fd00:9::2", "1272"}},
	} {
		bad := strings.Replace(encryptedConfig, tc.from, tc.edit, 1)
		if bad == encryptedConfig {
			t.Fatalf("%s: edit did not apply", name)
		}
		_, err := Parse([]byte(bad))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", name, err, w)
			}
		}
	}
}
