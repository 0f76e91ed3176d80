package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstall_underRoot: install puts the binary, the unit (running that
// binary) and the directories under --root; --remove takes the binary and
// the unit and keeps the settings; --purge takes those too.
func TestInstall_underRoot(t *testing.T) {
	root := t.TempDir()
	code, out, errOut := runCLI("install", "--root", root, "--bin", "/opt/vx/bin/vxnet")
	if code != 0 {
		t.Fatalf("install: %d %s %s", code, out, errOut)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	if fi, err := os.Stat(at("/opt/vx/bin/vxnet")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v", fi, err)
	}
	unit, err := os.ReadFile(at("/etc/systemd/system/vxnet.service"))
	if err != nil || !strings.Contains(string(unit), "\nExecStart=/opt/vx/bin/vxnet agent --config /etc/vxnet/config.json\n") {
		t.Fatalf("unit: %v\n%s", err, unit)
	}
	if fi, err := os.Stat(at("/var/lib/vxnet")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v %v", fi, err)
	}
	if fi, err := os.Stat(at("/var/lib")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the state directory's parent: %v %v, want 0755 as any", fi, err)
	}
	os.WriteFile(at("/etc/vxnet/config.json"), []byte("{}"), 0o600)
	if code, _, e := runCLI("install", "--root", root, "--bin", "/opt/vx/bin/vxnet", "--remove"); code != 0 {
		t.Fatalf("remove: %s", e)
	}
	for _, gone := range []string{"/opt/vx/bin/vxnet", "/etc/systemd/system/vxnet.service"} {
		if _, err := os.Stat(at(gone)); !os.IsNotExist(err) {
			t.Errorf("%s after --remove: %v", gone, err)
		}
	}
	if _, err := os.Stat(at("/etc/vxnet/config.json")); err != nil {
		t.Errorf("--remove took the settings: %v", err)
	}
	if code, _, e := runCLI("install", "--root", root, "--bin", "/opt/vx/bin/vxnet", "--remove", "--purge"); code != 0 {
		t.Fatalf("purge: %s", e)
	}
	if _, err := os.Stat(at("/etc/vxnet")); !os.IsNotExist(err) {
		t.Errorf("/etc/vxnet after --purge: %v", err)
	}
	if code, _, e := runCLI("install", "--purge"); code != 2 || !strings.Contains(e, "--purge goes with --remove") {
		t.Errorf("--purge alone: %d %s", code, e)
	}
	if code, _, e := runCLI("install", "--bin", "vxnet"); code != 2 || !strings.Contains(e, "absolute") {
		t.Errorf("relative --bin: %d %s", code, e)
	}
}

// TestMan: the manual page carries every command's --help, and no troff
// request slips in from the texts.
func TestMan(t *testing.T) {
	code, out, e := runCLI("help", "--man")
	if code != 0 || !strings.HasPrefix(out, ".TH VXNET 1") {
		t.Fatalf("help --man: %d %s %.200s", code, e, out)
	}
	for _, cmd := range manPages {
		head := ".SS vxnet " + strings.Join(cmd, " ") + "\n.nf\n"
		i := strings.Index(out, head)
		if i < 0 {
			t.Errorf("no section for vxnet %s", strings.Join(cmd, " "))
			continue
		}
		if body := out[i+len(head):]; !strings.HasPrefix(body, "Usage: vxnet") {
			t.Errorf("vxnet %s: its section starts %.80q, not with its usage", strings.Join(cmd, " "), body)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, ".") && !strings.HasPrefix(line, ".TH") && !strings.HasPrefix(line, ".SH") && !strings.HasPrefix(line, ".SS") &&
			!strings.HasPrefix(line, ".nf") && !strings.HasPrefix(line, ".fi") && !strings.HasPrefix(line, ".B ") && !strings.HasPrefix(line, ".BR ") && line != ".TP" {
			t.Errorf("a text line reads as a troff request: %q", line)
		}
	}
}
