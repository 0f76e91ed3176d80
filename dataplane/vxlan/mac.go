package vxlan

import (
	"fmt"
	"net/netip"
)

// MAC is a 48-bit Ethernet address. It is a comparable value type, usable as
// a map key without allocation.
type MAC [MACLen]byte

// Broadcast is the all-ones Ethernet broadcast address.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// macTextLen is the length of "aa:bb:cc:dd:ee:ff".
const macTextLen = 3*MACLen - 1

const hexDigits = "0123456789abcdef"

// String returns the address in lower-case colon form, e.g.
// "02:42:0a:00:09:02".
func (m MAC) String() string {
	var buf [macTextLen]byte
	return string(m.appendText(buf[:0]))
}

// IsMulticast reports whether the group (I/G) bit is set; this includes
// Broadcast.
func (m MAC) IsMulticast() bool { return m[0]&0x01 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// AppendText appends the String form of m to b (encoding.TextAppender).
func (m MAC) AppendText(b []byte) ([]byte, error) { return m.appendText(b), nil }

// MarshalText implements encoding.TextMarshaler, so MAC values appear as
// strings in JSON.
func (m MAC) MarshalText() ([]byte, error) {
	return m.appendText(make([]byte, 0, macTextLen)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseMAC. On error
// m is left unchanged.
func (m *MAC) UnmarshalText(text []byte) error {
	v, err := ParseMAC(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func (m MAC) appendText(b []byte) []byte {
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0x0f])
	}
	return b
}

// ParseMAC parses a 48-bit address written as six two-digit hex groups
// separated consistently by ':' or '-' ("aa:bb:cc:dd:ee:ff",
// "AA-BB-CC-DD-EE-FF"). The error wraps ErrInvalidMAC and quotes s.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != macTextLen || (s[2] != ':' && s[2] != '-') {
		return MAC{}, macError(s)
	}
	sep := s[2]
	for i := range m {
		p := 3 * i
		if i > 0 && s[p-1] != sep {
			return MAC{}, macError(s)
		}
		hi, ok1 := unhex(s[p])
		lo, ok2 := unhex(s[p+1])
		if !ok1 || !ok2 {
			return MAC{}, macError(s)
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func macError(s string) error {
	return fmt.Errorf("%w %q", ErrInvalidMAC, s)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// MulticastMAC returns the Ethernet group address that an IP multicast
// address maps to: 01:00:5e followed by the low 23 bits of an IPv4 address
// (RFC 1112 §6.4), or 33:33 followed by the low 32 bits of an IPv6 address
// (RFC 2464 §7). IPv4-mapped IPv6 addresses are treated as IPv4. For any
// other address (unicast, broadcast, invalid) it returns the zero MAC;
// mapping broadcast addresses to Broadcast is the caller's job.
func MulticastMAC(ip netip.Addr) MAC {
	ip = ip.Unmap()
	if !ip.IsMulticast() {
		return MAC{}
	}
	if ip.Is4() {
		a := ip.As4()
		return MAC{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}
	}
	a := ip.As16()
	return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]}
}
