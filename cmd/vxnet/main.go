// Command vxnet is the vxnet container network: agent, CLI and tools in
// one binary. Run `vxnet help` for the commands.
package main

import (
	"fmt"
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
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "dataplane":
		return cmdDataplane(args[1:])
	case "version", "--version":
		fmt.Println("vxnet", version)
		return 0
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"})
		}
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "vxnet: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
