package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/vxnet/vxnet/agent"
)

// commit is set at build time (make build: -ldflags "-X main.commit=...");
// else it comes from the build's VCS stamp, when there is one.
var commit string

const versionUsage = `Usage: vxnet version [--format text|json]

Prints this build's version, the commit it was built from, and the
versions of what it says to other hosts and keeps on disk: table rows,
gossip messages, the state file and the etcd layout. Hosts of one cluster
must read each other's: see the README's upgrade notes.

Flags:
`

// versionInfo is what `vxnet version` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"` // "" when built outside a git checkout
	Modified bool   `json:"modified,omitempty"`
	Time     string `json:"commitTime,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// What the build speaks.
	RowsRead  int `json:"tableRowsRead"`  // the newest table row format read
	RowsWrite int `json:"tableRowsWrite"` // the format written (the newest only where a row needs it)
	Gossip    int `json:"gossipMessages"`
	State     int `json:"stateFile"`
	Etcd      int `json:"etcdLayout"`
}

func buildVersion() versionInfo {
	f := agent.BuildFormats()
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		RowsRead: f.RowsRead, RowsWrite: f.RowsWrite, Gossip: f.Gossip, State: f.State, Etcd: f.Etcd}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func cmdVersion(std stdio, args []string) int {
	fs := newFlags(std, "version", versionUsage)
	format := fs.String("format", "text", "output `FORMAT`: text or json")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(std, "version", pos) {
		return 2
	}
	if !checkFormatIn(std, "version", *format, "text", "json") {
		return 2
	}
	v := buildVersion()
	if *format == "json" {
		return printJSON(std, v)
	}
	commit := v.Commit
	switch {
	case commit == "":
		commit = "unknown (built outside a git checkout)"
	case v.Modified:
		commit += " (with uncommitted changes)"
	}
	if v.Time != "" {
		commit += ", " + v.Time
	}
	fmt.Fprintf(std.stdout, "vxnet %s\ncommit:       %s\nbuilt with:   %s %s\nspeaks:\n", v.Version, commit, v.Go, v.Platform)
	fmt.Fprintf(std.stdout, "  table rows   reads v1-v%d, writes v%d (v%d for a dual-stack network)\n", v.RowsRead, v.RowsWrite, v.RowsRead)
	fmt.Fprintf(std.stdout, "  gossip       messages v%d\n", v.Gossip)
	fmt.Fprintf(std.stdout, "  state file   v%d\n", v.State)
	fmt.Fprintf(std.stdout, "  etcd layout  v%d (--store etcd)\n", v.Etcd)
	return 0
}
