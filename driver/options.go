package driver

import (
	"fmt"
	"strconv"
)

// Options every driver's networks take, besides the driver's own
// (OptionKeys) and IPAM's.
const (
	// OptMSSClamp: "true" lowers the MSS option of TCP SYNs crossing the
	// switch to what the containers' MTU carries; a number N to N (IPv4;
	// 20 less for IPv6); "false" (the default) leaves them alone.
	OptMSSClamp = "mss-clamp"
)

var commonKeys = []string{OptMSSClamp}

// Check validates a network's -o options that are not IPAM's (SplitOptions'
// own): the common ones, then the driver's. Errors name the option and
// the value.
func Check(d Driver, own map[string]string) error {
	if v, ok := own[OptMSSClamp]; ok {
		if _, err := mssClamp(v, 1500); err != nil {
			return err
		}
	}
	return d.CheckOptions(own)
}

// ClampMSS is the MSS the switch clamps TCP SYNs to on a network with
// options opts whose containers' MTU is mtu; 0 for none.
func ClampMSS(opts map[string]string, mtu int) int {
	v, ok := opts[OptMSSClamp]
	if !ok {
		return 0
	}
	mss, _ := mssClamp(v, mtu)
	return mss
}

func mssClamp(v string, mtu int) (int, error) {
	switch v {
	case "false", "":
		return 0, nil
	case "true":
		return mtu - 40, nil // IPv4 and TCP headers
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 536 || n > 65495 {
		return 0, fmt.Errorf("option %s=%q: want true (clamp to the MTU), false, or an MSS of 536-65495", OptMSSClamp, v)
	}
	return n, nil
}
