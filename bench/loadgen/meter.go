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

	// series is written by the watch goroutine only (under mu), and read once it has finished
	// (the function watch returns waits for it).
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
		sampler := &sampler{start: start, last: sampleState{at: start}}
		lastProgress := sampleState{at: start}
		for {
			select {
			case <-quit:
				m.sample(sampler, time.Now(), o.SampleInterval)
				return
			case now := <-sampleTicker.C:
				m.sample(sampler, now, 0)
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

// sampleState is where a sample or a progress line left the counters.
type sampleState struct {
	at                     time.Time
	records, bytes, failed int64
}

// sampler turns the meter's counters into the series of a run begun at start. It is owned by
// the watch goroutine.
type sampler struct {
	start      time.Time
	last       sampleState // the end of the last sample
	beforeLast sampleState // its start
	lastWindow Histogram   // its latencies
}

// sample appends the interval since the last sample, up to now, to the series. final is the
// full length of an interval when this is the run's last sample, 0 for a regular tick. A last
// interval shorter than a quarter of final is folded into the one before it (over a few
// milliseconds the acknowledgements of the records still in flight at the end would show as a
// spike), or dropped when nothing happened in it.
func (m *meter) sample(s *sampler, now time.Time, final time.Duration) {
	cur := sampleState{at: now, records: m.records.Load(), bytes: m.bytes.Load(), failed: m.failed.Load()}
	if !now.After(s.last.at) {
		return
	}
	short := final > 0 && now.Sub(s.last.at) < final/4
	if short && cur.records == s.last.records && cur.failed == s.last.failed {
		return
	}
	from := s.last
	m.mu.Lock()
	if short && len(m.series) > 0 {
		m.series = m.series[:len(m.series)-1]
		from = s.beforeLast
		m.window.Merge(&s.lastWindow)
	}
	secs := now.Sub(from.at).Seconds()
	sample := Sample{
		TimeSec:       now.Sub(s.start).Seconds(),
		Records:       cur.records - from.records,
		Bytes:         cur.bytes - from.bytes,
		Failed:        cur.failed - from.failed,
		RecordsPerSec: float64(cur.records-from.records) / secs,
		MiBPerSec:     float64(cur.bytes-from.bytes) / secs / (1 << 20),
	}
	if m.window.Count() > 0 {
		sample.Latency = m.window.Count()
		sample.P50Ms = nsToMs(m.window.Quantile(0.50))
		sample.P99Ms = nsToMs(m.window.Quantile(0.99))
		sample.MaxMs = nsToMs(m.window.Max())
	}
	s.lastWindow = m.window
	m.window.Reset()
	m.series = append(m.series, sample)
	m.mu.Unlock()
	s.beforeLast, s.last = from, cur
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
