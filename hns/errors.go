package hns

import "errors"

// ErrNotFound is wrapped by the errors of Client.DeleteNetwork and
// Client.DeleteEndpoint when the object does not exist (any more). Clients
// map HNS's own "not found" codes to it; Programmer takes it as success,
// since the object is gone either way.
var ErrNotFound = errors.New("hns: not found")

// SpecError is a network or an endpoint Sync left out because what vxnet
// wants of it is invalid (Build's error, or wanted twice): the rest is
// programmed, and its HNS object, if any, is left as it is. Callers can
// tell these, which repeat until the spec changes, from HNS failing.
type SpecError struct{ Err error }

// Error implements error.
func (e *SpecError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SpecError) Unwrap() error { return e.Err }
