package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// newMemberlistLogger turns memberlist's "[LEVEL] memberlist: text" lines
// into slog records.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{l: l, refuted: map[string]time.Time{}, now: time.Now}, "", 0)
}

type slogWriter struct {
	l *slog.Logger

	mu      sync.Mutex
	refuted map[string]time.Time // node → its last refuted alive message
	now     func() time.Time
}

// refuteRepeat: a node refuting again within it is not a restart but two
// agents sharing one name, which is worth a warning.
const refuteRepeat = time.Minute

func (w *slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range []struct {
		tag   string
		level slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if bytes.HasPrefix(line, []byte(lv.tag)) {
			level = lv.level
			line = bytes.TrimSpace(line[len(lv.tag):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if bytes.HasPrefix(line, []byte("Refuting an alive message")) {
		// A node back from a restart answers what others still say of
		// its last run: expected, once, and the metadata memberlist
		// prints is hundreds of decimal bytes. Again and again, two
		// agents have one name.
		level = slog.LevelInfo
		if w.refutedAgain(string(line)) {
			level = slog.LevelWarn
			line = append(line[:len(line):len(line)], " (again within a minute: do two agents share this --name?)"...)
		}
		if i := bytes.Index(line, []byte(" meta:(")); i >= 0 {
			rest := line[i:]
			line = line[:i:i]
			if j := bytes.Index(rest, []byte("), ")); j >= 0 {
				line = append(append(line, ","...), rest[j+2:]...)
			}
		}
	}
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}

// refutedAgain notes a refuted alive message (line names the node in
// quotes) and reports whether the node refuted one within refuteRepeat.
func (w *slogWriter) refutedAgain(line string) bool {
	_, rest, _ := strings.Cut(line, "'")
	node, _, _ := strings.Cut(rest, "'")
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	last, seen := w.refuted[node]
	w.refuted[node] = now
	for n, t := range w.refuted {
		if now.Sub(t) > refuteRepeat {
			delete(w.refuted, n)
		}
	}
	return seen && now.Sub(last) <= refuteRepeat
}
