//go:build race

package partition

// raceDetector reports a -race build: the largest-batch cases are left out of it (they run in one
// goroutine, so the detector has nothing to find there, and it makes 64 MiB batches take minutes).
const raceDetector = true
