//go:build race

package dataplane

// raceEnabled: allocation counts mean nothing under the race detector;
// make test runs the allocation tests again without it.
const raceEnabled = true
