// Command vxnet is the vxnet container network: agent, CLI and tools in
// one binary. Run `vxnet help` for the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vxnet/vxnet/api"
)

const usage = `vxnet — a userspace VXLAN container network for many hosts

Usage:
  vxnet [--socket PATH] <command> [flags]

Getting started (as root, on each host):
  vxnet install                     the agent as a systemd service
  vxnet cluster init                on the first host: prints the join command
  vxnet cluster join --token T ADDR on the others

Commands:
  agent       run this host's agent (one per host)
  install     install this binary as the host's vxnet service (systemd)
  network     create, list, inspect and remove networks
  endpoint    attach containers' network namespaces to networks
  run         run a command in a new namespace attached to a network (a container without a runtime)
  service     services: a name and a virtual IP over many endpoints
  cluster     set a cluster up (init, join --token, token), its members, its store and keys
  store       export the cluster's tables, import them (into etcd, say)
  stats       this host's data plane counters: packets, and drops by reason
  lab         a whole cluster in network namespaces on this machine: up, demo, status, down
  dataplane   run the VXLAN switch alone from a static JSON file (debugging, interop, demo)
  bench       measure: the data plane against the kernel's VXLAN, the control plane
  cni         install vxnet as the CNI plugin of podman, containerd, CRI-O, the kubelet
  version     print the version, the commit and the formats this build speaks
  help        show this help, 'vxnet help <command>' for one command, or
              'vxnet help --man' for the manual page (man vxnet, once installed)

Container runtimes use vxnet through the agent:
  Docker      docker network create -d vxnet --ipam-driver vxnet --subnet 10.0.9.0/24 web
              (the agent serves Docker's network and IPAM plugin: vxnet agent --help)
  CNI         vxnet cni install: podman, containerd, CRI-O and the kubelet

Run 'vxnet <command> --help' for a command's flags. The client commands talk
to the agent's API socket: --socket, else $VXNET_SOCKET, else
` + api.DefaultSocket + `.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if os.Getenv("CNI_COMMAND") != "" && len(os.Args) == 1 {
		// Run by a container runtime as its CNI plugin (vxnet cni install).
		runCNIPlugin()
		return
	}
	os.Exit(run(stdio{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// stdio is where a command writes; tests capture it.
type stdio struct{ stdout, stderr io.Writer }

func run(std stdio, args []string) int {
	helpAsked = asksHelp(args)
	if s := os.Getenv("VXNET_SOCKET"); s != "" {
		socketPath = s
	}
	for len(args) > 0 && (args[0] == "--socket" || strings.HasPrefix(args[0], "--socket=")) {
		if v, ok := strings.CutPrefix(args[0], "--socket="); ok {
			socketPath, args = v, args[1:]
			continue
		}
		if len(args) < 2 {
			fmt.Fprintln(std.stderr, "vxnet: --socket needs a PATH")
			return 2
		}
		socketPath, args = args[1], args[2:]
	}
	if len(args) == 0 {
		fmt.Fprint(std.stderr, usage)
		return 2
	}
	switch args[0] {
	case "agent":
		return cmdAgent(std, args[1:])
	case "install":
		return cmdInstall(std, args[1:])
	case "network":
		return cmdNetwork(std, args[1:])
	case "endpoint":
		return cmdEndpoint(std, args[1:])
	case "cluster":
		return cmdCluster(std, args[1:])
	case "run":
		return cmdRun(std, args[1:])
	case "lab":
		return cmdLab(std, args[1:])
	case "service":
		return cmdService(std, args[1:])
	case "store":
		return cmdStore(std, args[1:])
	case "stats":
		return cmdStats(std, args[1:])
	case "dataplane":
		return cmdDataplane(std, args[1:])
	case "bench":
		return cmdBench(std, args[1:])
	case "cni":
		return cmdCNI(std, args[1:])
	case "version", "--version":
		return cmdVersion(std, args[1:])
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "--man" {
			return cmdMan(std, args[2:])
		}
		if len(args) > 1 && args[1] != "help" && args[1] != "-h" && args[1] != "--help" {
			return run(std, []string{args[1], "--help"}) // help COMMAND: its own
		}
		fmt.Fprint(std.stdout, usage)
		return 0
	default:
		fmt.Fprintf(std.stderr, "vxnet: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
