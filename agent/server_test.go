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
