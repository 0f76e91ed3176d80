package dataplane

import "testing"

// TestDropHelp_everyReason: every reason Stats can list has its help, once.
func TestDropHelp_everyReason(t *testing.T) {
	help := map[string]bool{}
	for _, h := range DropHelp {
		if help[h.Reason] || h.Help == "" {
			t.Errorf("reason %q: listed twice or without help", h.Reason)
		}
		help[h.Reason] = true
	}
	for r := DropReason(0); r < numDropReasons; r++ {
		if !help[r.String()] {
			t.Errorf("drop reason %s has no help in DropHelp", r)
		}
	}
	for _, r := range []string{"underlay_truncated", "underlay_send_error", "underlay_too_big"} {
		if !help[r] {
			t.Errorf("underlay drop %s has no help in DropHelp", r)
		}
	}
	if len(help) != int(numDropReasons)+3 {
		t.Errorf("%d reasons have help, want %d", len(help), numDropReasons+3)
	}
}
