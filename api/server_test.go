package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeBackend answers from its fields and records the changes asked of it.
type fakeBackend struct {
	networks  []Network
	endpoints []Endpoint
	services  []Service
	members   []Member
	err       error         // the answer to every change
	hold      chan struct{} // when set, CreateEndpoint waits for it to close

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
		{"/v1/networks", `{"name": "web", "color": "blue"}`, "color", `unknown field "color" (known: auxAddresses, driver,`},
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
	want := []string{
		fmt.Sprintf("CreateNetwork %+v", NetworkCreate{Name: "ov", Driver: "overlay", Subnet: "10.0.12.0/24", Gateway: "10.0.12.1",
			IPRange: "10.0.12.128/25", AuxAddresses: map[string]string{"r": "10.0.12.2"}, Internal: true, Options: map[string]string{"block-size": "28"}}),
		fmt.Sprintf("CreateEndpoint %+v", EndpointCreate{Network: "ov", Name: "a", Netns: "c1", Ifname: "eth1", IP: "10.0.12.9",
			Aliases: []string{"b"}, Service: "s", Publish: []string{"8080:80"}, SRVPorts: []string{"http=80"}}),
	}
	if got := b.called(); !reflect.DeepEqual(got, want) {
		t.Errorf("the backend was asked\n%q\nwant\n%q", got, want)
	}
}
