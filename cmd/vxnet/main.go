// Command vxnet is the vxnet container network: agent, CLI and tools in
// one binary. Run `vxnet help` for the commands.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `vxnet — a userspace VXLAN container network for many hosts

Usage:
  vxnet <command> [flags]

Commands:
  dataplane   run the VXLAN switch alone from a static JSON file (debugging, interop, demo)
  version     print the version
  help        show this help, or 'vxnet help <command>' for one command

Run 'vxnet <command> --help' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(stdio{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// stdio is where a command writes; tests capture it.
type stdio struct{ stdout, stderr io.Writer }

func run(std stdio, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(std.stderr, usage)
		return 2
	}
	switch args[0] {
	case "dataplane":
		return cmdDataplane(std, args[1:])
	case "version", "--version":
		fmt.Fprintln(std.stdout, "vxnet", version)
		return 0
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run(std, []string{args[1], "--help"})
		}
		fmt.Fprint(std.stdout, usage)
		return 0
	default:
		fmt.Fprintf(std.stderr, "vxnet: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
