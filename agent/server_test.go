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

// TestAPI_strictJSON: encoding/json matches field names without regard
// to case and keeps the last of duplicate keys; the API refuses both, and
// unknown fields, with a 400 naming the field. A body over the limit is
// 413 naming the limit.
func TestAPI_strictJSON(t *testing.T) {
	h := (&Agent{}).Handler() // every request here fails before reaching the agent
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
		{"/v1/endpoints", `{"network": "ov", "name": "a", "Aliases": ["b"]}`, "Aliases", `the field is "aliases"`},
		{"/v1/endpoints", `{"network": "ov", "name": "a", "srvports": ["http=80"]}`, "srvports", `the field is "srvPorts"`},
		{"/v1/endpoints", `{"network": "ov", "network": "ov2", "name": "a"}`, "network", "given twice"},
	} {
		code, e := post(t, h, tc.path, tc.body)
		if code != http.StatusBadRequest || e.Code != api.CodeBadRequest || e.Field != tc.field || !strings.Contains(e.Message, tc.says) {
			t.Errorf("POST %s %s: %d %+v, want 400 on field %q saying %q", tc.path, tc.body, code, e, tc.field, tc.says)
		}
	}
	big := `{"name": "web", "options": {"x": "` + strings.Repeat("a", maxBody) + `"}}`
	code, e := post(t, h, "/v1/networks", big)
	if code != http.StatusRequestEntityTooLarge || e.Code != api.CodeTooLarge || !strings.Contains(e.Message, "1048576 bytes") {
		t.Errorf("a body over the limit: %d %+v, want 413 naming the limit", code, e)
	}
}

// TestAPI_strictJSONAcceptsDocumentedFields: a body with every field
// spelled as documented reaches the agent.
func TestAPI_strictJSONAcceptsDocumentedFields(t *testing.T) {
	a := startTestAgent(t, nil)
	h := a.Handler()
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
