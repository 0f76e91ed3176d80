package driver

import (
	"fmt"
	"slices"
	"strconv"
)

// Options every driver's networks take, besides the driver's own
// (OptionKeys) and IPAM's.
const (
	// OptMSSClamp: "true" (or empty, as Docker's --opt mss-clamp gives it)
	// lowers the MSS option of TCP SYNs crossing the
	// switch to what the containers' MTU carries; a number N to N (IPv4;
	// 20 less for IPv6); "false" (the default) leaves them alone.
	OptMSSClamp = "mss-clamp"
	// OptEncrypted: "true" (or empty, as Docker's --opt encrypted gives
	// it) seals every datagram of the network between hosts
	// (docs/ENCRYPTION.md); "false" (the default) leaves them plain
	// VXLAN. Overlay and l2tunnel networks only.
	OptEncrypted = "encrypted"
)

var commonKeys = []string{OptMSSClamp, OptEncrypted}

// NormalizeOptions writes the empty value of the common options that take
// true (Docker's --opt KEY with no value) as the "true" it means, so that
// the network lists what it does. (A driver's own options are the
// driver's to read; the CLI and the Docker plugin send KEY alone as true.)
func NormalizeOptions(opts map[string]string) {
	for _, k := range commonKeys {
		if v, ok := opts[k]; ok && v == "" {
			opts[k] = "true"
		}
	}
}

// encryptingDrivers are the drivers whose networks may be encrypted: those
// that cross hosts over VXLAN between vxnet hosts alone.
var encryptingDrivers = []string{"overlay", "l2tunnel"}

// Check validates a network's -o options that are not IPAM's (SplitOptions'
// own): the common ones, then the driver's. Errors name the option and
// the value.
func Check(d Driver, own map[string]string) error {
	if v, ok := own[OptMSSClamp]; ok {
		if _, err := mssClamp(v, 1500); err != nil {
			return err
		}
	}
	if v, ok := own[OptEncrypted]; ok {
		on, err := encrypted(v)
		if err != nil {
			return err
		}
		if on && !slices.Contains(encryptingDrivers, d.Name()) {
			return fmt.Errorf("option %s=%q: the %s driver's networks cannot be encrypted (overlay and l2tunnel networks can)", OptEncrypted, v, d.Name())
		}
	}
	return d.CheckOptions(own)
}

// Encrypted reports whether a network with options opts is encrypted.
func Encrypted(opts map[string]string) bool {
	v, ok := opts[OptEncrypted]
	if !ok {
		return false
	}
	on, _ := encrypted(v)
	return on
}

func encrypted(v string) (bool, error) {
	switch v {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("option %s=%q: want true or false", OptEncrypted, v)
}

// ClampMSS is the MSS the switch clamps TCP SYNs to on a network with
// options opts whose containers' MTU is mtu; 0 for none. Never below 536,
// TCP's least: on a host whose MTU leaves less (--mtu under 576, or 604
// on an encrypted network) larger segments get the switch's "too big"
// answer, rather than the network being refused there.
func ClampMSS(opts map[string]string, mtu int) int {
	v, ok := opts[OptMSSClamp]
	if !ok {
		return 0
	}
	mss, _ := mssClamp(v, mtu)
	return mss
}

// minMSS is the least MSS clamped to (RFC 9293's default MSS for IPv4).
const minMSS = 536

func mssClamp(v string, mtu int) (int, error) {
	switch v {
	case "false":
		return 0, nil
	case "true", "":
		return max(mtu-40, minMSS), nil // IPv4 and TCP headers
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minMSS || n > 65495 {
		return 0, fmt.Errorf("option %s=%q: want true (clamp to the MTU), false, or an MSS of 536-65495", OptMSSClamp, v)
	}
	return n, nil
}
