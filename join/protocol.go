package join

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Path is the join service's one route.
const Path = "/v1/join"

// Request is what a joiner sends.
type Request struct {
	// Token is the token's ID.SECRET.
	Token string `json:"token"`
	// Name and AdvertiseAddr are the new host's: for the members' logs, and
	// the name must not be a live member's at another address.
	Name          string `json:"name,omitempty"`
	AdvertiseAddr string `json:"advertiseAddr,omitempty"`
}

// Response is what an admitted host needs to run its agent.
type Response struct {
	// GossipKeys, base64, the one gossip is encrypted with first.
	GossipKeys []string `json:"gossipKeys"`
	// Seeds are the members' gossip addresses (host:port) to join.
	Seeds []string `json:"seeds"`
	// Cert and Key are the join certificate and its key (PEM): the new
	// host admits hosts too.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// JoinPort is the port the members' join service listens on.
	JoinPort int `json:"joinPort"`
	// Store is where the tables are kept: "gossip", or "etcd" with its
	// endpoints and prefix (the TLS files etcd may want are the host's
	// own business).
	Store         string   `json:"store"`
	EtcdEndpoints []string `json:"etcdEndpoints,omitempty"`
	EtcdPrefix    string   `json:"etcdPrefix,omitempty"`
}

// Refused is a member's refusal: the token is unknown, revoked or
// expired, or the request is malformed.
type Refused struct {
	Status int
	Reason string
}

func (e *Refused) Error() string { return "join refused: " + e.Reason }

// maxBody bounds a request or a response.
const maxBody = 1 << 20

// Ask presents tok to the member at addr (host or host:port; DefaultPort
// when none) and returns its answer. The member must show the certificate
// the token pins.
func Ask(ctx context.Context, addr string, tok Token, req Request) (Response, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(DefaultPort))
	}
	req.Token = tok.Credential()
	body, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	// ctx bounds the whole exchange (the caller's --timeout).
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(tok.Pin), Proxy: nil}}
	defer hc.CloseIdleConnections()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+Path, bytes.NewReader(body))
	if err != nil {
		return Response{}, fmt.Errorf("join %s: %w", addr, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return Response{}, fmt.Errorf("join %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Response{}, fmt.Errorf("join %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return Response{}, fmt.Errorf("join %s: %w", addr, &Refused{resp.StatusCode, e.Error})
	}
	var out Response
	if err := json.Unmarshal(b, &out); err != nil {
		return Response{}, fmt.Errorf("join %s: answer: %w", addr, err)
	}
	if err := out.check(); err != nil {
		return Response{}, fmt.Errorf("join %s: answer: %w", addr, err)
	}
	return out, nil
}

func (r Response) check() error {
	switch {
	case len(r.GossipKeys) == 0:
		return errors.New("no gossip key")
	case r.Cert == "" || r.Key == "":
		return errors.New("no join certificate")
	case r.Store == "":
		return errors.New("no store")
	}
	return nil
}

// Admit decides on a request whose token has the shape of one (id,
// secret): it returns the answer, or a *Refused.
type Admit func(ctx context.Context, id, secret string, req Request) (Response, error)

// refusalDelay slows down a caller whose token was refused.
const refusalDelay = 500 * time.Millisecond

// Handler serves Path with admit.
func Handler(admit Admit) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		var req Request
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			refuse(w, &Refused{http.StatusBadRequest, "request: " + err.Error()})
			return
		}
		id, secret, err := ParseCredential(req.Token)
		if err != nil {
			refuse(w, &Refused{http.StatusBadRequest, err.Error()})
			return
		}
		resp, err := admit(r.Context(), id, secret, req)
		if err != nil {
			var ref *Refused
			if !errors.As(err, &ref) {
				ref = &Refused{http.StatusInternalServerError, err.Error()}
			}
			if ref.Status == http.StatusForbidden {
				t := time.NewTimer(refusalDelay)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
				}
			}
			refuse(w, ref)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	return mux
}

func refuse(w http.ResponseWriter, e *Refused) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.Reason})
}
