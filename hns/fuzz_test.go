package hns

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzDecode decodes HNS documents as a Client hands them to Programmer:
// decoding never panics, what decodes encodes stably, and the comparisons
// Programmer runs on it never panic.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var g struct {
			Network   json.RawMessage
			Endpoints []json.RawMessage
		}
		if err := json.Unmarshal(b, &g); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(g.Network))
		for _, e := range g.Endpoints {
			f.Add([]byte(e))
		}
	}
	// As HNS reports: NAT without a Type, hcn's empty objects, Health.
	f.Add([]byte(`{"ID":"A","Name":"nat","MacPool":{},"Dns":{},"Health":{"Extra":{}},"Flags":0,"SchemaVersion":{"Major":2,"Minor":0}}`))
	f.Add([]byte(`{"Policies":[{"Type":"ACL","Settings":[1,{"a":null}]}],"IpConfigurations":[{"IpAddress":"::ffff:1.2.3.4"}]}`))
	want, err := BuildNetwork(NetworkSpec{Name: "ov", Type: Overlay, VNI: 4097, Subnet: subnet9, Gateway: gw9, VTEP: vtep1})
	if err != nil {
		f.Fatal(err)
	}
	wantEp, err := BuildEndpoint(NetworkSpec{Name: "ov", Type: Overlay, VNI: 4097, Subnet: subnet9, Gateway: gw9, VTEP: vtep1}, "",
		EndpointSpec{Name: "r", Addr: netip.MustParsePrefix("10.0.9.3/24"), MAC: "02:42:0a:00:09:03", Remote: true, VTEP: vtep2})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var n Network
		if json.Unmarshal(data, &n) == nil {
			stable(t, &n, new(Network))
			networkMatches(want, n)
			networkMatches(n, want)
			networkMatches(n, n)
		}
		var e Endpoint
		if json.Unmarshal(data, &e) == nil {
			stable(t, &e, new(Endpoint))
			endpointMatches(wantEp, e)
			endpointMatches(e, wantEp)
			endpointMatches(e, e)
		}
	})
}

// stable checks that v encodes to what decoding its encoding into fresh
// encodes to.
func stable[T any](t *testing.T, v, fresh *T) {
	t.Helper()
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal a decoded document: %v", err)
	}
	if err := json.Unmarshal(b1, fresh); err != nil {
		t.Fatalf("unmarshal %s: %v", b1, err)
	}
	b2, _ := json.Marshal(fresh)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding unstable:\n%s\n%s", b1, b2)
	}
}

var hnsMAC = regexp.MustCompile(`^([0-9A-F]{2}-){5}[0-9A-F]{2}$`)

// FuzzBuild runs the builders on arbitrary specs: they never panic, and
// what they accept HNS would too (a route with a next hop, an overlay VSID
// in range, a MAC in HNS's form) and Programmer takes as already there.
func FuzzBuild(f *testing.F) {
	f.Add("overlay", uint32(4097), "10.0.9.0/24", "10.0.9.1", "", "10.0.9.2/24", "02-42-0a-00-09-02", true, "198.18.0.2", uint16(0), "", "")
	f.Add("nat", uint32(0), "fd00::/64", "fd00::1", "", "fd00::2/64", "02:42:0a:00:09:02", false, "", uint16(8080), "tcp", "")
	f.Add("l2tunnel", uint32(70000), "10.0.9.0/24", "10.0.9.1", "Ethernet", "10.0.9.2/24", "", false, "", uint16(53), "", "10.0.8.0/24")
	f.Fuzz(func(t *testing.T, driver string, vni uint32, subnet, gw, adapter, addr, mac string, remote bool, vtep string, port uint16, proto, acl string) {
		s := NetworkSpec{Name: "n", Type: NetworkType(driver), VNI: vni, Adapter: adapter, VTEP: vtep1}
		s.Subnet, _ = netip.ParsePrefix(subnet)
		s.Gateway, _ = netip.ParseAddr(gw)
		n, err := BuildNetwork(s)
		if err != nil {
			return
		}
		sub := n.Ipams[0].Subnets[0]
		if len(sub.Routes) != 1 || sub.Routes[0].NextHop == "" {
			t.Fatalf("subnet without a next hop: %+v", sub)
		}
		if n.Type == Overlay && (vni < MinVNI || vni > MaxOverlayVNI) {
			t.Fatalf("overlay accepted VNI %d", vni)
		}
		if !networkMatches(n, n) {
			t.Fatalf("network does not match itself: %+v", n)
		}
		e := EndpointSpec{Name: "e", MAC: mac, Remote: remote, Publish: []PortMap{{HostPort: port, ContainerPort: port, Proto: proto}}}
		e.Addr, _ = netip.ParsePrefix(addr)
		e.VTEP, _ = netip.ParseAddr(vtep)
		if port == 0 && proto == "" {
			e.Publish = nil
		}
		if r, err := netip.ParsePrefix(acl); err == nil {
			e.ACL = []ACLRule{{Remote: r, Port: port, Proto: proto}}
		}
		ep, err := BuildEndpoint(s, "id", e)
		if err != nil {
			return
		}
		if ep.MacAddress != "" && !hnsMAC.MatchString(ep.MacAddress) {
			t.Fatalf("MAC %q not in HNS's form", ep.MacAddress)
		}
		if !endpointMatches(ep, ep) {
			t.Fatalf("endpoint does not match itself: %+v", ep)
		}
		stable(t, &ep, new(Endpoint))
	})
}
