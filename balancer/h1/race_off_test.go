//go:build !race

package h1

// raceDetector: the race detector is on; see race_on_test.go.
const raceDetector = false
