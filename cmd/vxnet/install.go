package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/deploy/systemd"
)

const installUsage = `Usage: vxnet install [--bin PATH] [--root DIR]
       vxnet install --remove [--purge] [--root DIR]

Installs this vxnet binary as the host's vxnet service (systemd): copies
it to --bin (/usr/local/bin/vxnet), writes the unit
/etc/systemd/system/vxnet.service running it, makes /etc/vxnet and
/var/lib/vxnet, and reloads systemd. The unit starts once the settings
exist: vxnet cluster init (first host) or vxnet cluster join (the others)
write /etc/vxnet/config.json and start it. The agent then runs as root with
five capabilities only (the unit says which and why), restarts on failure,
comes up before the container runtimes, and logs to the journal
(journalctl -u vxnet). The Debian package installs the same unit for
/usr/bin/vxnet.

--remove stops and disables the service and removes the unit and the
binary; the settings and the host's state stay unless --purge.

Flags:
`

func cmdInstall(std stdio, args []string) int {
	fs := newFlags(std, "install", installUsage)
	bin := fs.String("bin", "/usr/local/bin/vxnet", "install the binary at `PATH`")
	root := fs.String("root", "/", "install under `DIR` instead of / (packaging, tests): systemd is left alone")
	remove := fs.Bool("remove", false, "remove the service, the unit and the binary")
	purge := fs.Bool("purge", false, "with --remove: remove /etc/vxnet and /var/lib/vxnet too")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet install: unexpected argument %q\n", pos[0])
		return 2
	}
	if !filepath.IsAbs(*bin) {
		fmt.Fprintf(std.stderr, "vxnet install: --bin %q: want an absolute path\n", *bin)
		return 2
	}
	if *purge && !*remove {
		fmt.Fprintln(std.stderr, "vxnet install: --purge goes with --remove")
		return 2
	}
	live := *root == "/" && systemdRunning()
	at := func(p string) string { return filepath.Join(*root, p) }
	unitPath := at("/etc/systemd/system/vxnet.service")
	if *remove {
		if live {
			systemctl(std, "disable", "--now", "vxnet.service")
		}
		for _, p := range []string{unitPath, at(*bin)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail(std, "install --remove", err)
			}
			fmt.Fprintf(std.stdout, "removed %s\n", p)
		}
		if *purge {
			for _, p := range []string{at(defaultConfigDir()), at(config.DefaultDataDir)} {
				if err := os.RemoveAll(p); err != nil {
					return fail(std, "install --remove --purge", err)
				}
				fmt.Fprintf(std.stdout, "removed %s\n", p)
			}
		}
		if live {
			systemctl(std, "daemon-reload")
		}
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		return fail(std, "install", err)
	}
	// Through a temporary file: a running vxnet at --bin is replaced, not
	// overwritten in place.
	if same, err := filepath.EvalSymlinks(at(*bin)); err != nil || same != self {
		if err := copyFile(self, at(*bin), 0o755); err != nil {
			return fail(std, "install", err)
		}
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{at(defaultConfigDir()), 0o755}, {at(config.DefaultDataDir), 0o700}, {filepath.Dir(unitPath), 0o755}} {
		// The parents as any directory is (0755), the directory itself
		// as given: /var/lib/vxnet is 0700, not /var and /var/lib.
		if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
			return fail(std, "install", err)
		}
		if err := os.Mkdir(d.path, d.mode); err != nil && !errors.Is(err, os.ErrExist) {
			return fail(std, "install", err)
		}
	}
	if err := os.WriteFile(unitPath, []byte(systemd.Unit(*bin)), 0o644); err != nil {
		return fail(std, "install", err)
	}
	fmt.Fprintf(std.stdout, "installed %s\ninstalled %s\n", at(*bin), unitPath)
	if live {
		systemctl(std, "daemon-reload")
	}
	fmt.Fprintf(std.stdout, "\nNext, on the first host:  vxnet cluster init\n      on each other host:  vxnet cluster join --token TOKEN ADDR (the command init prints)\nboth write %s/config.json and start the service.\n", defaultConfigDir())
	return 0
}

// systemdRunning tells whether systemd manages this host.
func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	if err != nil || !fi.IsDir() {
		return false
	}
	_, err = exec.LookPath("systemctl")
	return err == nil
}

func systemctl(std stdio, args ...string) {
	if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(std.stderr, "vxnet: systemctl %s: %v %s\n", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}
