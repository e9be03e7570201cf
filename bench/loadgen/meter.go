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
// that sends or polls, franz-go's promise goroutines and the watch goroutine: the counters are
// atomics, and mu guards the histograms and the first errors. Nothing on the per-record path
// allocates: the per-interval series is built by the watch goroutine, once per interval.
type meter struct {
	records atomic.Int64
	bytes   atomic.Int64
	failed  atomic.Int64

	mu          sync.Mutex
	latency     Histogram // guarded by mu: the whole run
	window      Histogram // guarded by mu: since the last sample of the series
	firstErrors []string  // guarded by mu

	// series is written by the watch goroutine only, and read once it has finished (the
	// function watch returns waits for it).
	series []Sample
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
	m.window.Record(int64(latency))
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

// watch starts the goroutine that samples the meter into the series every o.SampleInterval
// and, when o.Progress is set, writes a progress line every o.ProgressInterval. The returned
// function takes the last (partial) sample, stops the goroutine and waits for it, so the last
// progress line never lands after the summary and m.series is complete. It does not stop with
// the run's context: records acknowledged after a cancellation still belong to the series.
func (m *meter) watch(o Options, label string, start time.Time) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sampleTicker := time.NewTicker(o.SampleInterval)
		defer sampleTicker.Stop()
		var progress <-chan time.Time
		if o.Progress != nil {
			t := time.NewTicker(o.ProgressInterval)
			defer t.Stop()
			progress = t.C
		}
		lastSample := sampleState{at: start}
		lastProgress := sampleState{at: start}
		for {
			select {
			case <-quit:
				m.sample(&lastSample, start, time.Now(), o.SampleInterval)
				return
			case now := <-sampleTicker.C:
				m.sample(&lastSample, start, now, 0)
			case now := <-progress:
				m.progress(o.Progress, label, start, &lastProgress, now)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// sampleState is where the previous sample or progress line left the counters.
type sampleState struct {
	at                     time.Time
	records, bytes, failed int64
}

// sample appends the interval from last to now to the series of a run begun at start. A final interval shorter than
// a tenth of full in which nothing happened is dropped (it would only show a dip that is not
// there); full is 0 for a regular tick.
func (m *meter) sample(last *sampleState, start, now time.Time, full time.Duration) {
	records, bytes, failed := m.records.Load(), m.bytes.Load(), m.failed.Load()
	secs := now.Sub(last.at).Seconds()
	idle := records == last.records && failed == last.failed
	if secs <= 0 || full > 0 && idle && now.Sub(last.at) < full/10 {
		return
	}
	s := Sample{
		TimeSec:       now.Sub(start).Seconds(),
		Records:       records - last.records,
		Bytes:         bytes - last.bytes,
		Failed:        failed - last.failed,
		RecordsPerSec: float64(records-last.records) / secs,
		MiBPerSec:     float64(bytes-last.bytes) / secs / (1 << 20),
	}
	m.mu.Lock()
	if m.window.Count() > 0 {
		s.Latency = m.window.Count()
		s.P50Ms = nsToMs(m.window.Quantile(0.50))
		s.P99Ms = nsToMs(m.window.Quantile(0.99))
		s.MaxMs = nsToMs(m.window.Max())
		m.window.Reset()
	}
	m.mu.Unlock()
	m.series = append(m.series, s)
	*last = sampleState{at: now, records: records, bytes: bytes, failed: failed}
}

// progress writes one progress line covering the time since last.
func (m *meter) progress(w io.Writer, label string, start time.Time, last *sampleState, now time.Time) {
	records, bytes := m.records.Load(), m.bytes.Load()
	secs := now.Sub(last.at).Seconds()
	fmt.Fprintf(w, "%s %5.0fs: %10.0f records/s %8.2f MiB/s  p99 %s  (total %d, failed %d)\n",
		label, now.Sub(start).Seconds(),
		float64(records-last.records)/secs, float64(bytes-last.bytes)/secs/(1<<20),
		formatLatency(m.p99()), records, m.failed.Load())
	*last = sampleState{at: now, records: records, bytes: bytes}
}

// result freezes the meter into a Result covering elapsed from start. The watch goroutine
// must have stopped.
func (m *meter) result(mode string, o Options, kind string, start time.Time, elapsed time.Duration) *Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	hist := m.latency // a copy: the Result owns it
	r := &Result{
		Mode:        mode,
		Topic:       o.Topic,
		Start:       start,
		Records:     m.records.Load(),
		Bytes:       m.bytes.Load(),
		Failed:      m.failed.Load(),
		FirstErrors: append([]string(nil), m.firstErrors...),
		ElapsedSec:  elapsed.Seconds(),
		LatencyKind: kind,
		Latency:     m.latency.Summary(),
		Series:      m.series,
		Host:        thisHost(),
		Options:     resultOptions(mode, o),
		histogram:   &hist,
	}
	if secs := elapsed.Seconds(); secs > 0 {
		r.RecordsPerSec = float64(r.Records) / secs
		r.MiBPerSec = float64(r.Bytes) / secs / (1 << 20)
	}
	return r
}

func nsToMs(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

func formatLatency(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// isCancel reports whether err only says that the run was stopped.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
