package docker

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vxnet/vxnet/api"
)

// FuzzHandler sends every call any body: the plugin never panics, and
// always answers one JSON object (200, or 404 for a call it lacks), with
// Err a string when set. Network web is there, in the cluster and in
// Docker, with a container joining, so that bodies like Docker's go deep.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		"", " ", "{}", "null", "[]", `""`, "0", "true", `{"NetworkID":`, "{\"Options\":{\"\xff\":1}}",
		bodyRequestPool, bodyRequestGateway, bodyCreateNetwork, bodyRequestAddress, bodyCreateEndpoint,
		bodyJoin, bodyEndpoint, bodyReleaseAddress, bodyNetwork, bodyReleaseGateway, bodyReleasePool,
		`{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"10.0.9.128/25","Options":{},"V6":false}`,
		`{"AddressSpace":"vxnet","Pool":"255.255.255.255/32","SubPool":"","Options":{},"V6":false}`,
		`{"PoolID":"255.255.255.255/32","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}`,
		`{"PoolID":"::/0","Address":"::1","Options":null}`,
		`{"PoolID":"10.0.9.0/24","Address":"10.0.9.7","Options":null}`,
		createNetworkBody(`{"com.docker.network.driver.mtu":"1400","vxnet.encrypt":"true"}`, "", ipv4Data, "[]"),
		createNetworkBody(`{"vxnet.driver":"bogus"}`, "", ipv4Data, "[]"),
		createNetworkBody(`null`, "", `[{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","AuxAddresses":{"a":"10.0.9.9/24"}}]`, "null"),
		endpointBody(`"Interface":{"Address":"10.0.9.2/24","AddressIPv6":"fd00::2/64","MacAddress":""},`),
		endpointBody(`"Interface":null,`),
		joinBody(`[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]`),
		joinBody(`[{"Proto":1,"Port":80,"HostPort":8080}]`),
		joinBody(`null`),
		`{"NetworkID":"` + netID + `","EndpointID":"` + epID[:12] + `","SandboxKey":"x"}`,
		bodySwarmPool, bodySwarmGateway, bodySwarmAddress, bodySwarmAllocate, bodySwarmNetwork, swarmAddress("10.0.9.3"),
		`{"PoolID":"swarm:10.0.9.0/24,10.0.9.0/32","Address":"","Options":{}}`, `{"PoolID":"swarm:"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := newFakeCluster()
		b := &fakeBackend{c: c, host: "host-a"}
		eng := newFakeEngine()
		c.addNetwork(t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"})
		eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
		eng.join(t, netID, epID, ctrName, "10.0.9.2/24")
		for _, scope := range []string{"local", "global"} {
			p := New(Config{Backend: b, Engine: eng, MTU: testMTU, Scope: scope})
			fuzzCalls(t, p.Handler(), body)
			p.Close()
		}
	})
}

// fuzzCalls sends body to every call of h.
func fuzzCalls(t *testing.T, h http.Handler, body []byte) {
	check := func(path string, want int) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		if rec.Code != want {
			t.Fatalf("POST %s %q: status %d, want %d", path, body, rec.Code, want)
		}
		ans, err := jsonObject(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("POST %s %q: answer %q: %v", path, body, rec.Body.String(), err)
		}
		if raw, ok := ans["Err"]; ok {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil || s == "" {
				t.Fatalf("POST %s %q: Err %s", path, body, raw)
			}
		}
	}
	for _, r := range routes {
		check(r.path, http.StatusOK)
	}
	check("/NetworkDriver.Nope", http.StatusNotFound)
}
