//go:build race

package kvs

const raceEnabled = true
