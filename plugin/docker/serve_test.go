package docker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func newServedPlugin(t *testing.T) *Plugin {
	p := New(Config{Backend: &fakeBackend{c: newFakeCluster(), host: "host-a"}, Engine: newFakeEngine(), MTU: testMTU})
	t.Cleanup(p.Close)
	return p
}

// activateOver calls Plugin.Activate on the unix socket at path.
func activateOver(path string) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	resp, err := c.Post("http://plugin/Plugin.Activate", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var a activateResponse
	if err := jsonDecode(resp, &a); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !reflect.DeepEqual(a.Implements, []string{"NetworkDriver", "IpamDriver"}) {
		return errors.New("Activate answered " + resp.Status)
	}
	return nil
}

func jsonDecode(resp *http.Response, v any) error {
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	ans, err := jsonObject(raw)
	if err != nil {
		return err
	}
	if msg := errOf(ans); msg != "" {
		return errors.New(msg)
	}
	return json.Unmarshal(raw, v)
}

func TestServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugins", "vxnet.sock") // its directory made
	stop, err := newServedPlugin(t).Serve(path)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	if err := activateOver(path); err != nil {
		t.Fatalf("Activate over the socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v %v", fi.Mode(), err)
	}

	// Another agent: refused while the first serves.
	if stop2, err := newServedPlugin(t).Serve(path); err == nil {
		stop2()
		t.Fatal("a second Serve on the socket succeeded")
	} else if !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("second Serve: %v", err)
	}
	if err := activateOver(path); err != nil {
		t.Errorf("the first plugin, after a second tried: %v", err)
	}

	stop()
	stopped = true
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v", err)
	}
	if err := activateOver(path); err == nil {
		t.Errorf("Activate answered after stop")
	}
}

// TestServe_staleSocket: the socket file of an agent that died, nothing
// listening, is replaced.
func TestServe_staleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vxnet.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket file: %v", err)
	}
	if err := activateOver(path); err == nil {
		t.Fatal("the stale socket answers")
	}
	stop, err := newServedPlugin(t).Serve(path)
	if err != nil {
		t.Fatalf("Serve over a stale socket: %v", err)
	}
	if err := activateOver(path); err != nil {
		t.Errorf("Activate: %v", err)
	}
	stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after stop: %v", err)
	}
}

// TestServe_notASocket: a file at the socket's path that is no socket (a
// wrong --docker-plugin) is not the plugin's to remove.
func TestServe_notASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vxnet.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop, err := newServedPlugin(t).Serve(path)
	if err == nil {
		stop()
	}
	if b, rerr := os.ReadFile(path); rerr != nil || string(b) != "precious" {
		t.Errorf("the file after a refused Serve: %q %v", b, rerr)
	}
}
