package tables

import (
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/join"
)

func TestToken_roundTripAndStates(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := Token{ID: "abc234", Pin: strings.Repeat("p", 52), Hash: join.HashSecret("s"), Creator: "h1", Created: now, Expires: now.Add(time.Hour)}
	got, err := DecodeToken("abc234", tok.Encode())
	if err != nil || got != tok {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, c := range []struct {
		at   time.Time
		tok  Token
		want string
	}{
		{now, tok, "active"},
		{now.Add(time.Hour), tok, "expired"},
		{now, Token{Revoked: now}, "revoked"},
		{now.Add(1000 * time.Hour), Token{}, "active"},
	} {
		if s := c.tok.State(c.at); s != c.want {
			t.Errorf("State at %v of %+v = %s, want %s", c.at, c.tok, s, c.want)
		}
	}
}

// TestDecodeToken_badRows: each bad row is refused naming the field.
func TestDecodeToken_badRows(t *testing.T) {
	hash := join.HashSecret("s")
	pin := strings.Repeat("p", 52)
	for _, c := range []struct{ key, row, want string }{
		{"abc234", `{"id":"abc234","hash":"` + hash + `"}`, `pin ""`},
		{"abc234", `{"id":"abc234","pin":"` + pin[:50] + `","hash":"` + hash + `"}`, `pin "`},
		{"abc234", `{`, "not a token row"},
		{"abc234", `{"v":9,"id":"abc234","hash":"` + hash + `"}`, `v "9": written by a newer vxnet`},
		{"abc234", `{"id":"xyz234","hash":"` + hash + `"}`, `id "xyz234": does not match`},
		{"ABC234", `{"id":"ABC234","hash":"` + hash + `"}`, `id "ABC234"`},
		{"abc234", `{"id":"abc234","pin":"` + pin + `","hash":"beef"}`, `hash "beef"`},
	} {
		_, err := DecodeToken(c.key, []byte(c.row))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeToken(%s, %s) = %v, want an error with %q", c.key, c.row, err, c.want)
		}
	}
}

func TestGossipKeyRotation_rows(t *testing.T) {
	r := GossipKeyRotation{Generation: 2, Phase: PhaseUse, Key: "0123456789abcdef", Sealed: map[string][]byte{"h1": make([]byte, 60), "h2": make([]byte, 60)},
		Initiator: "h1", Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := DecodeGossipKeyRotation(RotationKey, r.Encode())
	if err != nil || got.Phase != r.Phase || got.Generation != 2 || len(got.Sealed) != 2 || len(got.Sealed["h2"]) != 60 || got.Key != r.Key {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	long := strings.Repeat("A", 80)
	for _, c := range []struct{ key, row, want string }{
		{"other", string(r.Encode()), `key "other"`},
		{RotationKey, strings.Replace(string(r.Encode()), `"use"`, `"later"`, 1), `phase "later"`},
		{RotationKey, strings.Replace(string(r.Encode()), `"generation":2`, `"generation":0`, 1), `generation "0"`},
		{RotationKey, `{"generation":1,"phase":"use","key":"0123456789abcdef","sealed":{"h1":"AAAA"}}`, `sealed "h1"`},
		{RotationKey, `{"generation":1,"phase":"use","key":"0123456789abcdef","sealed":{}}`, "sealed to each member"},
		{RotationKey, `{"generation":1,"phase":"use","key":"01","sealed":{"h1":"` + long + `"}}`, "fingerprint"},
	} {
		if _, err := DecodeGossipKeyRotation(c.key, []byte(c.row)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeGossipKeyRotation(%s, %s) = %v, want %q", c.key, c.row, err, c.want)
		}
	}
}
