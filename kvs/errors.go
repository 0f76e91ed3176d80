package kvs

import "errors"

var (
	// ErrNotFound: no live row for that table and key.
	ErrNotFound = errors.New("kvs: no such row")
	// ErrNotOwner: the row belongs to another node; only its owner may
	// delete it.
	ErrNotOwner = errors.New("kvs: row owned by another node")
	// ErrUnavailable: the store cannot take writes now (etcd unreachable).
	// It has a method Unavailable() bool, by which an API that does not
	// know kvs can tell it from other errors.
	ErrUnavailable error = unavailableError{}
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("kvs: closed")
	// ErrMalformed: a message that does not decode. Such messages are
	// dropped and counted, never applied.
	ErrMalformed = errors.New("kvs: malformed message")
)

type unavailableError struct{}

func (unavailableError) Error() string     { return "kvs: store unavailable" }
func (unavailableError) Unavailable() bool { return true }
