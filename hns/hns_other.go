//go:build !windows

package hns

import (
	"errors"
	"fmt"
)

// NewHCN returns the Client of this host's HNS. HNS is Windows' only: on
// this platform the error wraps errors.ErrUnsupported.
func NewHCN() (Client, error) {
	return nil, fmt.Errorf("hns: the Host Networking Service is Windows-only: %w", errors.ErrUnsupported)
}
