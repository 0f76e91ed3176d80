package hns

import "errors"

// ErrNotFound is wrapped by the errors of Client.DeleteNetwork and
// Client.DeleteEndpoint when the object does not exist (any more). Clients
// map HNS's own "not found" codes to it; Programmer takes it as success,
// since the object is gone either way.
var ErrNotFound = errors.New("hns: not found")
