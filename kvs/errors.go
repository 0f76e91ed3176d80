package kvs

import "errors"

var (
	// ErrNotFound: no live row for that table and key.
	ErrNotFound = errors.New("kvs: no such row")
	// ErrNotOwner: the row belongs to another node; only its owner may
	// delete it.
	ErrNotOwner = errors.New("kvs: row owned by another node")
	// ErrUnavailable: the store cannot take writes now (etcd unreachable).
	ErrUnavailable = errors.New("kvs: store unavailable")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("kvs: closed")
	// ErrMalformed: a message that does not decode. Such messages are
	// dropped and counted, never applied.
	ErrMalformed = errors.New("kvs: malformed message")
)
