package ipam

import (
	"errors"
	"strings"
	"testing"
)

func TestParseOptions_knownAndUnknown(t *testing.T) {
	o, err := ParseOptions("web", map[string]string{"block-size": "/27"})
	if err != nil || o.BlockSize != 27 {
		t.Fatalf("got %+v, %v", o, err)
	}
	for want, opts := range map[string]map[string]string{
		"block-size":      {"block-size": "big"},
		`"sise"`:          {"sise": "26"},
		"known options: ": {"x": ""},
	} {
		_, err := ParseOptions("web", opts)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"web"`) {
			t.Errorf("%v: error %v, want it to name %s", opts, err, want)
		}
	}
}

func TestParseAuxAddress(t *testing.T) {
	n, a, err := ParseAuxAddress("web", " db = 10.0.9.9 ")
	if err != nil || n != "db" || a != "10.0.9.9" {
		t.Fatalf("got %q %q %v", n, a, err)
	}
	for _, s := range []string{"", "db", "=10.0.0.1", "db="} {
		if _, _, err := ParseAuxAddress("web", s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "aux-address") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzParseOptions: never a panic; a success round-trips to a sane value,
// a failure names the network and the option.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"block-size=26", "block-size=/30", "bs=1", "block-size=99999999999999999999", "=", "block-size= 24"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, _ := strings.Cut(s, "=")
		o, err := ParseOptions("net", map[string]string{k: v})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Network != "net" || !strings.HasPrefix(e.Field, "option") {
				t.Fatalf("%q: error %v does not name the option", s, err)
			}
			return
		}
		if o.BlockSize < 1 || o.BlockSize > 128 {
			t.Fatalf("%q: block size %d", s, o.BlockSize)
		}
	})
}

// FuzzParseAuxAddress: never a panic; NAME=IP pairs come back trimmed and
// non-empty.
func FuzzParseAuxAddress(f *testing.F) {
	for _, s := range []string{"db=10.0.0.1", "=", "x==y", " a = b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, a, err := ParseAuxAddress("net", s)
		if err != nil {
			return
		}
		if n == "" || a == "" || n != strings.TrimSpace(n) || a != strings.TrimSpace(a) {
			t.Fatalf("%q: %q %q", s, n, a)
		}
		// The pool accepts or refuses the address with an error, never a panic.
		NewPool("net", PoolConfig{Subnet: "10.0.0.0/24", AuxAddresses: map[string]string{n: a}})
	})
}
