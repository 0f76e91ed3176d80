package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/internal/bindretry"
	"github.com/vxnet/vxnet/join"
	"github.com/vxnet/vxnet/tables"
	"golang.org/x/net/netutil"
)

// joinMaxConns bounds the join service's open connections.
const joinMaxConns = 64

// joinService is the agent's side of package join: the cluster's join
// certificate, and the tokens it checks.
type joinService struct {
	certPEM, keyPEM []byte
	pin             string
}

// openJoin loads the join certificate, where the agent has one.
func (a *Agent) openJoin() error {
	if a.cfg.JoinCert == "" {
		return nil
	}
	certPEM, err := os.ReadFile(a.cfg.JoinCert)
	if err != nil {
		return &config.Error{Field: "join-cert", Value: a.cfg.JoinCert, Reason: err.Error()}
	}
	if err := config.CheckSecretFile("join-key", a.cfg.JoinKey); err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(a.cfg.JoinKey)
	if err != nil {
		return &config.Error{Field: "join-key", Value: a.cfg.JoinKey, Reason: err.Error()}
	}
	_, pin, err := join.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		return &config.Error{Field: "join-cert", Value: a.cfg.JoinCert, Reason: err.Error()}
	}
	a.join = &joinService{certPEM: certPEM, keyPEM: keyPEM, pin: pin}
	return nil
}

// joinAddr is where this host's join service listens.
func (a *Agent) joinAddr() string {
	return net.JoinHostPort(a.vtep.String(), strconv.Itoa(a.cfg.JoinPort))
}

// serveJoin serves the join service on the advertise address, where the
// agent has a join certificate.
func (a *Agent) serveJoin() (stop func(), err error) {
	if a.join == nil {
		return func() {}, nil
	}
	cert, _, err := join.LoadCertificate(a.join.certPEM, a.join.keyPEM)
	if err != nil {
		return nil, err
	}
	addr := a.joinAddr()
	ln, err := bindretry.Retry(a.log, "join-port", addr, a.cfg.BindTimeout, func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if err != nil {
		return nil, fmt.Errorf("join-port %s: %w", addr, err)
	}
	// Failed handshakes (a token pinning another certificate, a port
	// scan) are the server's to log, at debug.
	// The port answers anyone: a request is small and quick, or dropped,
	// and only so many connections are open at once.
	srv := &http.Server{Handler: join.Handler(a.admit), TLSConfig: join.ServerTLS(cert),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second,
		MaxHeaderBytes: 8 << 10,
		ErrorLog:       slog.NewLogLogger(a.log.With("component", "join").Handler(), slog.LevelDebug)}
	srv.SetKeepAlivesEnabled(false) // one request per connection: no slot held idle
	go srv.ServeTLS(netutil.LimitListener(ln, joinMaxConns), "", "")
	a.log.Info("join service listening", "listenAddr", addr, "pin", a.join.pin)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// admit answers a host that presents a join token.
func (a *Agent) admit(_ context.Context, id, secret string, req join.Request) (join.Response, error) {
	refuse := func(told, why string) (join.Response, error) {
		a.log.Warn("join refused", "token", id, "joiner", req.Name, "peerAddr", req.AdvertiseAddr, "reason", why)
		return join.Response{}, &join.Refused{Status: http.StatusForbidden, Reason: told}
	}
	// One refusal for every token that is not this cluster's valid one
	// (no such ID, the wrong secret, another certificate's): whether an
	// ID exists is told only to whoever holds its secret.
	invalid := "token " + id + " is not a valid join token of this cluster"
	e, ok := a.kv.Get(tables.Tokens, id)
	if !ok {
		return refuse(invalid, "no such token")
	}
	t, err := tables.DecodeToken(id, e.Value)
	if err != nil {
		return refuse(invalid, err.Error())
	}
	if !join.SecretMatches(secret, t.Hash) {
		return refuse(invalid, "wrong secret")
	}
	if t.Pin != a.join.pin {
		return refuse(invalid, "made for another join certificate ("+t.Pin+")")
	}
	switch now := time.Now(); t.State(now) {
	case "revoked":
		return refuse("token "+id+" was revoked at "+t.Revoked.UTC().Format(time.RFC3339), "revoked")
	case "expired":
		return refuse("token "+id+" expired at "+t.Expires.UTC().Format(time.RFC3339), "expired")
	}
	if m, taken := memberNamed(a.kv.Node().Members(), req.Name, req.AdvertiseAddr); taken {
		a.log.Warn("join refused", "token", id, "joiner", req.Name, "peerAddr", req.AdvertiseAddr, "reason", "name taken by "+m.Addr)
		return join.Response{}, &join.Refused{Status: http.StatusConflict,
			Reason: fmt.Sprintf("the name %q is taken by a live member at %s: give this host a name of its own with --name", req.Name, hostOf(m.Addr))}
	}
	keys := a.kv.Node().Keys()
	if len(keys) == 0 {
		return join.Response{}, &join.Refused{Status: http.StatusServiceUnavailable,
			Reason: "this cluster's gossip is not encrypted, so there is no key to hand over: start the agents with --gossip-key-file"}
	}
	resp := join.Response{Cert: string(a.join.certPEM), Key: string(a.join.keyPEM), JoinPort: a.cfg.JoinPort, Store: storeName(a.cfg.Store)}
	for _, k := range keys {
		resp.GossipKeys = append(resp.GossipKeys, base64.StdEncoding.EncodeToString(k))
	}
	for _, m := range a.kv.Node().Members() {
		resp.Seeds = append(resp.Seeds, m.Addr)
	}
	sort.Strings(resp.Seeds)
	if resp.Store == config.StoreEtcd {
		resp.EtcdEndpoints, resp.EtcdPrefix = a.cfg.EtcdEndpoints, a.etcdPrefix()
	}
	a.log.Info("join token accepted: handing over the gossip keys", "token", id, "joiner", req.Name, "peerAddr", req.AdvertiseAddr)
	return resp, nil
}

// seedTokens adds the tokens of the JoinTokenSeed file (vxnet cluster
// init writes the first one there, before any agent runs) to the tokens
// table, then removes the file. A token already in the table is left as
// it is: a revocation is never undone.
func (a *Agent) seedTokens() {
	path := a.cfg.JoinTokenSeed
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		a.log.Warn("join token seed not read", "path", path, "error", err)
		return
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(b, &rows); err != nil {
		a.log.Warn("join token seed is not a JSON list of token rows: ignored", "path", path, "error", err)
		return
	}
	for _, raw := range rows {
		var head struct {
			ID string `json:"id"`
		}
		json.Unmarshal(raw, &head)
		t, err := tables.DecodeToken(head.ID, raw)
		if err != nil {
			a.log.Warn("join token seed row left out", "path", path, "error", err)
			continue
		}
		if _, ok := a.kv.Get(tables.Tokens, t.ID); ok {
			continue
		}
		if _, err := a.kv.Put(tables.Tokens, t.ID, t.Encode()); err != nil {
			a.log.Warn("join token seed not written: kept for the next start", "path", path, "token", t.ID, "error", err)
			return
		}
		a.log.Info("join token added", "token", t.ID)
	}
	if err := os.Remove(path); err != nil {
		a.log.Warn("join token seed not removed", "path", path, "error", err)
	}
}

// JoinTokens implements api.Backend.
func (a *Agent) JoinTokens() ([]api.JoinToken, error) {
	now := time.Now()
	var out []api.JoinToken
	for _, e := range a.kv.List(tables.Tokens) {
		t, err := tables.DecodeToken(e.Key, e.Value)
		if err != nil {
			continue
		}
		out = append(out, apiToken(t, now))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func apiToken(t tables.Token, now time.Time) api.JoinToken {
	return api.JoinToken{ID: t.ID, State: t.State(now), Creator: t.Creator, Created: t.Created, Expires: t.Expires, Revoked: t.Revoked}
}

// errNoJoinService answers token requests on an agent without a join
// certificate.
var errNoJoinService = &api.Error{Code: api.CodeConflict,
	Message: "this agent serves no join service: start it with --join-cert and --join-key (vxnet cluster init makes them), or add hosts with --join and --gossip-key-file"}

// CreateJoinToken implements api.Backend.
func (a *Agent) CreateJoinToken(_ context.Context, req api.JoinTokenCreate) (api.JoinTokenCreated, error) {
	if a.join == nil {
		return api.JoinTokenCreated{}, errNoJoinService
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < 0 || (d > 0 && d < time.Minute) {
			return api.JoinTokenCreated{}, &api.Error{Code: api.CodeBadRequest, Field: "ttl", Message: fmt.Sprintf("ttl %q: want a duration of at least 1m, e.g. 24h, or 0 for a token that never expires", req.TTL)}
		}
		ttl = d
	}
	tok, err := join.NewToken(a.join.pin)
	if err != nil {
		return api.JoinTokenCreated{}, err
	}
	now := time.Now().UTC()
	row := tables.Token{ID: tok.ID, Pin: a.join.pin, Hash: join.HashSecret(tok.Secret), Creator: a.cfg.Name, Created: now}
	if ttl > 0 {
		row.Expires = now.Add(ttl)
	}
	if _, err := a.kv.Put(tables.Tokens, row.ID, row.Encode()); err != nil {
		return api.JoinTokenCreated{}, err
	}
	out := api.JoinTokenCreated{JoinToken: apiToken(row, now), Token: tok.String(),
		Join: "vxnet cluster join --token " + tok.String() + " " + a.joinAddr()}
	a.log.Info("join token created", "token", row.ID, "expires", row.Expires)
	if req.Rotate {
		for _, e := range a.kv.List(tables.Tokens) {
			t, err := tables.DecodeToken(e.Key, e.Value)
			if err != nil || t.ID == row.ID || t.State(now) != "active" {
				continue
			}
			if _, err := a.revoke(t, now); err != nil {
				return out, err
			}
			out.RevokedIDs = append(out.RevokedIDs, t.ID)
		}
	}
	return out, nil
}

// RevokeJoinToken implements api.Backend.
func (a *Agent) RevokeJoinToken(id string) (api.JoinToken, error) {
	e, ok := a.kv.Get(tables.Tokens, id)
	if !ok {
		return api.JoinToken{}, &api.Error{Code: api.CodeNotFound, Field: "id", Message: fmt.Sprintf("no join token %q (vxnet cluster token ls lists them)", id)}
	}
	t, err := tables.DecodeToken(id, e.Value)
	if err != nil {
		return api.JoinToken{}, err
	}
	now := time.Now().UTC()
	if !t.Revoked.IsZero() {
		return apiToken(t, now), nil
	}
	return a.revoke(t, now)
}

func (a *Agent) revoke(t tables.Token, now time.Time) (api.JoinToken, error) {
	t.Revoked = now
	if _, err := a.kv.Put(tables.Tokens, t.ID, t.Encode()); err != nil {
		return api.JoinToken{}, err
	}
	a.log.Info("join token revoked", "token", t.ID)
	return apiToken(t, now), nil
}

// membersFile, in the data directory, lists the other members' gossip
// addresses as this host last saw them (a host set up with vxnet cluster
// init or join), with the join certificate's PIN: where it joins again
// after a restart when its settings name none, as the first host's do.
// A list from another cluster (another certificate) is ignored.
const membersFile = "members.json"

type rememberedMembers struct {
	Pin     string   `json:"pin"`
	Members []string `json:"members"`
}

// rememberedSeeds are the addresses membersFile lists for the cluster
// whose join certificate is pin.
func rememberedSeeds(dataDir, pin string) []string {
	b, err := os.ReadFile(filepath.Join(dataDir, membersFile))
	if err != nil {
		return nil
	}
	var r rememberedMembers
	if json.Unmarshal(b, &r) != nil || r.Pin != pin {
		return nil
	}
	var seeds []string
	for _, s := range r.Members {
		if _, _, err := net.SplitHostPort(s); err == nil {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// routineRememberMembers keeps membersFile up to date.
func (a *Agent) routineRememberMembers(ctx context.Context) {
	if a.join == nil {
		return
	}
	events, cancel := a.kv.Node().Subscribe()
	defer cancel()
	last := ""
	for {
		var others []string
		self := a.kv.Node().LocalAddr()
		for _, m := range a.kv.Node().Members() {
			if m.Addr != self && m.Name != a.cfg.Name {
				others = append(others, m.Addr)
			}
		}
		sort.Strings(others)
		if text := strings.Join(others, ","); text != last && len(others) > 0 {
			b, _ := json.Marshal(rememberedMembers{Pin: a.join.pin, Members: others})
			path := filepath.Join(a.cfg.DataDir, membersFile)
			if err := config.WriteSecretFile(path, b); err != nil {
				a.log.Warn("remembering the members", "path", path, "error", err)
			} else {
				last = text
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
		}
	}
}

// memberNamed reports the live member, if any, that holds name at another
// address than addr. Two hosts under one name would each take the other's
// rows for their own; the same host joining again (after missing a gossip
// key rotation, say) keeps its name.
func memberNamed(members []gossip.Member, name, addr string) (gossip.Member, bool) {
	for _, m := range members {
		if m.Name == name && hostOf(m.Addr) != addr {
			return m, true
		}
	}
	return gossip.Member{}, false
}

// hostOf is the host part of a member's host:port.
func hostOf(hostPort string) string {
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		return h
	}
	return hostPort
}
