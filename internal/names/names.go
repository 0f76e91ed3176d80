// Package names holds the rules for the names vxnet takes from users: one
// check per kind of name. A name a check accepts is one every later stage
// accepts too, on every host:
//
//   - DNS: a network name is one or more labels under which its endpoints
//     resolve (NAME.NETWORK.), an endpoint name, alias or service is one
//     label; labels are 1-63 bytes of letters, digits, '-' and '_'.
//   - the replicated tables: keys NETWORK/NAME (no '/').
//   - HNS on Windows: networks vxnet-NETWORK, endpoints vxnet-NETWORK-NAME.
//   - Linux: interface names (1-15 bytes, no '/', ':' or white space).
//
// Names are ASCII. DNS compares names without regard to case, so two names
// that differ only in case are one name there: Key folds a name for
// uniqueness checks, while the name itself is kept as given.
package names

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Limits of the names.
const (
	// MaxNetwork is the longest network name (Docker's limit).
	MaxNetwork = 64
	// MaxLabel is the longest DNS label: an endpoint name, an alias, a
	// service, one dot-separated part of a network name.
	MaxLabel = 63
	// MaxIfname is the longest Linux interface name (IFNAMSIZ-1).
	MaxIfname = 15
	// MaxPortName is the longest SRV port name (RFC 6335 service names).
	MaxPortName = 15
)

// Error says which name of which kind is refused, and why.
type Error struct {
	Kind   string // "network name", "endpoint name", "alias", "service", "interface name", "port name"
	Name   string
	Reason string // what is wrong, then what is wanted
}

// Error implements error.
func (e *Error) Error() string {
	return e.Kind + " " + strconv.Quote(e.Name) + ": " + e.Reason
}

// The rules, as the errors state them.
const (
	networkRule = "want 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit, " +
		"with no empty part and no part longer than 63 characters between dots (each part is a DNS label)"
	labelRule   = "want 1-63 letters, digits or '-', starting with a letter or digit (it is a DNS name)"
	ifnameRule  = "want 1-15 characters other than '/', ':', '%' and white space, not \".\" or \"..\""
	portRule    = "want 1-15 letters, digits or '-', with a letter, not starting or ending with '-' and no \"--\" (an SRV service name, e.g. http)"
	nonASCIIMsg = "only ASCII letters are allowed"
)

// Network checks a network name: Docker's rule (1-64 letters, digits,
// '_', '.' and '-', starting with a letter or digit), and every part
// between dots a DNS label (1-63 bytes, so no "..", no trailing dot).
func Network(s string) error {
	fail := func(why string) error { return &Error{Kind: "network name", Name: s, Reason: why + "; " + networkRule} }
	if why := dottedName(s, MaxNetwork); why != "" {
		return fail(why)
	}
	for _, l := range strings.Split(s, ".") {
		switch {
		case l == "":
			return fail("an empty part between dots")
		case len(l) > MaxLabel:
			return fail(fmt.Sprintf("a part of %d characters", len(l)))
		}
	}
	return nil
}

// MaxHost is the longest host name: a DNS name's (Kubernetes node names
// are up to this long).
const MaxHost = 253

// Host checks a host's name in the cluster (--name): it is in the
// tables' keys and every host's logs, so 1-253 letters, digits, '_', '.'
// and '-', starting with a letter or digit (a DNS name, a hostname, a
// Kubernetes node name).
func Host(s string) error {
	if why := dottedName(s, MaxHost); why != "" {
		return &Error{Kind: "host name", Name: s, Reason: why + "; want 1-253 letters, digits, '_', '.' or '-', starting with a letter or digit"}
	}
	return nil
}

// dottedName says what is wrong with s as a name of at most max letters,
// digits, '_', '.' and '-', starting with a letter or digit, or "".
func dottedName(s string, max int) string {
	switch {
	case s == "":
		return "empty"
	case len(s) > max:
		return fmt.Sprintf("%d characters", len(s))
	case !isAlnum(s[0]):
		return "starts with something other than a letter or digit"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return badChar(c)
		}
	}
	return ""
}

// Endpoint checks an endpoint name: one DNS label.
func Endpoint(s string) error { return label("endpoint name", s) }

// Alias checks an endpoint's alias: one DNS label, as an endpoint name.
func Alias(s string) error { return label("alias", s) }

// Service checks a service name: one DNS label, as an endpoint name.
func Service(s string) error { return label("service", s) }

func label(kind, s string) error {
	fail := func(why string) error { return &Error{Kind: kind, Name: s, Reason: why + "; " + labelRule} }
	switch {
	case s == "":
		return fail("empty")
	case len(s) > MaxLabel:
		return fail(fmt.Sprintf("%d characters", len(s)))
	case !isAlnum(s[0]):
		return fail("starts with something other than a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return fail(badChar(c))
		}
	}
	return nil
}

// Ifname checks a Linux interface name (the device in a container's
// namespace): what the kernel's dev_valid_name accepts.
func Ifname(s string) error {
	fail := func(why string) error {
		return &Error{Kind: "interface name", Name: s, Reason: why + "; " + ifnameRule}
	}
	switch {
	case s == "":
		return fail("empty")
	case len(s) > MaxIfname:
		return fail(fmt.Sprintf("%d characters", len(s)))
	case s == "." || s == "..":
		return fail("a directory name")
	}
	for i := 0; i < len(s); i++ {
		// '%' makes the kernel read the name as a template ("eth%d").
		if c := s[i]; c == '/' || c == ':' || c == '%' || c <= ' ' || c >= 0x7f {
			return fail(badChar(c))
		}
	}
	return nil
}

// PortName checks the name of an SRV port (_NAME._tcp.SERVICE.): an RFC
// 6335 service name such as http or ldap.
func PortName(s string) error {
	fail := func(why string) error { return &Error{Kind: "port name", Name: s, Reason: why + "; " + portRule} }
	switch {
	case s == "":
		return fail("empty")
	case len(s) > MaxPortName:
		return fail(fmt.Sprintf("%d characters", len(s)))
	case s[0] == '-' || s[len(s)-1] == '-':
		return fail("starts or ends with '-'")
	case strings.Contains(s, "--"):
		return fail("has \"--\"")
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' {
			return fail(badChar(c))
		}
		letter = letter || isLetter(c)
	}
	if !letter {
		return fail("no letter")
	}
	return nil
}

// CheckEndpoint checks the names of an endpoint: its name, aliases,
// service and interface name (the last two may be empty). field names the
// one at fault, as the API spells it.
func CheckEndpoint(name string, aliases []string, service, ifname string) (field string, err error) {
	if err := Endpoint(name); err != nil {
		return "name", err
	}
	for i, al := range aliases {
		if err := Alias(al); err != nil {
			return "alias", err
		}
		if Same(al, name) {
			return "alias", &Error{Kind: "alias", Name: al, Reason: "is the endpoint's own name"}
		}
		for _, other := range aliases[:i] {
			if Same(al, other) {
				return "alias", &Error{Kind: "alias", Name: al, Reason: fmt.Sprintf("is given twice (also %q; names that differ only in case are one name in DNS)", other)}
			}
		}
	}
	if err := Service(service); service != "" && err != nil {
		return "service", err
	}
	if service != "" && Same(service, name) {
		return "service", &Error{Kind: "service", Name: service, Reason: "is the endpoint's own name: a service and its endpoints have names of their own in DNS"}
	}
	if i := slices.IndexFunc(aliases, func(al string) bool { return Same(al, service) }); service != "" && i >= 0 {
		return "service", &Error{Kind: "service", Name: service, Reason: fmt.Sprintf("is the endpoint's alias %q: a service and its endpoints have names of their own in DNS", aliases[i])}
	}
	if err := Ifname(ifname); ifname != "" && err != nil {
		return "ifname", err
	}
	return "", nil
}

// Shorten fits a name made of something longer (a container's name, a
// pod's) in one DNS label: one of more than MaxLabel characters is cut,
// and the hash of the whole added, so that two cut alike stay apart.
func Shorten(s string) string { return ShortenOf(s, s) }

// ShortenOf is Shorten with the hash of whole, the name s was made of
// (before its characters DNS lacks were replaced, so that names differing
// only in those stay apart).
func ShortenOf(s, whole string) string {
	if len(s) <= MaxLabel {
		return s
	}
	h := fmt.Sprintf("%x", sha256.Sum256([]byte(whole)))[:8]
	return strings.TrimRight(s[:MaxLabel-len(h)-1], "-") + "-" + h
}

// Key is the form of a name under which uniqueness is checked: names that
// DNS answers alike (they differ in case only) have the same key.
func Key(s string) string { return strings.ToLower(s) }

// Same reports whether a and b are one name to DNS.
func Same(a, b string) bool { return strings.EqualFold(a, b) }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAlnum(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' }

func badChar(c byte) string {
	if c >= 0x80 {
		return nonASCIIMsg
	}
	return fmt.Sprintf("has %q", rune(c))
}
