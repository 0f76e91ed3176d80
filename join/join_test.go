package join

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testCert(t *testing.T) (tls.Certificate, string, []byte, []byte) {
	t.Helper()
	certPEM, keyPEM, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	c, pin, err := LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c, pin, certPEM, keyPEM
}

func TestToken_roundTrip(t *testing.T) {
	_, pin, _, _ := testCert(t)
	tok, err := NewToken(pin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseToken(" " + tok.String() + "\n")
	if err != nil || got != tok {
		t.Fatalf("ParseToken(%s) = %+v, %v", tok, got, err)
	}
	if !strings.HasPrefix(tok.String(), "vxn1-"+pin+"-") || len(tok.ID) != 6 || len(tok.Secret) != 26 {
		t.Errorf("token %s", tok)
	}
	other, _ := NewToken(pin)
	if other.ID == tok.ID || other.Secret == tok.Secret {
		t.Errorf("two tokens share an ID or a secret: %s %s", tok, other)
	}
	id, secret, err := ParseCredential(tok.Credential())
	if err != nil || id != tok.ID || secret != tok.Secret {
		t.Errorf("ParseCredential: %s %s %v", id, secret, err)
	}
	h := HashSecret(tok.Secret)
	if !SecretMatches(tok.Secret, h) || SecretMatches(other.Secret, h) || SecretMatches(tok.Secret, "zz") || SecretMatches(tok.Secret, "") {
		t.Error("SecretMatches")
	}
}

// TestParseToken_errorsNameThePart: each malformed part is named, and the
// secret never shows in an error.
func TestParseToken_errorsNameThePart(t *testing.T) {
	pin := strings.Repeat("a", 52)
	secret := strings.Repeat("s", 26)
	for _, c := range []struct{ in, want string }{
		{"", "want vxn1-PIN-ID.SECRET"},
		{"vxn2-" + pin + "-abcdef." + secret, "want vxn1-PIN-ID.SECRET"},
		{"vxn1-" + pin[:51] + "-abcdef." + secret, "PIN"},
		{"vxn1-" + strings.ToUpper(pin) + "-abcdef." + secret, "PIN"},
		{"vxn1-" + pin + "-abcdef" + secret, "ID.SECRET"},
		{"vxn1-" + pin + "-abcde1." + secret, `ID "abcde1"`},
		{"vxn1-" + pin + "-abcdef." + secret[:25], "SECRET"},
		{"vxn1-" + pin + "-abcdef." + secret + "-x", "want vxn1-PIN-ID.SECRET"},
	} {
		_, err := ParseToken(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseToken(%q) = %v, want an error naming %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("ParseToken(%q): the error shows the secret: %v", c.in, err)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("vxn1-" + strings.Repeat("a", 52) + "-abcdef." + strings.Repeat("b", 26))
	f.Add("vxn1--.")
	f.Add("vxn1-a-b.c-d")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q parsed as %+v, which reads back as %+v, %v", s, tok, again, err)
		}
	})
}

// serve runs the join service over admit on a loopback TLS listener.
func serve(t *testing.T, cert tls.Certificate, admit Admit) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(Handler(admit))
	srv.TLS = ServerTLS(cert)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func TestAsk_admittedRefusedPinned(t *testing.T) {
	cert, pin, certPEM, keyPEM := testCert(t)
	good, _ := NewToken(pin)
	hash := HashSecret(good.Secret)
	var got Request
	addr := serve(t, cert, func(_ context.Context, id, secret string, req Request) (Response, error) {
		got = req
		if id != good.ID || !SecretMatches(secret, hash) {
			return Response{}, &Refused{http.StatusForbidden, "token " + id + " was revoked"}
		}
		return Response{GossipKeys: []string{"k"}, Seeds: []string{"198.18.0.1:7946"}, Cert: string(certPEM), Key: string(keyPEM), Store: "gossip"}, nil
	})
	ctx := context.Background()
	resp, err := Ask(ctx, addr, good, Request{Name: "h2", AdvertiseAddr: "198.18.0.2"})
	if err != nil || resp.GossipKeys[0] != "k" || resp.Seeds[0] != "198.18.0.1:7946" {
		t.Fatalf("Ask: %+v, %v", resp, err)
	}
	if got.Name != "h2" || got.Token != good.Credential() {
		t.Errorf("the member got %+v", got)
	}

	bad, _ := NewToken(pin)
	_, err = Ask(ctx, addr, bad, Request{})
	var ref *Refused
	if !errors.As(err, &ref) || ref.Status != http.StatusForbidden || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("Ask with an unknown token: %v", err)
	}

	// A token pinning another certificate: the handshake fails, nothing
	// is sent.
	got = Request{}
	_, otherPin, _, _ := testCert(t)
	elsewhere := good
	elsewhere.Pin = otherPin
	if _, err := Ask(ctx, addr, elsewhere, Request{Name: "h3"}); err == nil || !strings.Contains(err.Error(), "not the one the token names") {
		t.Errorf("Ask against another certificate: %v", err)
	}
	if got.Name != "" {
		t.Errorf("the member got a request despite the wrong certificate: %+v", got)
	}
}

// TestHandler_badRequests: malformed bodies and credentials are 400s that
// say what is wrong; admit is not asked.
func TestHandler_badRequests(t *testing.T) {
	cert, pin, _, _ := testCert(t)
	asked := false
	addr := serve(t, cert, func(context.Context, string, string, Request) (Response, error) {
		asked = true
		return Response{}, nil
	})
	tok, _ := NewToken(pin)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(pin)}}
	for _, c := range []struct{ body, want string }{
		{`{"token": "nope"}`, "ID.SECRET"},
		{`{"token": "` + tok.ID + `.short"}`, "SECRET"},
		{`{"token": "` + tok.Credential() + `", "extra": 1}`, "unknown field"},
		{`[`, "request"},
	} {
		resp, err := hc.Post("https://"+addr+Path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var b [512]byte
		n, _ := resp.Body.Read(b[:])
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b[:n]), c.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.body, resp.StatusCode, b[:n], c.want)
		}
	}
	if asked {
		t.Error("admit was asked about a malformed request")
	}
}

func TestLoadCertificate_refusesMismatch(t *testing.T) {
	_, _, certPEM, _ := testCert(t)
	_, _, _, otherKey := testCert(t)
	if _, _, err := LoadCertificate(certPEM, otherKey); err == nil {
		t.Error("a certificate with another's key loaded")
	}
	if _, _, err := LoadCertificate([]byte("x"), []byte("y")); err == nil || !strings.Contains(err.Error(), "join certificate") {
		t.Errorf("garbage: %v", err)
	}
}
