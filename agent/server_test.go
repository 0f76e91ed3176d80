package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
)

// post sends body to the API handler and returns the status and the
// error document, if any.
func post(t *testing.T, h http.Handler, path, body string) (int, api.Error) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	var e api.Error
	if rec.Code >= 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s: status %d, body %q is no error document: %v", path, rec.Code, rec.Body, err)
		}
	}
	return rec.Code, e
}

// TestAPI_strictJSONAcceptsDocumentedFields: a body with every field
// spelled as documented reaches the agent, which accepts it. (Strict
// decoding itself is tested in package api.)
func TestAPI_strictJSONAcceptsDocumentedFields(t *testing.T) {
	a := startTestAgent(t, nil)
	h := api.NewHandler(a)
	code, e := post(t, h, "/v1/networks", `{"name": "ov", "driver": "overlay", "subnet": "10.0.12.0/24", "gateway": "10.0.12.1",
		"ipRange": "10.0.12.128/25", "auxAddresses": {"r": "10.0.12.2"}, "internal": false, "options": {"block-size": "28"}}`)
	if code != http.StatusCreated {
		t.Fatalf("network create: %d %+v", code, e)
	}
	code, e = post(t, h, "/v1/endpoints", `{"network": "ov", "name": "a", "aliases": ["b"], "service": "s", "srvPorts": ["http=80"]}`)
	if code != http.StatusCreated {
		t.Fatalf("endpoint create: %d %+v", code, e)
	}
}

// TestAPI_agentErrorsKeepTheirStatus: the agent's own refusals reach the
// client with their code, status and field (a missing network is 404, a
// name taken 409), and Network answers GET /v1/networks/{name}.
func TestAPI_agentErrorsKeepTheirStatus(t *testing.T) {
	a := startTestAgent(t, nil)
	h := api.NewHandler(a)
	if code, e := post(t, h, "/v1/networks", `{"name": "ov", "subnet": "10.0.13.0/24"}`); code != http.StatusCreated {
		t.Fatalf("network create: %d %+v", code, e)
	}
	code, e := post(t, h, "/v1/networks", `{"name": "ov", "subnet": "10.0.14.0/24"}`)
	if code != http.StatusConflict || e.Code != api.CodeConflict || e.Field != "name" {
		t.Errorf("a second network ov: %d %+v, want 409 on name", code, e)
	}
	code, e = post(t, h, "/v1/endpoints", `{"network": "nope", "name": "a"}`)
	if code != http.StatusNotFound || e.Code != api.CodeNotFound || e.Field != "network" || !strings.Contains(e.Message, `no network "nope"`) {
		t.Errorf("an endpoint on no network: %d %+v, want 404 on network", code, e)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/networks/ov", nil))
	var n api.Network
	if err := json.Unmarshal(rec.Body.Bytes(), &n); rec.Code != http.StatusOK || err != nil || n.Subnet != "10.0.13.0/24" {
		t.Errorf("GET /v1/networks/ov: %d %s", rec.Code, rec.Body)
	}
}
