package kvs

import (
	"errors"
	"fmt"
)

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

// storeDownError is ErrUnavailable of the etcd store, with what failed
// and why (Error, for logs), and what a user is told (Summary).
type storeDownError struct {
	endpoints, what string
	cause           error
}

func (e *storeDownError) Error() string {
	return fmt.Sprintf("kvs: etcd store (%s): %s: %v: %v", e.endpoints, e.what, ErrUnavailable, e.cause)
}
func (e *storeDownError) Unavailable() bool    { return true }
func (e *storeDownError) Is(target error) bool { return target == ErrUnavailable }
func (e *storeDownError) Unwrap() error        { return e.cause }

// Summary is the error as a user sees it: no table or key, the store and
// the way out.
func (e *storeDownError) Summary() string {
	return fmt.Sprintf("unavailable: the cluster's tables are in etcd (%s), which does not answer (%v); changes are refused until it is back, and the containers keep running on the last tables", e.endpoints, e.cause)
}
