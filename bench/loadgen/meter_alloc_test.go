//go:build !race

package loadgen

import (
	"errors"
	"testing"
	"time"
)

// TestMeterRecordsWithoutAllocating guards the per-record path: counting a record, measuring
// its latency (into the run's and the interval's histograms) and counting a failure once the
// first errors are kept allocate nothing. Only the sampling, once per interval, allocates.
func TestMeterRecordsWithoutAllocating(t *testing.T) {
	m := &meter{}
	err := errors.New("failed")
	for range maxFirstErrors {
		m.failure(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		m.count(100)
		m.success(100, time.Millisecond)
		m.failure(err)
	}); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}
