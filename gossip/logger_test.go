package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestMemberlistLogger: levels are taken from memberlist's tags, and a
// refuted alive message, expected after a restart, is logged at info
// without the metadata bytes.
func TestMemberlistLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Print("[WARN] memberlist: Refuting an alive message for 'h3' (198.18.0.3:7946) meta:([123 34 118 116 101 112] VS [123 34 118 116]), vsn:([1 5 5 0 0 0] VS [1 5 5 0 0 0])")
	l.Print("[ERR] memberlist: Failed to send ping: boom")
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="Refuting an alive message for 'h3' (198.18.0.3:7946), vsn:([1 5 5 0 0 0] VS [1 5 5 0 0 0])"`,
		`level=ERROR msg="Failed to send ping: boom"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "123 34") {
		t.Errorf("the metadata bytes are logged:\n%s", out)
	}
	// Refuting again within a minute: two agents share the name.
	buf.Reset()
	l.Print("[WARN] memberlist: Refuting an alive message for 'h3' (198.18.0.4:7946) meta:([1] VS [2]), vsn:([1] VS [1])")
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "share this --name") {
		t.Errorf("a second refutation within a minute:\n%s", out)
	}
}
