//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
)

func runDataplane(context.Context, DataplaneConfig, io.Writer) ([]DataplaneSample, error) {
	return nil, errors.New("bench: the data-plane benchmark builds its testbed from Linux network namespaces; it runs on Linux only")
}
