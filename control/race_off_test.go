//go:build !race

package control_test

// raceEnabled: this test binary runs under the race detector.
const raceEnabled = false
