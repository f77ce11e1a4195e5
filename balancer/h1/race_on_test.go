//go:build race

package h1

// raceDetector: the race detector is on. sync.Pool then drops a quarter
// of what is put into it, so pooled objects are allocated again.
const raceDetector = true
