//go:build !windows

package config

// restrictSecret: on Unix the file's mode (0600) does it.
func restrictSecret(string) error { return nil }
