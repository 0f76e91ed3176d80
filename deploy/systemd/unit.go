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
