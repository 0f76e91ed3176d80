package tables

import (
	"strings"
	"testing"
	"time"
)

func TestForgottenHost_roundTrip(t *testing.T) {
	f := ForgottenHost{Host: "h3", Run: 1_800_000_000_123_456_789, By: "h1", At: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	got, err := DecodeForgottenHost("h3", f.Encode())
	if err != nil || got != f {
		t.Fatalf("round trip: %+v, %v, want %+v", got, err, f)
	}
}

// TestDecodeForgottenHost_badRows: each bad row is refused naming the
// field and its value.
func TestDecodeForgottenHost_badRows(t *testing.T) {
	for _, c := range []struct{ key, row, want string }{
		{"h3", `{`, "not a forgotten host row"},
		{"h3", `{"v":9,"run":"1","by":"h1"}`, `v "9": written by a newer vxnet`},
		{"-h3", `{"run":"1","by":"h1"}`, `key "-h3"`},
		{"h3", `{"run":"0","by":"h1"}`, `run "0"`},
		{"h3", `{"run":"12x","by":"h1"}`, `run "12x"`},
		{"h3", `{"by":"h1"}`, `run ""`},
		{"h3", `{"run":"7","by":""}`, `by ""`},
	} {
		_, err := DecodeForgottenHost(c.key, []byte(c.row))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeForgottenHost(%s, %s) = %v, want an error with %q", c.key, c.row, err, c.want)
		}
	}
}

// FuzzDecodeForgottenHost: any row decodes or is refused, never a panic;
// what decodes encodes to a row that decodes the same.
func FuzzDecodeForgottenHost(f *testing.F) {
	f.Add("h3", []byte(`{"v":1,"run":"42","by":"h1","at":"2026-12-05T10:00:00Z"}`))
	f.Add("h3", []byte(`{"run":"18446744073709551615","by":"h1"}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, key string, row []byte) {
		h, err := DecodeForgottenHost(key, row)
		if err != nil {
			return
		}
		again, err := DecodeForgottenHost(key, h.Encode())
		if err != nil || again.Run != h.Run || again.By != h.By || !again.At.Equal(h.At) {
			t.Fatalf("re-encoded %+v: %+v, %v", h, again, err)
		}
	})
}
