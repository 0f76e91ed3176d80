package driver

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestMSSClampOption(t *testing.T) {
	d, _ := Get("overlay")
	for v, want := range map[string]int{"true": 1410, "": 1410, "false": 0, "1300": 1300, "536": 536} {
		opts := map[string]string{OptMSSClamp: v}
		if err := Check(d, opts); err != nil {
			t.Errorf("%s=%s refused: %v", OptMSSClamp, v, err)
		}
		if got := ClampMSS(opts, 1450); got != want {
			t.Errorf("ClampMSS(%s=%s, 1450) = %d, want %d", OptMSSClamp, v, got, want)
		}
	}
	for _, v := range []string{"yes", "100", "70000", "-1"} {
		err := Check(d, map[string]string{OptMSSClamp: v})
		if err == nil || !strings.Contains(err.Error(), OptMSSClamp) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%s: %v, want an error naming the option and the value", OptMSSClamp, v, err)
		}
	}
	if ClampMSS(nil, 1450) != 0 {
		t.Error("clamping without the option")
	}
	// A host MTU that leaves less than TCP's least (an encrypted network
	// on --mtu 600: 572) clamps to 536, a value the switch takes.
	if got := ClampMSS(map[string]string{OptMSSClamp: "true"}, 572); got != 536 {
		t.Errorf("ClampMSS(true, 572) = %d, want 536", got)
	}
	// Every driver takes it as its own, not IPAM's.
	for _, d := range All() {
		own, rest := SplitOptions(d, map[string]string{OptMSSClamp: "true", "block-size": "26"})
		if own[OptMSSClamp] != "true" || rest[OptMSSClamp] != "" || rest["block-size"] != "26" {
			t.Errorf("%s: own %v rest %v", d.Name(), own, rest)
		}
	}
}

// TestNormalizeOptions: an empty true-or-false option (Docker's --opt KEY)
// is written as the true it means; other options and values stay.
func TestNormalizeOptions(t *testing.T) {
	opts := map[string]string{OptEncrypted: "", OptMSSClamp: "", "block-size": "", "uplink": "eth1"}
	NormalizeOptions(opts)
	want := map[string]string{OptEncrypted: "true", OptMSSClamp: "true", "block-size": "", "uplink": "eth1"}
	if !maps.Equal(opts, want) {
		t.Errorf("got %v, want %v", opts, want)
	}
	NormalizeOptions(nil) // no options: nothing to do
	if d, _ := Get("overlay"); !slices.Equal(OptionKeys(d), []string{OptEncrypted, OptMSSClamp}) {
		t.Errorf("overlay's options: %v", OptionKeys(d))
	}
	// nat's networks cannot be encrypted: its list does not offer it.
	if d, _ := Get("nat"); slices.Contains(OptionKeys(d), OptEncrypted) || !slices.Contains(OptionKeys(d), OptMSSClamp) {
		t.Errorf("nat's options: %v", OptionKeys(d))
	}
}
