package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Engine is what the plugin reads of Docker's own API: what the plugin
// protocol does not say (a network's name, a container's name and
// aliases). Docker stores a network only after its driver created it, and
// a container's aliases only after it started, so these are read when
// they exist, never from within the call that makes them.
type Engine interface {
	Network(ctx context.Context, id string) (EngineNetwork, error)
	Networks(ctx context.Context) ([]EngineNetwork, error)
	Container(ctx context.Context, id string) (EngineContainer, error)
	// Labels returns the labels of the container called name, from
	// Docker's list of containers (which answers while the container is
	// being started, unlike Container).
	Labels(ctx context.Context, name string) (map[string]string, error)
	// Exited lists the IDs of the containers that are not running
	// (exited, or created and never started).
	Exited(ctx context.Context) ([]string, error)
	// Start starts the container of ID id, as docker start does.
	Start(ctx context.Context, id string) error
}

// EngineNetwork is a network as Docker's API shows it.
type EngineNetwork struct {
	Name       string
	ID         string `json:"Id"`
	Driver     string
	EnableIPv6 bool
	Internal   bool
	IPAM       struct {
		Driver string
		Config []struct {
			Subnet             string
			IPRange            string
			Gateway            string
			AuxiliaryAddresses map[string]string
		}
	}
	Options    map[string]string
	Containers map[string]struct {
		Name        string
		EndpointID  string
		IPv4Address string
		IPv6Address string
	}
}

// EngineContainer is a container as Docker's API shows it.
type EngineContainer struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Running bool
		Error   string // why its last start failed
	}
	HostConfig struct {
		RestartPolicy struct{ Name string }
	}
	NetworkSettings struct {
		Networks map[string]struct {
			Aliases    []string
			EndpointID string
			NetworkID  string
		}
	}
}

// ErrNotFound is Docker's 404.
var ErrNotFound = errors.New("not found")

// engineAPIVersion is the oldest API version the plugin needs (Docker
// 17.06); later daemons serve it too.
const engineAPIVersion = "v1.30"

// HTTPEngine reads Docker's API at a unix socket (or tcp://host:port).
type HTTPEngine struct {
	c    *http.Client
	base string
}

// NewHTTPEngine returns an Engine for host, as DOCKER_HOST spells it:
// unix:///var/run/docker.sock or tcp://HOST:PORT.
func NewHTTPEngine(host string) (*HTTPEngine, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return &HTTPEngine{c: &http.Client{Transport: tr, Timeout: 10 * time.Second}, base: "http://docker"}, nil
	case strings.HasPrefix(host, "tcp://"):
		return &HTTPEngine{c: &http.Client{Timeout: 10 * time.Second}, base: "http://" + strings.TrimPrefix(host, "tcp://")}, nil
	}
	return nil, fmt.Errorf("docker host %q: want unix:///PATH or tcp://HOST:PORT", host)
}

func (e *HTTPEngine) get(ctx context.Context, path string, out any) error {
	return e.do(ctx, http.MethodGet, path, out)
}

// do calls Docker's API; out, if not nil, takes the JSON answer.
func (e *HTTPEngine) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.base+"/"+engineAPIVersion+path, nil)
	if err != nil {
		return err
	}
	resp, err := e.c.Do(req)
	if err != nil {
		return fmt.Errorf("docker's API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("docker's API: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified:
		return fmt.Errorf("docker's API: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("docker's API: %s %s: %w", method, path, err)
	}
	return nil
}

// Exited lists the containers that are not running.
func (e *HTTPEngine) Exited(ctx context.Context) ([]string, error) {
	filter, _ := json.Marshal(map[string][]string{"status": {"exited", "created"}})
	var cs []struct {
		ID string `json:"Id"`
	}
	if err := e.get(ctx, "/containers/json?all=1&filters="+url.QueryEscape(string(filter)), &cs); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// Start starts a container (304, started already, is no error).
func (e *HTTPEngine) Start(ctx context.Context, id string) error {
	return e.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil)
}

// Network returns the network of ID id.
func (e *HTTPEngine) Network(ctx context.Context, id string) (EngineNetwork, error) {
	var n EngineNetwork
	err := e.get(ctx, "/networks/"+url.PathEscape(id), &n)
	return n, err
}

// Networks lists the networks.
func (e *HTTPEngine) Networks(ctx context.Context) ([]EngineNetwork, error) {
	var ns []EngineNetwork
	err := e.get(ctx, "/networks", &ns)
	return ns, err
}

// Container returns the container of ID or name id.
func (e *HTTPEngine) Container(ctx context.Context, id string) (EngineContainer, error) {
	var c EngineContainer
	err := e.get(ctx, "/containers/"+url.PathEscape(id)+"/json", &c)
	return c, err
}

// Labels returns the labels of the container called name.
func (e *HTTPEngine) Labels(ctx context.Context, name string) (map[string]string, error) {
	filter, _ := json.Marshal(map[string][]string{"name": {"^/" + strings.TrimPrefix(name, "/") + "$"}})
	var cs []struct {
		Names  []string
		Labels map[string]string
	}
	if err := e.get(ctx, "/containers/json?all=1&filters="+url.QueryEscape(string(filter)), &cs); err != nil {
		return nil, err
	}
	for _, c := range cs {
		for _, n := range c.Names {
			if strings.TrimPrefix(n, "/") == strings.TrimPrefix(name, "/") {
				return c.Labels, nil
			}
		}
	}
	return nil, ErrNotFound
}
