package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/plugin/cni"
)

// runCNIPlugin serves one CNI call: a runtime runs this binary, installed
// as BIN-DIR/vxnet, with CNI_COMMAND set.
func runCNIPlugin() { cni.Main() }

const cniUsage = `Usage: vxnet cni install [flags]

Installs vxnet as a CNI plugin for podman, containerd, CRI-O and the
kubelet: this binary as BIN-DIR/vxnet (runtimes run it with CNI_COMMAND set),
and a network configuration list CONF-DIR/NN-NAME.conflist for network NAME
(created in the cluster on its first use; with --subnet, of that subnet),
in place of one it wrote for NAME before under another NN. The plugin asks the local agent (at --socket, written into the
configuration) for each container's endpoint.

Examples:
  vxnet cni install --network web --subnet 10.0.9.0/24
  vxnet cni install --network dual --subnet 10.0.8.0/24 --subnet fd00:8::/64
  vxnet cni install --bin-dir /usr/lib/cni --conf-dir /etc/cni/net.d --network web

Flags:
`

const cniCommandsUsage = `Usage: vxnet cni install [flags]

Commands:
  install   install this binary as a CNI plugin and a network configuration
            for it ('vxnet cni install --help' for its flags)

Run by a runtime with CNI_COMMAND set, this binary is the plugin itself.
`

func cmdCNI(std stdio, args []string) int {
	if len(args) == 0 || args[0] != "install" {
		switch {
		case len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help"):
			fmt.Fprint(std.stdout, cniCommandsUsage)
			return 0
		case len(args) > 0:
			fmt.Fprintf(std.stderr, "vxnet cni: unknown command %q\n\n", args[0])
		}
		fmt.Fprint(std.stderr, cniCommandsUsage)
		return 2
	}
	fs := newFlags(std, "cni install", cniUsage)
	sock := fs.String("socket", socketPath, "the agent's API socket `PATH` the plugin asks (written into the configuration)")
	binDir := fs.String("bin-dir", "/opt/cni/bin", "`DIR` runtimes find CNI plugins in")
	confDir := fs.String("conf-dir", "/etc/cni/net.d", "`DIR` runtimes read network configurations from")
	network := fs.String("network", "vxnet", "the vxnet `NETWORK` (and the CNI network's name)")
	driverName := fs.String("driver", "", "the network's `DRIVER` when the plugin creates it (default overlay)")
	var subnets multiFlag
	fs.Var(&subnets, "subnet", "the network's `CIDR` when the plugin creates it; twice, an IPv4 and an IPv6 one, for a dual-stack network")
	priority := fs.Int("priority", 10, "`NN` of the file's name: runtimes that take the first configuration take the lowest")
	portmap := fs.Bool("portmap", false, "chain the standard portmap plugin after vxnet (hostPort through iptables) instead of vxnet's own published ports")
	cniVersion := fs.String("cni-version", "1.0.0", "the configuration's `VERSION`: 1.0.0 suits podman 4 and containerd 1.6/1.7, whose CNI library reads results up to it; 1.1.0 for runtimes that send GC and STATUS")
	pos, code, ok := parse(fs, args[1:])
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet cni install: unexpected argument %q\n", pos[0])
		return 2
	}
	var fams api.NetworkCreate
	if err := splitFamilies(&fams, subnets, nil, nil); err != nil {
		fmt.Fprintf(std.stderr, "vxnet cni install: %v\n", err)
		return 2
	}
	if *driverName != "" {
		if _, err := driver.Get(*driverName); err != nil {
			fmt.Fprintf(std.stderr, "vxnet cni install: --driver %q: want one of %s\n", *driverName, strings.Join(driver.Names(), ", "))
			return 2
		}
	}
	if !slices.Contains(cni.Versions.SupportedVersions(), *cniVersion) {
		fmt.Fprintf(std.stderr, "vxnet cni install: --cni-version %q: want one of %s\n", *cniVersion, strings.Join(cni.Versions.SupportedVersions(), ", "))
		return 2
	}
	plugin := map[string]any{"type": "vxnet", "network": *network, "socket": *sock,
		"capabilities": map[string]bool{"portMappings": !*portmap, "ips": true, "aliases": true, "mac": true}}
	if *driverName != "" {
		plugin["driver"] = *driverName
	}
	if fams.Subnet != "" {
		plugin["subnet"] = fams.Subnet
	}
	if fams.Subnet6 != "" {
		plugin["subnet6"] = fams.Subnet6
	}
	plugins := []any{plugin}
	if *portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	b, _ := json.MarshalIndent(map[string]any{"cniVersion": *cniVersion, "name": *network, "plugins": plugins}, "", "  ")
	// The configuration the plugin will read, checked now rather than at
	// the first container.
	first, _ := json.Marshal(plugin)
	if _, err := cni.ParseConf(first); err != nil {
		fmt.Fprintf(std.stderr, "vxnet cni install: %v\n", err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		return fail(std, "cni install", err)
	}
	if err := copyFile(self, filepath.Join(*binDir, "vxnet"), 0o755); err != nil {
		return fail(std, "cni install", err)
	}
	conf := filepath.Join(*confDir, fmt.Sprintf("%02d-%s.conflist", *priority, *network))
	if err := os.MkdirAll(*confDir, 0o755); err != nil {
		return fail(std, "cni install", err)
	}
	// Runtimes watch the directory: the file appears whole.
	tmp := filepath.Join(*confDir, "."+filepath.Base(conf)+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fail(std, "cni install", err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		os.Remove(tmp)
		return fail(std, "cni install", err)
	}
	// The same network installed before under another NN: one
	// configuration per network, so a runtime never reads the old one.
	if old, _ := filepath.Glob(filepath.Join(*confDir, "[0-9]*-"+*network+".conflist")); len(old) > 0 {
		for _, o := range old {
			if o != conf && ownConflist(o, *network) && os.Remove(o) == nil {
				fmt.Fprintf(std.stdout, "removed %s (the same network, installed before)\n", o)
			}
		}
	}
	fmt.Fprintf(std.stdout, "installed %s and %s\n", filepath.Join(*binDir, "vxnet"), conf)
	return 0
}

// ownConflist reports whether path is a configuration list of network
// whose first plugin is vxnet (one cni install wrote): NN-NAME with
// digits for NN.
func ownConflist(path, network string) bool {
	nn, rest, ok := strings.Cut(filepath.Base(path), "-")
	if !ok || rest != network+".conflist" || strings.Trim(nn, "0123456789") != "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var l struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	return json.Unmarshal(b, &l) == nil && l.Name == network && len(l.Plugins) > 0 && l.Plugins[0].Type == "vxnet"
}

// copyFile copies src to dst through a temporary file, so that a runtime
// never runs a half-written plugin.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".vxnet-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
