//go:build !windows

package cni

const onWindows = false
