package tables

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestService_roundTripAndChecks(t *testing.T) {
	s := Service{Name: "api", Network: "web", Mode: ModeVIP,
		VIPs:    []netip.Addr{netip.MustParseAddr("10.0.9.4"), netip.MustParseAddr("fd00:9::4")},
		VIPHost: "h1", Ports: []PublishedPort{{8080, 80, "tcp"}, {53, 53, "udp"}},
		Creator: "h1", Created: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)}
	got, err := DecodeService(s.Key(), s.Encode())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, tc := range []struct{ key, row, want string }{
		{"web/api", `{"name":"api","network":"web","mode":"vip"}`, `vips "": a vip-mode service has one VIP per family`},
		{"web/api", `{"name":"api","network":"web","mode":"dnsrr","vips":["10.0.9.4"]}`, `a dnsrr service has no VIP`},
		{"web/api", `{"name":"api","network":"web","mode":"both"}`, `mode "both": want vip or dnsrr`},
		{"web/api", `{"name":"api","network":"web","mode":"vip","vips":["10.0.9.4","10.0.9.5"]}`, `vips "10.0.9.5": a second VIP of its family`},
		{"web/api", `{"name":"api","network":"web","mode":"vip","vips":["nope"]}`, `vips "nope": not a unicast IP address`},
		{"web/api", `{"name":"api","network":"web","mode":"vip","vips":["10.0.9.4"],"ports":["0:80"]}`, `ports "0:80"`},
		{"web/api", `{"name":"api","network":"web","mode":"vip","vips":["10.0.9.4"],"ports":["80/sctp"]}`, `protocol "sctp"`},
		{"web/other", `{"name":"api","network":"web","mode":"dnsrr"}`, `does not match the key`},
		{"web/api", `{"v":99,"name":"api","network":"web","mode":"dnsrr"}`, `newer vxnet`},
		{"web/Bad_Name", `{"name":"Bad_Name","network":"web","mode":"dnsrr"}`, `name "Bad_Name"`},
	} {
		_, err := DecodeService(tc.key, []byte(tc.row))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.row, err, tc.want)
		}
	}
}

func TestParsePublishedPort(t *testing.T) {
	for in, want := range map[string]PublishedPort{"8080:80/tcp": {8080, 80, "tcp"}, "53/udp": {53, 53, "udp"}, "9000:9001": {9000, 9001, "tcp"}} {
		if got, err := ParsePublishedPort(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x:80", "70000:80", "80:", "80:80/icmp"} {
		if _, err := ParsePublishedPort(in); err == nil {
			t.Errorf("%q taken", in)
		}
	}
}

func FuzzDecodeService(f *testing.F) {
	f.Add("web/api", []byte(`{"name":"api","network":"web","mode":"vip","vips":["10.0.9.4"],"ports":["8080:80/tcp"]}`))
	f.Fuzz(func(t *testing.T, key string, row []byte) {
		s, err := DecodeService(key, row)
		if err != nil {
			return
		}
		// What decodes encodes to a row that decodes the same.
		again, err := DecodeService(s.Key(), s.Encode())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("%q: re-decoded %+v, %v; was %+v", row, again, err, s)
		}
	})
}
