package config

import (
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/internal/etcdrun"
)

func TestConfig_validateNamesField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Name: "h", AdvertiseAddr: "0.0.0.0"}, "advertise-addr"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Join: []string{"x"}}, "join"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipKey: "AAAA"}, "gossip-key"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Profile: "wan"}, "profile"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", MTU: 100}, "mtu"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", VXLANPort: 70000}, "vxlan-port"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", VXLANPort: 7946}, "vxlan-port"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", JoinPort: 7946, JoinCert: "/c.pem", JoinKey: "/k.pem"}, "join-port"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipPort: 7000, JoinPort: 7000, JoinCert: "/c.pem", JoinKey: "/k.pem"}, "join-port"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "consul"}, "store"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd"}, "etcd-endpoints"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"10.0.0.1:2379"}}, "etcd-endpoints"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"http://10.0.0.1:2379/v2"}}, "etcd-endpoints"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", EtcdEndpoints: []string{"http://10.0.0.1:2379"}}, "etcd-endpoints"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, EtcdPrefix: "/"}, "etcd-prefix"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, EtcdLeaseTTL: 1}, "etcd-lease-ttl"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, EtcdCert: "/c.pem"}, "etcd-cert"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"https://e:2379"}, EtcdCA: "/nonexistent/ca.pem"}, "etcd-ca"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: "etcd", EtcdEndpoints: []string{"https://e:2379"}, EtcdCert: "/no/c.pem", EtcdKey: "/no/k.pem"}, "etcd-cert"},
	} {
		c := tc.cfg
		c.SetDefaults()
		_, _, _, err := c.Check()
		ce, ok := err.(*Error)
		if !ok || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
}

// TestConfig_joinPortFreeWithoutJoinService: without a join certificate
// no join service listens, so the gossip port may be the join port's
// default (as before join tokens).
func TestConfig_joinPortFreeWithoutJoinService(t *testing.T) {
	c := Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipPort: 7947}
	c.SetDefaults()
	if _, _, _, err := c.Check(); err != nil {
		t.Errorf("gossip port 7947 without a join service: %v", err)
	}
}

func TestConfig_etcdStoreAccepted(t *testing.T) {
	c := Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: StoreEtcd, EtcdEndpoints: []string{"http://10.0.0.1:2379", "https://10.0.0.2:2379/"}, EtcdPrefix: "/clusters/a"}
	c.SetDefaults()
	if _, _, _, err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if tc, err := c.EtcdTLS(); err != nil || tc == nil {
		t.Errorf("an https endpoint: TLS config %v, %v; want one with the system's CAs", tc, err)
	}
}

func TestConfig_etcdTLSFiles(t *testing.T) {
	files, err := etcdrun.WriteCerts(t.TempDir(), "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Name: "h", AdvertiseAddr: "198.18.0.1", Store: StoreEtcd, EtcdEndpoints: []string{"https://10.0.0.1:2379"},
		EtcdCA: files.CA, EtcdCert: files.ClientCert, EtcdKey: files.ClientKey}
	c.SetDefaults()
	if _, _, _, err := c.Check(); err != nil {
		t.Fatal(err)
	}
	tc, err := c.EtcdTLS()
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("TLS config %+v, %v: want the CA and the client certificate", tc, err)
	}
	// The key of another certificate: refused, naming the flag.
	c.EtcdKey = files.ServerKey
	if _, _, _, err := c.Check(); err == nil || err.(*Error).Field != "etcd-cert" {
		t.Errorf("a certificate with another's key: %v", err)
	}
	c.EtcdKey, c.EtcdCA = files.ClientKey, files.ClientKey // a key is no CA certificate
	if _, _, _, err := c.Check(); err == nil || err.(*Error).Field != "etcd-ca" {
		t.Errorf("a CA file with no certificate: %v", err)
	}
}

// Each interface address comes with its prefix length, and Network masks
// it: loopback's 127.0.0.1 is on 127.0.0.0/8, ::1 on ::1/128.
func TestInterfaceAddrs_networks(t *testing.T) {
	addrs, err := InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]netip.Prefix{
		netip.MustParseAddr("127.0.0.1"): netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParseAddr("::1"):       netip.MustParsePrefix("::1/128"),
	}
	seen := 0
	for _, ia := range addrs {
		if ia.Bits < 0 || ia.Bits > ia.Addr.BitLen() {
			t.Errorf("%s on %s: prefix length %d", ia.Addr, ia.Iface.Name, ia.Bits)
			continue
		}
		n := ia.Network()
		if !n.IsValid() || !n.Contains(ia.Addr) || n.Bits() != ia.Bits || n != n.Masked() {
			t.Errorf("%s/%d on %s: network %v", ia.Addr, ia.Bits, ia.Iface.Name, n)
		}
		if w, ok := want[ia.Addr]; ok {
			seen++
			if n != w {
				t.Errorf("%s: network %v, want %v", ia.Addr, n, w)
			}
		}
	}
	if seen == 0 {
		t.Skip("no loopback address on this machine's interfaces")
	}
	if n := (IfaceAddr{Addr: netip.MustParseAddr("10.0.0.1"), Bits: -1}).Network(); n.IsValid() {
		t.Errorf("unknown prefix length: network %v, want none", n)
	}
}
