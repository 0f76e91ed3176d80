package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
)

// TestPrintDown: the down hosts under the members, each with its counts
// and the end of its names' hold where there is one; alone, a line that
// says none is down.
func TestPrintDown(t *testing.T) {
	since := time.Date(2026, 12, 5, 10, 2, 11, 0, time.UTC)
	down := []api.DownHost{
		{Name: "h3", Since: since, EndpointCount: 2, NamesHeldUntil: since.Add(10 * time.Minute)},
		{Name: "h4", Since: since},
	}
	var b bytes.Buffer
	printDown(&b, down, false)
	out := b.String()
	for _, want := range []string{"down (", "NAMES HELD UNTIL", "h3", "2026-12-05T10:02:11Z", "2026-12-05T10:12:11Z", "h4"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.Contains(lines[3], "—") {
		t.Errorf("want a heading, a header and two rows, h4's hold a dash:\n%s", out)
	}
	b.Reset()
	printDown(&b, nil, false)
	if b.Len() != 0 {
		t.Errorf("none down under the members printed %q", b.String())
	}
	printDown(&b, nil, true)
	if got := strings.TrimSpace(b.String()); got != "no host is down" {
		t.Errorf("none down alone printed %q", got)
	}
}
