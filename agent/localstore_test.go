package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/agent/api"
	"github.com/vxnet/vxnet/kvs"
)

func TestLocalStore_roundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := openLocalStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := netip.MustParseAddr("10.0.9.2"), netip.MustParseAddr("10.0.9.3")
	s.Leased("web", a1)
	s.Leased("web", a2)
	s.Released("web", a1)
	s.update(func(st *localState) {
		st.Clock = 42
		st.Rows = []kvs.Row{{Table: "networks", Key: "web", Value: []byte(`{}`)}}
		st.Endpoints = []api.Endpoint{{Name: "c1", Network: "web"}}
	})
	s2, err := openLocalStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, ok, _ := s2.Load("web")
	if !ok || len(st.Allocated) != 1 || st.Allocated[0] != a2 {
		t.Fatalf("leases after reopening: %v %v", st.Allocated, ok)
	}
	snap := s2.snapshot()
	if snap.Clock != 42 || len(snap.Rows) != 1 || len(snap.Endpoints) != 1 {
		t.Fatalf("state after reopening: %+v", snap)
	}
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
}

func TestLocalStore_damagedFileNamed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600)
	_, err := openLocalStore(dir)
	if err == nil || !strings.Contains(err.Error(), "state.json is damaged") {
		t.Fatalf("error %v", err)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"version": 99}`), 0o600)
	if _, err := openLocalStore(dir); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("error %v", err)
	}
}

func TestBucket(t *testing.T) {
	for key, want := range map[string]string{
		"block/web/3/h1": "block/web/",
		"host/web/h1":    "host/web/",
		"subnet/":        "subnet/",
		"subnet/web/":    "subnet/web/",
		"x":              "x",
	} {
		if got := bucket(key); got != want {
			t.Errorf("bucket(%q) = %q, want %q", key, got, want)
		}
	}
}

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
	} {
		c := tc.cfg
		c.setDefaults()
		_, _, _, err := c.validate()
		ce, ok := err.(*ConfigError)
		if !ok || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
}
