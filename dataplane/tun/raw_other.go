//go:build !linux

package tun

import (
	"errors"
	"fmt"
)

// Raw reads a TUN device directly; only on Linux.
type Raw struct{}

// NewRaw is not supported on this platform: the inside path uses
// Device.Read.
func NewRaw(Device) (*Raw, error) {
	return nil, fmt.Errorf("tun: raw reads: %w", errors.ErrUnsupported)
}

// VnetHdr reports false.
func (*Raw) VnetHdr() bool { return false }

// USO reports false.
func (*Raw) USO() bool { return false }

// ReadBatch is never called on this platform.
func (*Raw) ReadBatch([][]byte, int, []int, bool) (int, bool, error) {
	return 0, false, errors.ErrUnsupported
}

// A Lender lends ReadBatchLent its buffers; see the Linux documentation.
type Lender interface {
	// Lend returns the buffers to read into.
	Lend() (bufs [][]byte, sizes []int)
	// Unlend takes back the buffers of the last Lend, unread.
	Unlend()
}

// ReadBatchLent is never called on this platform.
func (*Raw) ReadBatchLent(Lender, int) (int, bool, error) {
	return 0, false, errors.ErrUnsupported
}

// Writer writes to a TUN device directly; only on Linux.
type Writer struct{}

// NewWriter returns a Writer whose writes fail.
func (*Raw) NewWriter() *Writer { return &Writer{} }

// Write is never called on this platform.
func (*Writer) Write([]byte) (int, error) { return 0, errors.ErrUnsupported }
