package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

// DefaultSocket is where the agent listens unless told otherwise.
const DefaultSocket = "/run/vxnet/vxnet.sock"

// Client talks to one agent.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the agent at socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{socket: socket, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// do sends a request and decodes the answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://vxnet"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("no vxnet agent at %s (is `vxnet agent` running? --socket or VXNET_SOCKET pick another)", c.socket)
		case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES):
			return fmt.Errorf("permission denied on %s: the API is for root", c.socket)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Message == "" {
			return fmt.Errorf("agent: HTTP %s", resp.Status)
		}
		return &e
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var out []Network
	return out, c.do(ctx, http.MethodGet, "/v1/networks", nil, &out)
}

// Network returns one network.
func (c *Client) Network(ctx context.Context, name string) (Network, error) {
	var out Network
	return out, c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(name), nil, &out)
}

// InspectNetwork returns a network with its address blocks and their
// holders (an agent of a release before them leaves them out).
func (c *Client) InspectNetwork(ctx context.Context, name string) (Network, error) {
	var out Network
	return out, c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(name)+"?blocks=true", nil, &out)
}

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, req NetworkCreate) (Network, error) {
	var out Network
	return out, c.do(ctx, http.MethodPost, "/v1/networks", req, &out)
}

// RemoveNetwork removes a network.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(name), nil, nil)
}

// Endpoints lists every host's endpoints.
func (c *Client) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	return out, c.do(ctx, http.MethodGet, "/v1/endpoints", nil, &out)
}

// AllEndpoints lists every host's endpoints, those of the hosts that are
// down too (State StateHostDown). An agent of a release before that list
// gives only Endpoints'.
func (c *Client) AllEndpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	return out, c.do(ctx, http.MethodGet, "/v1/endpoints?all=true", nil, &out)
}

// CreateEndpoint attaches a namespace of this host to a network.
func (c *Client) CreateEndpoint(ctx context.Context, req EndpointCreate) (Endpoint, error) {
	var out Endpoint
	return out, c.do(ctx, http.MethodPost, "/v1/endpoints", req, &out)
}

// RemoveEndpoint detaches an endpoint of this host.
func (c *Client) RemoveEndpoint(ctx context.Context, network, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/endpoints/"+url.PathEscape(network)+"/"+url.PathEscape(name), nil, nil)
}

// ExportStore returns every row the agent's host sees.
func (c *Client) ExportStore(ctx context.Context) (StoreDump, error) {
	var out StoreDump
	return out, c.do(ctx, http.MethodGet, "/v1/store/export", nil, &out)
}

// ImportStore writes a dump's cluster rows that are not there yet.
func (c *Client) ImportStore(ctx context.Context, d StoreDump) (StoreImport, error) {
	var out StoreImport
	return out, c.do(ctx, http.MethodPost, "/v1/store/import", d, &out)
}

// Store returns the state of the tables' store.
func (c *Client) Store(ctx context.Context) (StoreStatus, error) {
	var out StoreStatus
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/store", nil, &out)
}

// Stats returns this host's data plane's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	return out, c.do(ctx, http.MethodGet, "/v1/stats", nil, &out)
}

// Members lists the cluster's live members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/members", nil, &out)
}

// DownHosts lists the hosts this host's agent sees down, their rows kept
// for their return.
func (c *Client) DownHosts(ctx context.Context) ([]DownHost, error) {
	var out []DownHost
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/down", nil, &out)
}

// Leave asks this host's agent to leave the cluster and stop.
func (c *Client) Leave(ctx context.Context, req ClusterLeave) (ClusterLeave, error) {
	var out ClusterLeave
	return out, c.do(ctx, http.MethodPost, "/v1/cluster/leave", req, &out)
}

// ForgetHost makes the cluster forget a host that is down.
func (c *Client) ForgetHost(ctx context.Context, name string) (ClusterForget, error) {
	var out ClusterForget
	return out, c.do(ctx, http.MethodPost, "/v1/cluster/forget", ClusterForget{Name: name}, &out)
}

// RotateKeys starts a rotation of this host's session key.
func (c *Client) RotateKeys(ctx context.Context) (KeyRotation, error) {
	var out KeyRotation
	return out, c.do(ctx, http.MethodPost, "/v1/cluster/rotate-keys", nil, &out)
}

// RotateGossipKey replaces the gossip key on every member; it returns
// once all of them are done.
func (c *Client) RotateGossipKey(ctx context.Context) (GossipKeyRotation, error) {
	var out GossipKeyRotation
	return out, c.do(ctx, http.MethodPost, "/v1/cluster/rotate-gossip-key", nil, &out)
}

// JoinTokens lists the cluster's join tokens.
func (c *Client) JoinTokens(ctx context.Context) ([]JoinToken, error) {
	var out []JoinToken
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/tokens", nil, &out)
}

// CreateJoinToken makes a join token.
func (c *Client) CreateJoinToken(ctx context.Context, req JoinTokenCreate) (JoinTokenCreated, error) {
	var out JoinTokenCreated
	return out, c.do(ctx, http.MethodPost, "/v1/cluster/tokens", req, &out)
}

// RevokeJoinToken revokes a join token.
func (c *Client) RevokeJoinToken(ctx context.Context, id string) (JoinToken, error) {
	var out JoinToken
	return out, c.do(ctx, http.MethodDelete, "/v1/cluster/tokens/"+url.PathEscape(id), nil, &out)
}

// CreateService creates a service.
func (c *Client) CreateService(ctx context.Context, req ServiceCreate) (Service, error) {
	var out Service
	return out, c.do(ctx, http.MethodPost, "/v1/services", req, &out)
}

// Service returns one service.
func (c *Client) Service(ctx context.Context, network, name string) (Service, error) {
	var out Service
	return out, c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(network)+"/"+url.PathEscape(name), nil, &out)
}

// RemoveService removes a service (its endpoints stay).
func (c *Client) RemoveService(ctx context.Context, network, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(network)+"/"+url.PathEscape(name), nil, nil)
}

// Services lists the services of every network.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	return out, c.do(ctx, http.MethodGet, "/v1/services", nil, &out)
}
