package lab

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNeedsLinux is returned by everything that builds or changes a lab
	// on a platform without network namespaces.
	ErrNeedsLinux = errors.New("the lab needs Linux network namespaces")
	// ErrNotUp means no state file exists for the lab: it was never built
	// or it was taken down.
	ErrNotUp = errors.New("lab is not up")
	// ErrAlreadyUp means Up found a state file (or namespaces) of a lab
	// with the same ID.
	ErrAlreadyUp = errors.New("lab is already up")
)

// CmdError is a command that failed: its arguments, its combined output
// and how it ended.
type CmdError struct {
	Argv   []string
	Output string
	Err    error
}

func (e *CmdError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + lastLines(out, 5)
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// AgentError says which agent did not come up, why, and what its log said
// last.
type AgentError struct {
	Host    string // h1, h2, ...
	Log     string // path of the agent's log file
	LogTail string // its last lines
	Err     error
}

func (e *AgentError) Error() string {
	msg := fmt.Sprintf("agent on %s: %v", e.Host, e.Err)
	if e.LogTail != "" {
		msg += fmt.Sprintf("\nlast lines of %s:\n%s", e.Log, indent(e.LogTail, "  | "))
	} else if e.Log != "" {
		msg += fmt.Sprintf(" (its log %s is empty)", e.Log)
	}
	return msg
}

func (e *AgentError) Unwrap() error { return e.Err }

// lastLines returns at most n trailing lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
