package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend is what the server needs of an agent: the resources behind the
// routes. The server decodes and checks the shape of requests, and turns
// results into documents and HTTP statuses; the backend decides. An error
// that is an *Error keeps its code (and so its status); any other is
// internal (500).
type Backend interface {
	Networks() []Network
	// Network returns the network called name, if there is one.
	Network(name string) (Network, bool)
	// NetworkBlocks fills n's Blocks and OtherBlocks.
	NetworkBlocks(n *Network)
	CreateNetwork(ctx context.Context, req NetworkCreate) (Network, error)
	RemoveNetwork(name string) error
	// Endpoints lists every host's endpoints.
	Endpoints() []Endpoint
	// DownHostEndpoints lists the endpoints of the hosts that are down
	// (State StateHostDown), which Endpoints leaves out.
	DownHostEndpoints() []Endpoint
	CreateEndpoint(ctx context.Context, req EndpointCreate) (Endpoint, error)
	RemoveEndpoint(network, name string) error
	Services() []Service
	CreateService(ctx context.Context, req ServiceCreate) (Service, error)
	RemoveService(network, name string) error
	Members() []Member
	// DownHosts are the hosts this agent sees down, not gone.
	DownHosts() []DownHost
	// Store is the state of the tables' store.
	Store() StoreStatus
	// Stats are this host's data plane's counters.
	Stats() Stats
	// ExportStore returns every row this host sees.
	ExportStore() StoreDump
	// ImportStore writes a dump's cluster rows that are not there yet.
	ImportStore(d StoreDump) (StoreImport, error)
	// Leave makes this host's agent leave the cluster and stop (see
	// ClusterLeave).
	Leave(req ClusterLeave) (ClusterLeave, error)
	// ForgetHost makes the cluster forget a host that is down (see
	// ClusterForget).
	ForgetHost(req ClusterForget) (ClusterForget, error)
	// RotateKeys starts a rotation of this host's session key.
	RotateKeys(ctx context.Context) (KeyRotation, error)
	// RotateGossipKey replaces the gossip key on every member.
	RotateGossipKey(ctx context.Context) (GossipKeyRotation, error)
	// JoinTokens lists the cluster's join tokens.
	JoinTokens() ([]JoinToken, error)
	// CreateJoinToken makes a join token (and revokes the others when
	// asked to rotate).
	CreateJoinToken(ctx context.Context, req JoinTokenCreate) (JoinTokenCreated, error)
	// RevokeJoinToken revokes the token id.
	RevokeJoinToken(id string) (JoinToken, error)
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// shutdownGrace is how long stopping a server waits for the requests in
// progress: an endpoint being created is saved before its answer.
const shutdownGrace = 30 * time.Second

// Serve serves h on ln until stop is called. stop lets the requests in
// progress finish, for a while, then closes ln; calling it again does
// nothing.
func Serve(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			srv.Shutdown(ctx)
		})
	}
}

// NewHandler returns the API's routes (the package comment lists them)
// over b.
func NewHandler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		ns := b.Networks()
		sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
		writeJSON(w, http.StatusOK, nonNil(ns))
	})
	mux.HandleFunc("POST /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		var req NetworkCreate
		if !readJSON(w, r, &req) {
			return
		}
		n, err := b.CreateNetwork(r.Context(), req)
		reply(w, http.StatusCreated, n, err)
	})
	mux.HandleFunc("GET /v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := b.Network(r.PathValue("name"))
		if !ok {
			writeError(w, notFound("name", "no network %q", r.PathValue("name")))
			return
		}
		switch v := r.URL.Query().Get("blocks"); v {
		case "true":
			b.NetworkBlocks(&n)
		case "", "false":
		default:
			writeError(w, &Error{Code: CodeBadRequest, Field: "blocks", Message: fmt.Sprintf("blocks=%q: want true or false", v)})
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("DELETE /v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, b.RemoveNetwork(r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		all := false
		if v := r.URL.Query().Get("all"); v != "" {
			var err error
			if all, err = strconv.ParseBool(v); err != nil {
				writeError(w, &Error{Code: CodeBadRequest, Field: "all", Message: fmt.Sprintf("query parameter all=%q: want true or false", v)})
				return
			}
		}
		eps := b.Endpoints()
		if all {
			eps = append(eps, b.DownHostEndpoints()...)
		}
		sort.Slice(eps, func(i, j int) bool {
			if eps[i].Network != eps[j].Network {
				return eps[i].Network < eps[j].Network
			}
			if eps[i].Name != eps[j].Name {
				return eps[i].Name < eps[j].Name
			}
			return eps[i].Host < eps[j].Host
		})
		writeJSON(w, http.StatusOK, nonNil(eps))
	})
	mux.HandleFunc("POST /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		var req EndpointCreate
		if !readJSON(w, r, &req) {
			return
		}
		ep, err := b.CreateEndpoint(r.Context(), req)
		reply(w, http.StatusCreated, ep, err)
	})
	mux.HandleFunc("DELETE /v1/endpoints/{network}/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, b.RemoveEndpoint(r.PathValue("network"), r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(b.Services()))
	})
	mux.HandleFunc("POST /v1/services", func(w http.ResponseWriter, r *http.Request) {
		var req ServiceCreate
		if !readJSON(w, r, &req) {
			return
		}
		s, err := b.CreateService(r.Context(), req)
		reply(w, http.StatusCreated, s, err)
	})
	mux.HandleFunc("GET /v1/services/{network}/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, s := range b.Services() {
			if s.Network == r.PathValue("network") && s.Name == r.PathValue("name") {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		writeError(w, notFound("name", "no service %q on network %q", r.PathValue("name"), r.PathValue("network")))
	})
	mux.HandleFunc("DELETE /v1/services/{network}/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, b.RemoveService(r.PathValue("network"), r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(b.Members()))
	})
	mux.HandleFunc("GET /v1/cluster/down", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(b.DownHosts()))
	})
	mux.HandleFunc("GET /v1/cluster/store", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Store())
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Stats())
	})
	mux.HandleFunc("GET /v1/store/export", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.ExportStore())
	})
	mux.HandleFunc("POST /v1/store/import", func(w http.ResponseWriter, r *http.Request) {
		var d StoreDump
		if !readJSONUpTo(w, r, &d, maxImport) {
			return
		}
		res, err := b.ImportStore(d)
		reply(w, http.StatusOK, res, err)
	})
	mux.HandleFunc("POST /v1/cluster/leave", func(w http.ResponseWriter, r *http.Request) {
		var req ClusterLeave
		if !readJSON(w, r, &req) {
			return
		}
		res, err := b.Leave(req)
		reply(w, http.StatusAccepted, res, err)
	})
	mux.HandleFunc("POST /v1/cluster/forget", func(w http.ResponseWriter, r *http.Request) {
		var req ClusterForget
		if !readJSON(w, r, &req) {
			return
		}
		if req.Name == "" {
			writeError(w, &Error{Code: CodeBadRequest, Field: "name", Message: "name: want the name of a host that is down"})
			return
		}
		if len(req.Endpoints) > 0 {
			writeError(w, &Error{Code: CodeBadRequest, Field: "endpoints", Message: "endpoints: an answer's field, not a request's"})
			return
		}
		res, err := b.ForgetHost(req)
		reply(w, http.StatusOK, res, err)
	})
	mux.HandleFunc("POST /v1/cluster/rotate-keys", func(w http.ResponseWriter, r *http.Request) {
		k, err := b.RotateKeys(r.Context())
		reply(w, http.StatusAccepted, k, err)
	})
	mux.HandleFunc("POST /v1/cluster/rotate-gossip-key", func(w http.ResponseWriter, r *http.Request) {
		k, err := b.RotateGossipKey(r.Context())
		reply(w, http.StatusOK, k, err)
	})
	mux.HandleFunc("GET /v1/cluster/tokens", func(w http.ResponseWriter, r *http.Request) {
		ts, err := b.JoinTokens()
		reply(w, http.StatusOK, nonNil(ts), err)
	})
	mux.HandleFunc("POST /v1/cluster/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req JoinTokenCreate
		if !readJSON(w, r, &req) {
			return
		}
		t, err := b.CreateJoinToken(r.Context(), req)
		reply(w, http.StatusCreated, t, err)
	})
	mux.HandleFunc("DELETE /v1/cluster/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, err := b.RevokeJoinToken(r.PathValue("id"))
		reply(w, http.StatusOK, t, err)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, &Error{Code: CodeMethodNotAllowed, Field: "method", Message: fmt.Sprintf("%s %s: the resource takes %s", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		writeError(w, notFound("path", "no API resource %s %s (see `go doc github.com/vxnet/vxnet/api`)", r.Method, r.URL.Path))
	})
	return mux
}

// allowed lists the methods the API takes on r's path, none if the path
// is no resource of it.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// nonNil makes an empty list [] in JSON rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func notFound(field, format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Field: field, Message: fmt.Sprintf(format, args...)}
}

// readJSON decodes a request body strictly (decodeStrict): unknown
// fields, fields in another case than documented, keys given twice and
// trailing data are bad requests naming the field; a body over maxBody is
// 413, naming the limit.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONUpTo(w, r, v, maxBody)
}

// maxImport bounds the body of a store import: a whole cluster's tables.
const maxImport = 256 << 20

// readJSONUpTo is readJSON with a limit of its own.
func readJSONUpTo(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &Error{Code: CodeTooLarge,
				Message: fmt.Sprintf("request body over %d bytes (%d MiB), the API's limit", tooBig.Limit, tooBig.Limit>>20)})
			return false
		}
		writeError(w, &Error{Code: CodeBadRequest, Message: "reading the request body: " + err.Error()})
		return false
	}
	if err := decodeStrict(body, v); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, v)
}

// writeError writes err as an Error document, with the status of its
// code; an error that is no *Error is internal.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	var u interface{ Unavailable() bool }
	var said interface{ Summary() string }
	switch {
	case errors.As(err, &e):
	case errors.As(err, &said) && errors.As(err, &u) && u.Unavailable():
		// The store's words, not the table and key it was writing.
		e = &Error{Code: CodeUnavailable, Message: said.Summary()}
	case errors.As(err, &u) && u.Unavailable():
		e = &Error{Code: CodeUnavailable, Message: err.Error()}
	default:
		e = &Error{Code: CodeInternal, Message: err.Error()}
	}
	writeJSON(w, httpStatus(e.Code), e)
}

// httpStatus is the HTTP status of an error code.
func httpStatus(code string) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict, CodeBusy:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
