package dns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// HostResolvConf is the host's resolver configuration.
const HostResolvConf = "/etc/resolv.conf"

// ResolvConf is what vxnet uses of a resolv.conf(5) file.
type ResolvConf struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string // e.g. "ndots:0"
}

// ParseResolvConf reads a resolv.conf(5) file. Unknown keywords and
// comments are skipped; a nameserver that is not an IP address is an error
// naming its line. IPv6 zones ("fe80::1%eth0") are kept.
func ParseResolvConf(r io.Reader) (ResolvConf, error) {
	var rc ResolvConf
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				return rc, &FieldError{Field: "line " + itoa(line) + " nameserver", Value: "", Err: errAddrPort}
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return rc, &FieldError{Field: "line " + itoa(line) + " nameserver", Value: f[1], Err: err}
			}
			rc.Nameservers = append(rc.Nameservers, a)
		case "search", "domain": // the last of them wins (resolv.conf(5))
			rc.Search = append([]string(nil), f[1:]...)
		case "options":
			rc.Options = append(rc.Options, f[1:]...)
		}
	}
	return rc, sc.Err()
}

// Upstreams returns the first MaxUpstreams nameservers on port 53,
// skipping ContainerAddr's address (that would be ourselves).
func (rc ResolvConf) Upstreams() []netip.AddrPort {
	var ups []netip.AddrPort
	for _, a := range rc.Nameservers {
		if a.Unmap() == ContainerAddr.Addr() {
			continue
		}
		if ups = append(ups, netip.AddrPortFrom(a.Unmap(), 53)); len(ups) == MaxUpstreams {
			break
		}
	}
	return ups
}

// HostUpstreams reads HostResolvConf and returns its upstream servers.
func HostUpstreams() ([]netip.AddrPort, error) {
	f, err := os.Open(HostResolvConf)
	if err != nil {
		return nil, fmt.Errorf("dns: upstreams: %w", err)
	}
	defer f.Close()
	rc, err := ParseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("dns: upstreams from %s: %w", HostResolvConf, err)
	}
	return rc.Upstreams(), nil
}

// ContainerResolvConf is the resolv.conf a container gets: only the
// embedded server, with the given search domains. ndots:0 makes the
// resolver try a bare name as it is first, so `api` is one query.
func ContainerResolvConf(search []string) []byte {
	var b strings.Builder
	b.WriteString(resolvConfMark + ": the embedded DNS server answers container names and forwards the rest\n")
	fmt.Fprintf(&b, "nameserver %s\n", ContainerAddr.Addr())
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	b.WriteString("options ndots:0\n")
	return []byte(b.String())
}

// resolvConfMark starts every resolv.conf vxnet writes.
const resolvConfMark = "# written by vxnet"

// SweepNetnsResolvConfs removes the resolv.conf files vxnet wrote under
// etcNetns (/etc/netns) for namespaces runNetns (/run/netns) no longer
// has: left by an agent that lost its state, or a namespace deleted while
// its endpoint lived. Files vxnet did not write are left alone. It
// returns the namespaces cleaned.
func SweepNetnsResolvConfs(etcNetns, runNetns string) ([]string, error) {
	dirs, err := os.ReadDir(etcNetns)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dns: sweeping %s: %w", etcNetns, err)
	}
	var cleaned []string
	for _, d := range dirs {
		if _, err := os.Lstat(filepath.Join(runNetns, d.Name())); !errors.Is(err, fs.ErrNotExist) {
			continue // the namespace is there (or cannot be told)
		}
		path := filepath.Join(etcNetns, d.Name(), "resolv.conf")
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasPrefix(string(b), resolvConfMark) {
			continue
		}
		if os.Remove(path) == nil {
			os.Remove(filepath.Join(etcNetns, d.Name())) // only if empty
			cleaned = append(cleaned, d.Name())
		}
	}
	return cleaned, nil
}

// RemoveNetnsResolvConf removes the resolv.conf vxnet wrote for
// namespace name (and its /etc/netns directory, if that leaves it empty);
// a file vxnet did not write stays. It reports whether it removed one.
func RemoveNetnsResolvConf(name string) bool {
	path := NetnsResolvConfPath(name)
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), resolvConfMark) || os.Remove(path) != nil {
		return false
	}
	os.Remove(filepath.Join(NetnsConfDir, name)) // only if empty
	return true
}

// NetnsResolvConfPath is where `ip netns exec NAME` finds the resolver
// config of namespace NAME (it bind-mounts /etc/netns/NAME/* over /etc).
func NetnsResolvConfPath(name string) string {
	return filepath.Join(NetnsConfDir, name, "resolv.conf")
}

// NetnsConfDir holds the files `ip netns exec NAME` mounts over /etc, in
// NAME/.
const NetnsConfDir = "/etc/netns"

// WriteResolvConf writes ContainerResolvConf(search) to path, creating
// its directory.
func WriteResolvConf(path string, search []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("dns: resolv.conf: %w", err)
	}
	if err := os.WriteFile(path, ContainerResolvConf(search), 0o644); err != nil {
		return fmt.Errorf("dns: resolv.conf: %w", err)
	}
	return nil
}
