//go:build !linux

package dataplane

// pollIn cannot tell on this platform: the inside loop reads one batch at
// a time.
func pollIn(int) bool { return false }
