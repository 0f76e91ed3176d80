package lab

import (
	"fmt"
	"strconv"
	"strings"
)

// procStat is what the lab reads from /proc/PID/stat.
type procStat struct {
	State byte   // R, S, D, Z, ...
	Start uint64 // start time, clock ticks after boot
}

// parseProcStat parses the contents of /proc/PID/stat. The command name (the
// second field) is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("proc stat: no command name in %q", s)
	}
	// After ')': state (field 3) ... starttime (field 22).
	f := strings.Fields(s[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: start time %q: %w", f[19], err)
	}
	return procStat{State: f[0][0], Start: start}, nil
}

func pids(procs []Proc) []int {
	var out []int
	for _, p := range procs {
		out = append(out, p.PID)
	}
	return out
}
