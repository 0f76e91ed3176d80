package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger turns memberlist's "[LEVEL] memberlist: text" lines
// into slog records.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{l: l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

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
		// its last run: expected, and the metadata memberlist prints is
		// hundreds of decimal bytes.
		level = slog.LevelInfo
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
