//go:build !linux

package afpacket

import (
	"errors"
	"fmt"
)

// Conn is an AF_PACKET socket; only on Linux.
type Conn struct{}

// Open is not supported on this platform.
func Open(name string, promisc bool) (*Conn, error) {
	return nil, fmt.Errorf("afpacket: uplink %q: %w", name, errors.ErrUnsupported)
}

// HardwareAddr returns zero.
func (*Conn) HardwareAddr() [6]byte { return [6]byte{} }

// ReadBatch is not supported.
func (*Conn) ReadBatch([][]byte, []int, int) (int, error) { return 0, errors.ErrUnsupported }

// Writer sends frames; only on Linux.
type Writer struct{}

// NewWriter returns a Writer whose writes fail.
func (*Conn) NewWriter() *Writer { return &Writer{} }

// Write is not supported.
func (*Writer) Write([]byte) error { return errors.ErrUnsupported }

// Close does nothing.
func (*Conn) Close() error { return nil }
