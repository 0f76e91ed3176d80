package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/vxnet/vxnet/api"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// serveAPI serves the API on a unix socket readable by root only.
func (a *Agent) serveAPI(path string) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	// A socket that answers is another agent's, perhaps the one this
	// agent replaces, still shutting down: wait for it (bind.go).
	ln, err := retryBind(a.log, "api-socket", path, a.cfg.BindTimeout, func() (net.Listener, error) { return listenAPISocket(path) })
	if err != nil {
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	// Removed on stop only while it is still this agent's: a successor
	// may have made its own by then.
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	mine, _ := os.Lstat(path)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		removeOwnSocket(path, mine)
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	var once sync.Once
	return func() {
		once.Do(func() {
			// Let requests in progress finish (an endpoint being created
			// is saved), for a while.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			removeOwnSocket(path, mine)
		})
	}, nil
}

// Handler is the API's HTTP handler.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		ns := a.Networks()
		sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
		writeJSON(w, http.StatusOK, nonNil(ns))
	})
	mux.HandleFunc("POST /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		var req api.NetworkCreate
		if !readJSON(w, r, &req) {
			return
		}
		n, err := a.CreateNetwork(r.Context(), req)
		reply(w, http.StatusCreated, n, err)
	})
	mux.HandleFunc("GET /v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		n, ok := a.network(r.PathValue("name"))
		if !ok {
			writeError(w, apiError(api.CodeNotFound, "name", "no network %q", r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("DELETE /v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, a.RemoveNetwork(r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		eps := a.Endpoints()
		sort.Slice(eps, func(i, j int) bool {
			if eps[i].Network != eps[j].Network {
				return eps[i].Network < eps[j].Network
			}
			return eps[i].Name < eps[j].Name
		})
		writeJSON(w, http.StatusOK, nonNil(eps))
	})
	mux.HandleFunc("POST /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		var req api.EndpointCreate
		if !readJSON(w, r, &req) {
			return
		}
		ep, err := a.CreateEndpoint(r.Context(), req)
		reply(w, http.StatusCreated, ep, err)
	})
	mux.HandleFunc("DELETE /v1/endpoints/{network}/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNoContent, nil, a.RemoveEndpoint(r.PathValue("network"), r.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Services())
	})
	mux.HandleFunc("GET /v1/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(a.Members()))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiError(api.CodeNotFound, "path", "no API resource %s %s (see `go doc github.com/vxnet/vxnet/api`)", r.Method, r.URL.Path))
	})
	return mux
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// readJSON decodes a request body strictly (decodeStrict): unknown
// fields, fields in another case than documented, keys given twice and
// trailing data are bad requests naming the field; a body over maxBody is
// 413, naming the limit.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &api.Error{Code: api.CodeTooLarge,
				Message: fmt.Sprintf("request body over %d bytes (1 MiB), the API's limit", tooBig.Limit)})
			return false
		}
		writeError(w, &api.Error{Code: api.CodeBadRequest, Message: "reading the request body: " + err.Error()})
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

func writeError(w http.ResponseWriter, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = &api.Error{Code: api.CodeInternal, Message: err.Error()}
	}
	status := http.StatusInternalServerError
	switch e.Code {
	case api.CodeBadRequest:
		status = http.StatusBadRequest
	case api.CodeNotFound:
		status = http.StatusNotFound
	case api.CodeConflict:
		status = http.StatusConflict
	case api.CodeTooLarge:
		status = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
