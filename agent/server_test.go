package agent

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/testutil"
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
	// A cluster with plain gossip has no encrypted network: nothing to
	// rotate, and the refusal says what would make one.
	code, e = post(t, h, "/v1/cluster/rotate-keys", "")
	if code != http.StatusConflict || !strings.Contains(e.Message, "--gossip-key-file") {
		t.Errorf("rotate-keys with plain gossip: %d %+v, want 409 naming --gossip-key-file", code, e)
	}
	// An option no stage knows is named with every option the network
	// takes, the driver's and IPAM's.
	code, e = post(t, h, "/v1/networks", `{"name": "b7", "subnet": "10.0.15.0/24", "options": {"cipher": "des"}}`)
	if code != http.StatusBadRequest || e.Field != "options" || !strings.Contains(e.Message, `option "cipher": unknown`) ||
		!strings.Contains(e.Message, "encrypted") || !strings.Contains(e.Message, "block-size") {
		t.Errorf("an unknown option: %d %+v, want 400 on options listing encrypted and block-size", code, e)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/networks/ov", nil))
	var n api.Network
	if err := json.Unmarshal(rec.Body.Bytes(), &n); rec.Code != http.StatusOK || err != nil || n.Subnet != "10.0.13.0/24" || n.MTU != a.cfg.MTU || n.MTU == 0 {
		t.Errorf("GET /v1/networks/ov: %d %s", rec.Code, rec.Body)
	}
}

// TestServeAPI_waitsForTheRunningAgent: a second agent on the same API
// socket waits while the first answers on it, takes it once the first has
// stopped, and the first's stop does not remove the second's socket. A
// socket file nobody answers on is replaced at once.
func TestServeAPI_waitsForTheRunningAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	var logs testutil.SyncBuffer
	first := &Agent{cfg: config.Config{BindTimeout: time.Minute}, log: slog.New(slog.DiscardHandler)}
	second := &Agent{cfg: config.Config{BindTimeout: time.Minute}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	stop1, err := first.serveAPI(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		stop func()
		err  error
	}
	done := make(chan result, 1)
	go func() {
		stop, err := second.serveAPI(path)
		done <- result{stop, err}
	}()
	testutil.WaitFor(t, "the second agent to wait for the socket", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "api-socket: address in use")
	})
	stop1()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the second agent did not take the socket")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !answers(path) {
		t.Error("the second agent's socket does not answer: the first removed it on stop")
	}
	r.stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}

	// A stale socket file: replaced at once.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	start := time.Now()
	stop3, err := first.serveAPI(path)
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("over a stale socket: %v after %v", err, time.Since(start))
	}
	stop3()
}

// answers reports whether something listens on the unix socket at path.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestCheckNetwork_subnet: what a runtime asks before it makes a network
// (Docker's create) is refused as the create would refuse it: a subnet
// containers cannot use, one overlapping another network's, a block size
// that does not fit, encryption without encrypted gossip; the same subnet
// as an existing network is that network, made on another host.
func TestCheckNetwork_subnet(t *testing.T) {
	a := startTestAgent(t, nil)
	h := api.NewHandler(a)
	if code, e := post(t, h, "/v1/networks", `{"name": "web", "subnet": "10.0.9.0/24"}`); code != http.StatusCreated {
		t.Fatalf("network create: %d %+v", code, e)
	}
	for _, tt := range []struct {
		req         api.NetworkCreate
		code, field string
	}{
		{api.NetworkCreate{Subnet: "10.0.9.0/24"}, "", ""},
		{api.NetworkCreate{Subnet: "10.0.10.0/24"}, "", ""},
		{api.NetworkCreate{Subnet: "10.0.10.0/24", Driver: "nat"}, "", ""},
		{api.NetworkCreate{Subnet: "10.0.9.128/25"}, api.CodeConflict, "subnet"},
		{api.NetworkCreate{Subnet: "10.0.9.128/25", Driver: "nat"}, api.CodeConflict, "subnet"},
		{api.NetworkCreate{Subnet: "127.0.0.0/24"}, api.CodeBadRequest, "subnet"},
		{api.NetworkCreate{Subnet: "10.0.11.0/24", Subnet6: "fe80::/64"}, api.CodeBadRequest, "subnet6"},
		{api.NetworkCreate{Name: "x", Subnet: "10.0.9.128/25"}, api.CodeConflict, "subnet"},
		// As the create: a block size that does not fit, encryption in a
		// cluster whose gossip is plain.
		{api.NetworkCreate{Subnet: "10.0.12.0/24", Options: map[string]string{"block-size": "99"}}, api.CodeBadRequest, "options"},
		{api.NetworkCreate{Subnet: "10.0.12.0/24", Options: map[string]string{"encrypted": "true"}}, api.CodeBadRequest, "options"},
	} {
		err := a.CheckNetwork(tt.req)
		var e *api.Error
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%+v: %v, want accepted", tt.req, err)
		case tt.code != "" && (!errors.As(err, &e) || e.Code != tt.code || e.Field != tt.field):
			t.Errorf("%+v: %v, want %s on %s", tt.req, err, tt.code, tt.field)
		case tt.code != "" && tt.req.Name == "" && strings.Contains(e.Message, "network \""):
			t.Errorf("%+v: %q names a network the request did not", tt.req, e.Message)
		}
	}
}
