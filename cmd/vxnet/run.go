package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/api"
)

const runUsage = `Usage: vxnet run --network NET --name NAME [flags] -- CMD [ARG...]

Runs CMD as a container without a container runtime: a new network namespace,
attached to NET as endpoint NAME (address, MTU, routes and resolver set), CMD
run inside it; when CMD exits the endpoint and the namespace are removed, and
vxnet run exits with CMD's status. Needs root and iproute2's ip.

Example:
  vxnet run --network web --name api -- python3 -m http.server 80
  vxnet run --network web --name probe -- ping -c3 api

Flags:
`

func cmdRun(std stdio, args []string) int {
	fs := newFlags(std, "run", runUsage)
	network := fs.String("network", "", "`NETWORK` to attach to (required)")
	name := fs.String("name", "", "endpoint `NAME`, resolvable in DNS (required)")
	ip := fs.String("ip", "", "a static `IP`")
	service := fs.String("service", "", "`SERVICE` the endpoint belongs to")
	var aliases multiFlag
	fs.Var(&aliases, "alias", "another DNS `NAME` (repeatable)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	cmdArgs := fs.Args()
	if *network == "" || *name == "" || len(cmdArgs) == 0 {
		fmt.Fprintln(std.stderr, "vxnet run: want --network NET --name NAME -- CMD (see --help)")
		return 2
	}
	if _, err := exec.LookPath(cmdArgs[0]); err != nil {
		// As a shell says it, before a namespace or endpoint is made.
		fmt.Fprintf(std.stderr, "vxnet run: %s: command not found (%v)\n", cmdArgs[0], err)
		return 127
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	ns := "vxrun-" + *name + "-" + hex.EncodeToString(suffix)
	if len(ns) > 64 {
		ns = ns[:64]
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(std.stderr, "vxnet run: creating namespace %s: %v: %s\n", ns, err, strings.TrimSpace(string(out)))
		return 1
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	defer os.RemoveAll("/etc/netns/" + ns)
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()

	c, cancel := ctx()
	ep, err := client().CreateEndpoint(c, api.EndpointCreate{Network: *network, Name: *name, Netns: ns, IP: *ip, Aliases: aliases, Service: *service})
	cancel()
	if err != nil {
		return fail(std, "run", err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client().RemoveEndpoint(c, ep.Network, ep.Name); err != nil {
			fmt.Fprintf(std.stderr, "vxnet run: removing endpoint %s: %v\n", ep.Name, err)
		}
	}()
	fmt.Fprintf(std.stderr, "vxnet run: %s on %s at %s\n", ep.Name, ep.Network, strings.Join(ep.Addresses, ","))

	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, cmdArgs...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, std.stdout, std.stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(std.stderr, "vxnet run: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()) // as a shell reports it
				}
				return ee.ExitCode()
			}
			if err != nil {
				fmt.Fprintf(std.stderr, "vxnet run: %v\n", err)
				return 1
			}
			return 0
		}
	}
}
