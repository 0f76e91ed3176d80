package agent

import (
	"sort"
	"sync"
)

// The tables the agent rebuilds from the replicated ones on every change.
const (
	tableForwarding = "forwarding" // the switch's (dataplane.NewTable)
	tableDNS        = "dns"        // the DNS records (dns.NewTable)
	tableHNS        = "hns"        // what HNS holds (Windows)
)

// skippedRows remembers, per rebuilt table, the rows the last rebuild
// left out. A rebuild never fails whole for a bad row (a row from another
// host, of an older version or a bad peer, can be anything): the row is
// left out, logged once when it first appears, and counted (the
// vxnet_table_rows_left_out metric) for as long as it stays. The zero
// value is ready to use.
type skippedRows struct {
	mu   sync.Mutex
	rows map[string]map[string]bool // table → the errors of its rows left out
}

// reportSkipped records that the last rebuild of table left out the rows
// err lists (joined errors, one per row; nil for none), and logs those it
// did not leave out the time before.
func (a *Agent) reportSkipped(table string, err error) {
	now := map[string]bool{}
	for _, e := range unjoin(err) {
		now[e.Error()] = true
	}
	s := &a.skipped
	s.mu.Lock()
	before := s.rows[table]
	if s.rows == nil {
		s.rows = map[string]map[string]bool{}
	}
	s.rows[table] = now
	s.mu.Unlock()
	var fresh []string
	for msg := range now {
		if !before[msg] {
			fresh = append(fresh, msg)
		}
	}
	sort.Strings(fresh)
	for _, msg := range fresh {
		a.log.Warn("a bad row is left out; the rest of the table is in use", "table", table, "error", msg)
	}
	for msg := range before {
		if !now[msg] {
			a.log.Info("a row left out before is gone or fixed", "table", table, "error", msg)
		}
	}
}

// skippedCounts is how many rows each rebuilt table leaves out now.
func (a *Agent) skippedCounts() map[string]int {
	s := &a.skipped
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{tableForwarding: 0, tableDNS: 0}
	if a.hnsProg != nil {
		out[tableHNS] = 0
	}
	for t, rows := range s.rows {
		out[t] = len(rows)
	}
	return out
}

// unjoin lists the errors err joins (errors.Join), err alone if it joins
// none, or nothing for nil.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
