// Package systemd holds vxnet's systemd unit, as `vxnet install` writes it
// and the Debian package ships it (deploy/systemd/vxnet.service).
package systemd

import (
	_ "embed"
	"strings"
)

//go:embed vxnet.service
var unit string

// DefaultBinary is where the unit runs vxnet from (the package's path).
const DefaultBinary = "/usr/bin/vxnet"

// Unit is the unit file, running the binary at bin.
func Unit(bin string) string {
	return strings.Replace(unit, "ExecStart="+DefaultBinary+" ", "ExecStart="+bin+" ", 1)
}

// Capabilities are the ones the unit gives the agent (its bounding set).
func Capabilities() []string {
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			return strings.Fields(v)
		}
	}
	return nil
}

// ExecStart is the unit's command line, with the binary at bin.
func ExecStart(bin string) []string {
	for _, line := range strings.Split(Unit(bin), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	return nil
}
