//go:build !race

package gossiptest

const raceEnabled = false
