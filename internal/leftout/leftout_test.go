package leftout

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestReporter: a row left out is logged when it first appears and when
// it goes, not on every rebuild, and counted while it stays.
func TestReporter(t *testing.T) {
	var logs testutil.SyncBuffer
	r := New(slog.New(slog.NewTextHandler(&logs, nil)), "dns", "forwarding")
	if c := r.Counts(); len(c) != 2 || c["dns"] != 0 {
		t.Fatalf("counts before any rebuild: %v", c)
	}
	bad := errors.Join(errors.New("row a"), errors.Join(errors.New("row b")))
	for i := 0; i < 3; i++ {
		r.Report("dns", bad)
	}
	if c := r.Counts(); c["dns"] != 2 || c["forwarding"] != 0 {
		t.Errorf("counts %v, want 2 rows left out of dns", c)
	}
	if n := strings.Count(logs.String(), "a bad row is left out"); n != 2 {
		t.Errorf("logged %d times, want once per row:\n%s", n, logs.String())
	}
	r.Report("dns", errors.New("row b"))
	if c := r.Counts(); c["dns"] != 1 || !strings.Contains(logs.String(), `row left out before is gone or fixed" table=dns error="row a"`) {
		t.Errorf("after row a was fixed: %v\n%s", r.Counts(), logs.String())
	}
	if len(Unjoin(nil)) != 0 || len(Unjoin(bad)) != 2 {
		t.Error("Unjoin")
	}
}
