package names

import (
	"errors"
	"strings"
	"testing"
)

func TestNetwork(t *testing.T) {
	for _, s := range []string{"web", "Web", "a", "9", "a.b", "my_net-1", "a-", strings.Repeat("a", 62) + ".b", strings.Repeat("a", 32) + "." + strings.Repeat("b", 31)} {
		if err := Network(s); err != nil {
			t.Errorf("Network(%q): %v, want nil", s, err)
		}
	}
	for _, tc := range []struct{ name, why string }{
		{"", "empty"},
		{"a..", "empty part"},
		{"a..b", "empty part"},
		{"trail.", "empty part"},
		{".lead", "starts with"},
		{"-x", "starts with"},
		{"_x", "starts with"},
		{strings.Repeat("a", 64), "a part of 64 characters"},
		{strings.Repeat("a", 65), "65 characters"},
		{"a/b", `has '/'`},
		{"a b", `has ' '`},
		{"café", "ASCII"},
	} {
		err := Network(tc.name)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "network name" || e.Name != tc.name || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("Network(%q): %v, want an error naming the name and saying %q", tc.name, err, tc.why)
		}
	}
}

// TestHost: a host's name may be a Kubernetes node name (up to 253
// characters, dots); what no table key or log should carry is refused.
func TestHost(t *testing.T) {
	for _, s := range []string{"h1", "node-1.example.com", "my_host", strings.Repeat("a", 100) + "." + strings.Repeat("b", 152)} {
		if err := Host(s); err != nil {
			t.Errorf("Host(%q): %v, want nil", s, err)
		}
	}
	for _, tc := range []struct{ name, why string }{
		{"", "empty"},
		{strings.Repeat("a", 254), "254 characters"},
		{"-x", "starts with"},
		{"a/b", `has '/'`},
		{"a b", `has ' '`},
	} {
		err := Host(tc.name)
		var e *Error
		if !errors.As(err, &e) || e.Kind != "host name" || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("Host(%q): %v, want an error saying %q", tc.name, err, tc.why)
		}
	}
}

func TestLabels(t *testing.T) {
	for kind, check := range map[string]func(string) error{"endpoint name": Endpoint, "alias": Alias, "service": Service} {
		for _, s := range []string{"api", "API", "c1", "1c", "a-b", strings.Repeat("x", 63)} {
			if err := check(s); err != nil {
				t.Errorf("%s %q: %v, want nil", kind, s, err)
			}
		}
		for _, s := range []string{"", "-a", "a.b", "a_b", "a b", strings.Repeat("x", 64), "ü"} {
			err := check(s)
			var e *Error
			if !errors.As(err, &e) || e.Kind != kind || e.Name != s {
				t.Errorf("%s %q: %v, want an error naming the kind and the name", kind, s, err)
			}
		}
	}
}

func TestIfname(t *testing.T) {
	for _, s := range []string{"eth0", "e", "net-1.2", strings.Repeat("i", 15)} {
		if err := Ifname(s); err != nil {
			t.Errorf("Ifname(%q): %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", ".", "..", "a/b", "a:1", "a b", "a\tb", strings.Repeat("i", 16), "é"} {
		if err := Ifname(s); err == nil {
			t.Errorf("Ifname(%q) accepted", s)
		}
	}
}

func TestPortName(t *testing.T) {
	for _, s := range []string{"http", "h2", "x-y", "LDAP", strings.Repeat("p", 15)} {
		if err := PortName(s); err != nil {
			t.Errorf("PortName(%q): %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "80", "-a", "a-", "a--b", "a_b", "a.b", strings.Repeat("p", 16)} {
		if err := PortName(s); err == nil {
			t.Errorf("PortName(%q) accepted", s)
		}
	}
}

func TestKeyAndSame(t *testing.T) {
	if Key("Web") != Key("wEB") || !Same("Web", "wEB") || Same("web", "web2") {
		t.Error("names differing in case only must share a key; others must not")
	}
}

// FuzzNetwork: an accepted network name is made of labels DNS takes.
func FuzzNetwork(f *testing.F) {
	for _, s := range []string{"web", "a..", "trail.", "a.b", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Network(s) != nil {
			return
		}
		for _, l := range strings.Split(s, ".") {
			if l == "" || len(l) > 63 {
				t.Fatalf("accepted %q with label %q", s, l)
			}
			for i := 0; i < len(l); i++ {
				c := l[i]
				if !(isAlnum(c) || c == '-' || c == '_') {
					t.Fatalf("accepted %q with byte %q", s, c)
				}
			}
		}
	})
}
