package dns

import (
	"errors"
	"strconv"
)

var (
	// ErrBadName: a name is not a valid DNS name (labels of 1-63 bytes,
	// 255 bytes in all).
	ErrBadName = errors.New("not a valid DNS name")
	// ErrUnknownNetwork: an endpoint names a network the table lacks.
	ErrUnknownNetwork = errors.New("unknown network")
	// ErrDuplicate: a network's name is another's but for case, which
	// makes them one name.
	ErrDuplicate = errors.New("another network has this name (names are case-insensitive)")
	// ErrTooLarge: a record set does not fit in one DNS message.
	ErrTooLarge = errors.New("larger than a DNS message")
	// ErrTooManyUpstreams: more than MaxUpstreams upstream servers.
	ErrTooManyUpstreams = errors.New("more than 3 upstream servers")
	// ErrNotSupported: listening inside a network namespace needs Linux.
	ErrNotSupported = errors.New("not supported on this platform")
	// ErrClosed: the server or listener was closed.
	ErrClosed = errors.New("dns server closed")
)

// FieldError says which input field held which bad value.
type FieldError struct {
	Field string // e.g. "endpoints[3].aliases[0]"
	Value string
	Err   error
}

// Error implements error.
func (e *FieldError) Error() string {
	return "dns: " + e.Field + " " + strconv.Quote(e.Value) + ": " + e.Err.Error()
}

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

func itoa(i int) string { return strconv.Itoa(i) }

var (
	errNegative = errors.New("must not be negative")
	errUDPSize  = errors.New("must be at least 512")
	errAddrPort = errors.New("needs an address and a port")
	errNoSocket = errors.New("needs a UDP and a TCP socket")
)
