//go:build !linux

package dns

// udpRecvLen is the largest UDP query read; longer ones are malformed.
const udpRecvLen = 1500
