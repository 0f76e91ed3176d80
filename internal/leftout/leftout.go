// Package leftout reports the rows a rebuilt table leaves out. A rebuild
// never fails whole for a bad row (a row from another host, of an older
// version or a bad peer, can be anything): the row is left out, logged
// once when it first appears, and counted (the agent's
// vxnet_table_rows_left_out metric) for as long as it stays.
package leftout

import (
	"log/slog"
	"sort"
	"sync"
)

// Reporter remembers, per rebuilt table, the rows the last rebuild left
// out.
type Reporter struct {
	log    *slog.Logger
	tables []string // counted from the start, at 0
	mu     sync.Mutex
	rows   map[string]map[string]bool // table → the errors of its rows left out
}

// New reports to log; tables are counted (at 0) before any rebuild.
func New(log *slog.Logger, tables ...string) *Reporter {
	return &Reporter{log: log, tables: tables, rows: map[string]map[string]bool{}}
}

// Report records that the last rebuild of table left out the rows err
// lists (joined errors, one per row; nil for none), and logs those it did
// not leave out the time before.
func (s *Reporter) Report(table string, err error) {
	now := map[string]bool{}
	for _, e := range Unjoin(err) {
		now[e.Error()] = true
	}
	s.mu.Lock()
	before := s.rows[table]
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
		s.log.Warn("a bad row is left out; the rest of the table is in use", "table", table, "error", msg)
	}
	for msg := range before {
		if !now[msg] {
			s.log.Info("a row left out before is gone or fixed", "table", table, "error", msg)
		}
	}
}

// Counts is how many rows each table leaves out now.
func (s *Reporter) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, t := range s.tables {
		out[t] = 0
	}
	for t, rows := range s.rows {
		out[t] = len(rows)
	}
	return out
}

// Unjoin lists the errors err joins (errors.Join), err alone if it joins
// none, or nothing for nil.
func Unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
