package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// maxFirstErrors is how many distinct failures a Result keeps verbatim.
const maxFirstErrors = 5

// meter counts one run's records, bytes, failures and latencies. It is shared by the goroutine
// that sends or polls, franz-go's promise goroutines and the progress goroutine: the counters
// are atomics, and mu guards the histogram and the first errors.
type meter struct {
	records atomic.Int64
	bytes   atomic.Int64
	failed  atomic.Int64

	mu          sync.Mutex
	latency     Histogram // guarded by mu
	firstErrors []string  // guarded by mu
}

// count records a success whose latency is not sampled.
func (m *meter) count(size int) {
	m.records.Add(1)
	m.bytes.Add(int64(size))
}

func (m *meter) success(size int, latency time.Duration) {
	m.records.Add(1)
	m.bytes.Add(int64(size))
	m.mu.Lock()
	m.latency.Record(int64(latency))
	m.mu.Unlock()
}

func (m *meter) failure(err error) {
	m.failed.Add(1)
	m.mu.Lock()
	if len(m.firstErrors) < maxFirstErrors {
		m.firstErrors = append(m.firstErrors, err.Error())
	}
	m.mu.Unlock()
}

// p99 returns the 99th percentile latency so far.
func (m *meter) p99() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Duration(m.latency.Quantile(0.99))
}

// report writes a progress line to w every interval until ctx is done. It runs on its own
// goroutine; the caller waits for the returned channel to close before its summary, so the
// last progress line never lands after it.
func (m *meter) report(ctx context.Context, w io.Writer, interval time.Duration, label string, start time.Time) <-chan struct{} {
	done := make(chan struct{})
	if w == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		lastTime, lastRecords, lastBytes := start, int64(0), int64(0)
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-ticker.C:
				records, bytes := m.records.Load(), m.bytes.Load()
				secs := now.Sub(lastTime).Seconds()
				fmt.Fprintf(w, "%s %5.0fs: %10.0f records/s %8.2f MiB/s  p99 %s  (total %d, failed %d)\n",
					label, now.Sub(start).Seconds(),
					float64(records-lastRecords)/secs, float64(bytes-lastBytes)/secs/(1<<20),
					formatLatency(m.p99()), records, m.failed.Load())
				lastTime, lastRecords, lastBytes = now, records, bytes
			}
		}
	}()
	return done
}

// result freezes the meter into a Result covering elapsed.
func (m *meter) result(mode string, o Options, kind string, elapsed time.Duration) *Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &Result{
		Mode:        mode,
		Topic:       o.Topic,
		Records:     m.records.Load(),
		Bytes:       m.bytes.Load(),
		Failed:      m.failed.Load(),
		FirstErrors: append([]string(nil), m.firstErrors...),
		ElapsedSec:  elapsed.Seconds(),
		LatencyKind: kind,
		Latency:     m.latency.Summary(),
	}
	if secs := elapsed.Seconds(); secs > 0 {
		r.RecordsPerSec = float64(r.Records) / secs
		r.MiBPerSec = float64(r.Bytes) / secs / (1 << 20)
	}
	return r
}

func formatLatency(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// isCancel reports whether err only says that the run was stopped.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
