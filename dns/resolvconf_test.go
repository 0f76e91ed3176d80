package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseResolvConf(t *testing.T) {
	rc, err := ParseResolvConf(strings.NewReader(`# generated
domain old.example
search a.example b.example
nameserver 127.0.0.11
nameserver 192.0.2.1
; comment
nameserver   fe80::1%eth0
options ndots:2 timeout:1
nameserver 192.0.2.2
nameserver 192.0.2.3
sortlist 10.0.0.0
`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.Search, []string{"a.example", "b.example"}) || !slices.Equal(rc.Options, []string{"ndots:2", "timeout:1"}) {
		t.Errorf("search %v options %v", rc.Search, rc.Options)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53"), netip.MustParseAddrPort("192.0.2.2:53")}
	if got := rc.Upstreams(); !slices.Equal(got, want) {
		t.Errorf("upstreams %v, want %v (127.0.0.11 skipped, at most 3)", got, want)
	}
	_, err = ParseResolvConf(strings.NewReader("nameserver 192.0.2.1\nnameserver dns.example\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "line 2 nameserver" || fe.Value != "dns.example" {
		t.Errorf("bad nameserver: %v", err)
	}
	if rc, err := ParseResolvConf(strings.NewReader("")); err != nil || rc.Upstreams() != nil {
		t.Errorf("empty file: %v %v", rc, err)
	}
}

func TestWriteResolvConf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ns1", "resolv.conf")
	if err := WriteResolvConf(p, []string{"web"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	rc, err := ParseResolvConf(strings.NewReader(string(b)))
	if err != nil || len(rc.Nameservers) != 1 || rc.Nameservers[0] != ContainerAddr.Addr() || !slices.Equal(rc.Search, []string{"web"}) {
		t.Errorf("%q parsed as %+v, %v", b, rc, err)
	}
	if NetnsResolvConfPath("c1") != "/etc/netns/c1/resolv.conf" {
		t.Error(NetnsResolvConfPath("c1"))
	}
}
