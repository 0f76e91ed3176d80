package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// fakeBackend answers from its fields and records the changes asked of it.
type fakeBackend struct {
	networks  []Network
	endpoints []Endpoint
	services  []Service
	members   []Member
	down      []DownHost
	// downEndpoints are DownHostEndpoints'.
	downEndpoints []Endpoint
	err           error         // the answer to every change
	hold          chan struct{} // when set, CreateEndpoint waits for it to close

	mu    sync.Mutex
	calls []string
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) Networks() []Network   { return f.networks }
func (f *fakeBackend) Endpoints() []Endpoint { return f.endpoints }
func (f *fakeBackend) Services() []Service   { return f.services }
func (f *fakeBackend) Members() []Member     { return f.members }
func (f *fakeBackend) DownHosts() []DownHost { return f.down }
func (f *fakeBackend) DownHostEndpoints() []Endpoint {
	return f.downEndpoints
}
func (f *fakeBackend) Store() StoreStatus { return StoreStatus{Backend: "gossip", Up: true} }
func (f *fakeBackend) Stats() Stats {
	return Stats{PortRxPackets: 7, Drops: map[string]uint64{"seal_replay": 2}}
}
func (f *fakeBackend) ExportStore() StoreDump { return StoreDump{Format: StoreDumpFormat} }
func (f *fakeBackend) ImportStore(StoreDump) (StoreImport, error) {
	return StoreImport{}, nil
}
func (f *fakeBackend) Leave(req ClusterLeave) (ClusterLeave, error) { return req, nil }
func (f *fakeBackend) ForgetHost(req ClusterForget) (ClusterForget, error) {
	f.record("forget %s", req.Name)
	return ClusterForget{Name: req.Name, Endpoints: []string{"web/db"}}, nil
}

func (f *fakeBackend) RotateKeys(context.Context) (KeyRotation, error) {
	return KeyRotation{}, &Error{Code: CodeConflict, Message: "a key rotation is under way"}
}

func (f *fakeBackend) JoinTokens() ([]JoinToken, error) { return nil, nil }
func (f *fakeBackend) RotateGossipKey(context.Context) (GossipKeyRotation, error) {
	return GossipKeyRotation{}, nil
}
func (f *fakeBackend) CreateJoinToken(_ context.Context, req JoinTokenCreate) (JoinTokenCreated, error) {
	return JoinTokenCreated{JoinToken: JoinToken{ID: "abcdef", State: "active"}, Token: "vxn1-x-abcdef.y"}, nil
}
func (f *fakeBackend) RevokeJoinToken(id string) (JoinToken, error) {
	return JoinToken{}, &Error{Code: CodeNotFound, Field: "id", Message: "no join token " + id}
}

func (f *fakeBackend) Network(name string) (Network, bool) {
	for _, n := range f.networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

func (f *fakeBackend) CreateNetwork(_ context.Context, req NetworkCreate) (Network, error) {
	f.record("CreateNetwork %+v", req)
	return Network{Name: req.Name, Driver: req.Driver, Subnet: req.Subnet}, f.err
}

func (f *fakeBackend) NetworkBlocks(n *Network) {
	n.Blocks, n.OtherBlocks = []AddressBlock{{Block: "10.0.9.0/30", Host: "h1"}}, 63
}

func (f *fakeBackend) RemoveNetwork(name string) error {
	f.record("RemoveNetwork %s", name)
	return f.err
}

func (f *fakeBackend) CreateEndpoint(_ context.Context, req EndpointCreate) (Endpoint, error) {
	f.record("CreateEndpoint %+v", req)
	if f.hold != nil {
		<-f.hold
	}
	return Endpoint{Name: req.Name, Network: req.Network}, f.err
}

func (f *fakeBackend) RemoveEndpoint(network, name string) error {
	f.record("RemoveEndpoint %s %s", network, name)
	return f.err
}

func (f *fakeBackend) CreateService(_ context.Context, req ServiceCreate) (Service, error) {
	f.record("CreateService %+v", req)
	return Service{Name: req.Name, Network: req.Network}, f.err
}

func (f *fakeBackend) RemoveService(network, name string) error {
	f.record("RemoveService %s %s", network, name)
	return f.err
}

// do sends a request to h and returns the status and the body.
func do(h http.Handler, method, path, body string) (int, []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Body.Bytes()
}

// errorDoc sends a request to h and returns the status and the error
// document, failing the test if an error status has none.
func errorDoc(t *testing.T, h http.Handler, method, path, body string) (int, Error) {
	t.Helper()
	code, b := do(h, method, path, body)
	var e Error
	if code >= 300 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s %s: status %d, body %q is no error document: %v", method, path, code, b, err)
		}
	}
	return code, e
}

// TestHandler_strictJSON: encoding/json matches field names without
// regard to case and keeps the last of duplicate keys; the API refuses
// both, and unknown fields, with a 400 naming the field, before the
// backend sees the request. A body over the limit is 413 naming the limit.
func TestHandler_strictJSON(t *testing.T) {
	b := &fakeBackend{}
	h := NewHandler(b)
	for _, tc := range []struct {
		path, body, field, says string
	}{
		{"/v1/networks", `{"Name": "web"}`, "Name", `the field is "name"`},
		{"/v1/networks", `{"name": "web", "SUBNET": "10.0.9.0/24"}`, "SUBNET", `the field is "subnet"`},
		{"/v1/networks", `{"name": "web", "name": "db"}`, "name", `field "name" is given twice`},
		{"/v1/networks", `{"name": "web", "na\u006de": "db"}`, "name", "given twice"},
		{"/v1/networks", `{"name": "web", "options": {"uplink": "a", "uplink": "b"}}`, "options.uplink", `key "uplink" of options is given twice`},
		{"/v1/networks", `{"name": "web", "auxAddresses": {"r": "10.0.9.2", "r": "10.0.9.3"}}`, "auxAddresses.r", "twice"},
		{"/v1/networks", `{"name": "web", "color": "blue"}`, "color", `unknown field "color" (known: assignedBy, auxAddresses, driver,`},
		{"/v1/networks", `{"name": "web"} {"name": "db"}`, "", "more than one JSON value"},
		{"/v1/networks", `["web"]`, "", "want a JSON object"},
		{"/v1/networks", ``, "", "empty request body"},
		{"/v1/networks", `{"name": 7}`, "name", "cannot unmarshal number"},
		{"/v1/networks", `{`, "", "bad request body"},
		{"/v1/endpoints", `{"network": "ov", "name": "a", "Aliases": ["b"]}`, "Aliases", `the field is "aliases"`},
		{"/v1/endpoints", `{"network": "ov", "name": "a", "srvports": ["http=80"]}`, "srvports", `the field is "srvPorts"`},
		{"/v1/endpoints", `{"network": "ov", "network": "ov2", "name": "a"}`, "network", "given twice"},
	} {
		code, e := errorDoc(t, h, http.MethodPost, tc.path, tc.body)
		if code != http.StatusBadRequest || e.Code != CodeBadRequest || e.Field != tc.field || !strings.Contains(e.Message, tc.says) {
			t.Errorf("POST %s %s: %d %+v, want 400 on field %q saying %q", tc.path, tc.body, code, e, tc.field, tc.says)
		}
	}
	big := `{"name": "web", "options": {"x": "` + strings.Repeat("a", maxBody) + `"}}`
	code, e := errorDoc(t, h, http.MethodPost, "/v1/networks", big)
	if code != http.StatusRequestEntityTooLarge || e.Code != CodeTooLarge || !strings.Contains(e.Message, "1048576 bytes") {
		t.Errorf("a body over the limit: %d %+v, want 413 naming the limit", code, e)
	}
	if calls := b.called(); len(calls) != 0 {
		t.Errorf("refused requests reached the backend: %q", calls)
	}
}

// TestHandler_decodesDocumentedFields: every documented field reaches the
// backend with its value.
func TestHandler_decodesDocumentedFields(t *testing.T) {
	b := &fakeBackend{}
	h := NewHandler(b)
	code, _ := do(h, http.MethodPost, "/v1/networks", `{"name": "ov", "driver": "overlay", "subnet": "10.0.12.0/24", "gateway": "10.0.12.1",
		"ipRange": "10.0.12.128/25", "auxAddresses": {"r": "10.0.12.2"}, "internal": true, "options": {"block-size": "28"}}`)
	if code != http.StatusCreated {
		t.Fatalf("network create: %d", code)
	}
	code, _ = do(h, http.MethodPost, "/v1/endpoints", `{"network": "ov", "name": "a", "netns": "c1", "ifname": "eth1", "ip": "10.0.12.9",
		"aliases": ["b"], "service": "s", "publish": ["8080:80"], "srvPorts": ["http=80"]}`)
	if code != http.StatusCreated {
		t.Fatalf("endpoint create: %d", code)
	}
	code, _ = do(h, http.MethodPost, "/v1/services", `{"name": "s", "network": "ov", "endpointMode": "vip", "vip": "10.0.12.4", "vip6": "auto",
		"publish": ["8080:80/tcp"]}`)
	if code != http.StatusCreated {
		t.Fatalf("service create: %d", code)
	}
	want := []string{
		fmt.Sprintf("CreateNetwork %+v", NetworkCreate{Name: "ov", Driver: "overlay", Subnet: "10.0.12.0/24", Gateway: "10.0.12.1",
			IPRange: "10.0.12.128/25", AuxAddresses: map[string]string{"r": "10.0.12.2"}, Internal: true, Options: map[string]string{"block-size": "28"}}),
		fmt.Sprintf("CreateEndpoint %+v", EndpointCreate{Network: "ov", Name: "a", Netns: "c1", Ifname: "eth1", IP: "10.0.12.9",
			Aliases: []string{"b"}, Service: "s", Publish: []string{"8080:80"}, SRVPorts: []string{"http=80"}}),
		fmt.Sprintf("CreateService %+v", ServiceCreate{Name: "s", Network: "ov", EndpointMode: "vip", VIP: "10.0.12.4", VIP6: "auto",
			Publish: []string{"8080:80/tcp"}}),
	}
	if got := b.called(); !reflect.DeepEqual(got, want) {
		t.Errorf("the backend was asked\n%q\nwant\n%q", got, want)
	}
}

// TestHandler_routes: lists are sorted and [] when empty, one network is
// found by name, removals are 204 with the names from the path, and an
// unknown route is a 404 pointing to the documentation.
func TestHandler_routes(t *testing.T) {
	b := &fakeBackend{
		networks:  []Network{{Name: "web"}, {Name: "db"}},
		endpoints: []Endpoint{{Network: "web", Name: "b"}, {Network: "db", Name: "z"}, {Network: "web", Name: "a"}},
	}
	h := NewHandler(b)
	var ns []Network
	getJSON(t, h, "/v1/networks", &ns)
	if len(ns) != 2 || ns[0].Name != "db" || ns[1].Name != "web" {
		t.Errorf("networks not sorted by name: %+v", ns)
	}
	var eps []Endpoint
	getJSON(t, h, "/v1/endpoints", &eps)
	var order []string
	for _, e := range eps {
		order = append(order, e.Network+"/"+e.Name)
	}
	if strings.Join(order, " ") != "db/z web/a web/b" {
		t.Errorf("endpoints not sorted by network, then name: %v", order)
	}
	var n Network
	getJSON(t, h, "/v1/networks/web", &n)
	if n.Name != "web" || n.Blocks != nil {
		t.Errorf("GET /v1/networks/web: %+v", n)
	}
	getJSON(t, h, "/v1/networks/web?blocks=true", &n)
	if len(n.Blocks) != 1 || n.Blocks[0].Host != "h1" || n.OtherBlocks != 63 {
		t.Errorf("GET /v1/networks/web?blocks=true: %+v", n)
	}
	if code, e := errorDoc(t, h, http.MethodGet, "/v1/networks/web?blocks=yes", ""); code != http.StatusBadRequest || e.Field != "blocks" {
		t.Errorf("blocks=yes: %d %+v", code, e)
	}
	code, e := errorDoc(t, h, http.MethodGet, "/v1/networks/nope", "")
	if code != http.StatusNotFound || e.Code != CodeNotFound || e.Field != "name" || e.Message != `no network "nope"` {
		t.Errorf("GET of a missing network: %d %+v", code, e)
	}
	code, e = errorDoc(t, h, http.MethodGet, "/v1/nothing", "")
	if code != http.StatusNotFound || e.Field != "path" || !strings.Contains(e.Message, "no API resource GET /v1/nothing") ||
		!strings.Contains(e.Message, "go doc github.com/vxnet/vxnet/api") {
		t.Errorf("an unknown route: %d %+v", code, e)
	}
	code, e = errorDoc(t, h, http.MethodPut, "/v1/networks", "")
	if code != http.StatusMethodNotAllowed || e.Code != CodeMethodNotAllowed || !strings.Contains(e.Message, "takes GET, POST") {
		t.Errorf("PUT /v1/networks: %d %+v, want 405 naming GET and POST", code, e)
	}
	b.services = []Service{{Network: "web", Name: "api"}}
	var sv Service
	getJSON(t, h, "/v1/services/web/api", &sv)
	if sv.Name != "api" {
		t.Errorf("GET /v1/services/web/api: %+v", sv)
	}
	if code, e := errorDoc(t, h, http.MethodGet, "/v1/services/web/nope", ""); code != http.StatusNotFound || e.Message != `no service "nope" on network "web"` {
		t.Errorf("GET of a missing service: %d %+v", code, e)
	}
	for path, call := range map[string]string{"/v1/networks/web": "RemoveNetwork web", "/v1/endpoints/web/a%20b": "RemoveEndpoint web a b",
		"/v1/services/web/api": "RemoveService web api"} {
		if code, body := do(h, http.MethodDelete, path, ""); code != http.StatusNoContent || len(body) != 0 {
			t.Errorf("DELETE %s: %d %q, want 204 and no body", path, code, body)
		}
		if got := b.called(); got[len(got)-1] != call {
			t.Errorf("DELETE %s asked the backend %q, want %q", path, got[len(got)-1], call)
		}
	}
}

// TestHandler_emptyListsAreArrays: a backend with nothing lists [], not
// null, so clients need not tell the two apart.
func TestHandler_emptyListsAreArrays(t *testing.T) {
	h := NewHandler(&fakeBackend{})
	for _, path := range []string{"/v1/networks", "/v1/endpoints", "/v1/services", "/v1/cluster/members", "/v1/cluster/down"} {
		code, body := do(h, http.MethodGet, path, "")
		if code != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("GET %s: %d %q, want []", path, code, body)
		}
	}
}

// TestHandler_endpointsAll: GET /v1/endpoints lists the live endpoints;
// ?all=true adds those of the hosts that are down, in the same order (by
// network, name, host); a value that is no boolean is refused, naming
// the parameter.
func TestHandler_endpointsAll(t *testing.T) {
	h := NewHandler(&fakeBackend{
		endpoints:     []Endpoint{{Name: "web", Network: "front", Host: "h2"}, {Name: "db", Network: "back", Host: "h1"}},
		downEndpoints: []Endpoint{{Name: "web", Network: "front", Host: "h1", State: StateHostDown, Reason: "host h1 is down"}},
	})
	names := func(eps []Endpoint) string {
		var s []string
		for _, e := range eps {
			s = append(s, e.Network+"/"+e.Name+"@"+e.Host+":"+e.State)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct{ query, want string }{
		{"", "back/db@h1: front/web@h2:"},
		{"?all=false", "back/db@h1: front/web@h2:"},
		{"?all=true", "back/db@h1: front/web@h1:host down front/web@h2:"},
		{"?all=1", "back/db@h1: front/web@h1:host down front/web@h2:"},
	} {
		var got []Endpoint
		getJSON(t, h, "/v1/endpoints"+c.query, &got)
		if names(got) != c.want {
			t.Errorf("GET /v1/endpoints%s: %s, want %s", c.query, names(got), c.want)
		}
	}
	code, body := do(h, http.MethodGet, "/v1/endpoints?all=yes", "")
	var e Error
	if err := json.Unmarshal(body, &e); err != nil || code != http.StatusBadRequest || e.Field != "all" || !strings.Contains(e.Message, `"yes"`) {
		t.Errorf("GET /v1/endpoints?all=yes: %d %s, want 400 naming all and \"yes\"", code, body)
	}
}

// TestHandler_forget: POST /v1/cluster/forget passes the host's name on
// and answers with what went; a body without a name, or with the
// answer's field, is refused naming the field, and the backend is not
// called.
func TestHandler_forget(t *testing.T) {
	f := &fakeBackend{}
	h := NewHandler(f)
	code, body := do(h, http.MethodPost, "/v1/cluster/forget", `{"name":"h3"}`)
	var got ClusterForget
	if err := json.Unmarshal(body, &got); err != nil || code != http.StatusOK || got.Name != "h3" || len(got.Endpoints) != 1 {
		t.Fatalf("POST /v1/cluster/forget: %d %s", code, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{}`, "name"},
		{`{"name":""}`, "name"},
		{`{"name":"h3","endpoints":["web/db"]}`, "endpoints"},
		{`{"host":"h3"}`, "host"},
	} {
		code, body := do(h, http.MethodPost, "/v1/cluster/forget", c.body)
		var e Error
		if err := json.Unmarshal(body, &e); err != nil || code != http.StatusBadRequest || e.Field != c.field {
			t.Errorf("POST /v1/cluster/forget %s: %d %s, want 400 naming %s", c.body, code, body, c.field)
		}
	}
	if calls := f.called(); len(calls) != 1 || calls[0] != "forget h3" {
		t.Errorf("backend calls %v, want forget h3 alone", calls)
	}
}

// TestHandler_downHosts: GET /v1/cluster/down gives the backend's down
// hosts, a zero hold left out.
func TestHandler_downHosts(t *testing.T) {
	since := time.Date(2026, 12, 5, 10, 2, 11, 0, time.UTC)
	h := NewHandler(&fakeBackend{down: []DownHost{
		{Name: "h3", Since: since, EndpointCount: 2, NamesHeldUntil: since.Add(10 * time.Minute)},
		{Name: "h4", Since: since},
	}})
	code, body := do(h, http.MethodGet, "/v1/cluster/down", "")
	if code != http.StatusOK || strings.Count(string(body), "namesHeldUntil") != 1 {
		t.Fatalf("GET /v1/cluster/down: %d %s, want one namesHeldUntil", code, body)
	}
	var got []DownHost
	getJSON(t, h, "/v1/cluster/down", &got)
	if len(got) != 2 || got[0].Name != "h3" || got[0].EndpointCount != 2 || !got[0].Since.Equal(since) || !got[1].NamesHeldUntil.IsZero() {
		t.Errorf("down hosts %+v", got)
	}
}

// getJSON GETs path from h, wanting 200, and decodes the answer into v.
func getJSON(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	code, body := do(h, http.MethodGet, path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// TestHandler_errorStatus: the backend's errors keep their code, field
// and message and get its status, wrapped or not; any other error is 500
// internal.
func TestHandler_errorStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&Error{Code: CodeBadRequest, Field: "subnet", Message: "bad subnet"}, http.StatusBadRequest, CodeBadRequest},
		{&Error{Code: CodeNotFound, Field: "name", Message: "no network"}, http.StatusNotFound, CodeNotFound},
		{&Error{Code: CodeConflict, Field: "name", Message: "taken"}, http.StatusConflict, CodeConflict},
		{&Error{Code: CodeBusy, Field: "name", Message: "being removed"}, http.StatusConflict, CodeBusy},
		{&Error{Code: CodeTooLarge, Message: "too big"}, http.StatusRequestEntityTooLarge, CodeTooLarge},
		{fmt.Errorf("saving: %w", &Error{Code: CodeConflict, Field: "name", Message: "taken"}), http.StatusConflict, CodeConflict},
		{errors.New("disk full"), http.StatusInternalServerError, CodeInternal},
	} {
		h := NewHandler(&fakeBackend{err: tc.err})
		code, e := errorDoc(t, h, http.MethodDelete, "/v1/networks/web", "")
		var want *Error
		if !errors.As(tc.err, &want) {
			want = &Error{Code: CodeInternal, Message: tc.err.Error()}
		}
		if code != tc.status || e != *want {
			t.Errorf("%v: %d %+v, want %d %+v", tc.err, code, e, tc.status, *want)
		}
	}
}

// TestServe_clientAndShutdown: the client and the server agree over a
// unix socket, errors included; stop lets a request in progress finish,
// then the socket no longer answers.
func TestServe_clientAndShutdown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	b := &fakeBackend{networks: []Network{{Name: "web", Subnet: "10.0.9.0/24"}}, hold: make(chan struct{})}
	stop := Serve(ln, NewHandler(b))
	defer stop()
	c := NewClient(sock)
	ctx := context.Background()
	if n, err := c.Network(ctx, "web"); err != nil || n.Subnet != "10.0.9.0/24" {
		t.Errorf("Network(web): %+v %v", n, err)
	}
	var e *Error
	if _, err := c.Network(ctx, "nope"); !errors.As(err, &e) || e.Code != CodeNotFound || e.Field != "name" {
		t.Errorf("Network(nope): %v, want a not-found Error on name", err)
	}

	created := make(chan error, 1)
	go func() {
		_, err := c.CreateEndpoint(ctx, EndpointCreate{Network: "web", Name: "a", Netns: "c1"})
		created <- err
	}()
	testutil.WaitFor(t, "the request to reach the backend", 10*time.Second, func() bool { return len(b.called()) == 1 })
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a request was in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(b.hold)
	if err := <-created; err != nil {
		t.Errorf("the request in progress at stop: %v", err)
	}
	<-stopped
	if _, err := c.Networks(ctx); err == nil {
		t.Error("the server still answers after stop")
	}
}

// TestHandler_stats: GET /v1/stats answers the backend's counters, drops
// by reason included.
func TestHandler_stats(t *testing.T) {
	var st Stats
	getJSON(t, NewHandler(&fakeBackend{}), "/v1/stats", &st)
	if st.PortRxPackets != 7 || st.Drops["seal_replay"] != 2 {
		t.Errorf("GET /v1/stats: %+v", st)
	}
}

// TestServer_clusterLeave: POST /v1/cluster/leave takes a ClusterLeave
// and answers 202 with the backend's; a body with another field is
// refused naming it.
func TestServer_clusterLeave(t *testing.T) {
	h := NewHandler(&fakeBackend{})
	code, body := do(h, "POST", "/v1/cluster/leave", `{"force":true}`)
	var got ClusterLeave
	if code != http.StatusAccepted || json.Unmarshal(body, &got) != nil || !got.Force {
		t.Errorf("leave: %d %s", code, body)
	}
	if code, body := do(h, "POST", "/v1/cluster/leave", `{"forse":true}`); code != http.StatusBadRequest || !strings.Contains(string(body), "forse") {
		t.Errorf("a misspelt field: %d %s", code, body)
	}
}

// storeDown is an error as the etcd store's: unavailable, with a summary.
type storeDown struct{}

func (storeDown) Error() string     { return "kvs: etcd store (x): putting ipam/subnet%2Fweb: unavailable" }
func (storeDown) Unavailable() bool { return true }
func (storeDown) Summary() string   { return "unavailable: the cluster's tables are in etcd (x)" }

// TestWriteError_unavailable: a store that cannot take writes is 503,
// told in its summary (no table or key) when it has one.
func TestWriteError_unavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("ipam: writing subnet/web: %w", storeDown{}), "unavailable: the cluster's tables are in etcd (x)"},
		{fmt.Errorf("wrapped: %w", unavailableOnly{}), "wrapped: down"},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, c.err)
		var e Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusServiceUnavailable || e.Code != CodeUnavailable || e.Message != c.want {
			t.Errorf("%v: %d %+v (%v), want 503 %q", c.err, rec.Code, e, err, c.want)
		}
	}
}

type unavailableOnly struct{}

func (unavailableOnly) Error() string     { return "down" }
func (unavailableOnly) Unavailable() bool { return true }
