// Package cleaner runs log compaction for a broker: a few cleaner goroutines, each with its own
// bounded offset map, pick the dirtiest compacted log that is due and run one pass on it
// (partition.Log.Clean), off the event loops and off the partition writers, under one I/O rate
// limit shared by all of them.
package cleaner

import (
	"errors"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/log/partition"
)

// Target is a log the cleaner may compact: a partition of a topic.
type Target interface {
	// Name identifies the log in logs and stats ("topic-partition").
	Name() string
	// Log is the partition's log.
	Log() *partition.Log
	// CleanOptions returns the pass settings for now from the topic's current configs, with
	// OnWriter and ProducerBatches wired to the partition's writer goroutine; ok=false when the
	// topic is not compacted (now).
	CleanOptions(now time.Time) (o partition.CleanOptions, ok bool)
}

// Options configure a Cleaner. Zero values take the defaults, which are Kafka's.
type Options struct {
	Threads           int           // log.cleaner.threads; default 1
	DedupeBufferBytes int64         // log.cleaner.dedupe.buffer.size, shared by the threads; default 128 MiB
	IOBytesPerSecond  float64       // log.cleaner.io.max.bytes.per.second over all threads; <=0 unlimited
	Backoff           time.Duration // log.cleaner.backoff.ms: sleep when no log is due; default 15 s
	ReadBufferBytes   int           // bytes read at a time; default 1 MiB
	Logger            *zap.Logger
	Now               func() time.Time
}

// Defaults of Options.
const (
	DefaultThreads           = 1
	DefaultDedupeBufferBytes = 128 << 20
	DefaultBackoff           = 15 * time.Second
	DefaultReadBufferBytes   = 1 << 20
)

// Stats is what the cleaner knows of one log.
type Stats struct {
	Name       string
	Progress   partition.CleanerProgress
	Last       partition.CleanStats // the last pass that ran
	LastRun    time.Time
	Passes     int64
	LastError  string
	InProgress bool
	// Totals over every pass since the broker started.
	BytesRead      int64
	BytesWritten   int64
	RecordsRemoved int64
}

type entry struct {
	t          Target
	inProgress bool
	removed    bool
	stop       chan struct{} // closed by Remove: aborts a pass in progress
	stats      Stats
	retryAt    time.Time // after a failed pass
}

// Cleaner schedules cleaning passes. Add and Remove may be called from any goroutine.
type Cleaner struct {
	opts    Options
	logger  *zap.Logger
	limiter *limiter

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a pass ends (Remove waits for it)
	entries map[Target]*entry
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

// New starts a cleaner with its threads.
func New(o Options) *Cleaner {
	if o.Threads <= 0 {
		o.Threads = DefaultThreads
	}
	if o.DedupeBufferBytes <= 0 {
		o.DedupeBufferBytes = DefaultDedupeBufferBytes
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.ReadBufferBytes <= 0 {
		o.ReadBufferBytes = DefaultReadBufferBytes
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cleaner{
		opts:    o,
		logger:  o.Logger,
		entries: map[Target]*entry{},
		wake:    make(chan struct{}, o.Threads),
		stop:    make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	c.limiter = newLimiter(o.IOBytesPerSecond, c.stop)
	for i := 0; i < o.Threads; i++ {
		c.wg.Add(1)
		go c.run(partition.NewOffsetMap(o.DedupeBufferBytes / int64(o.Threads)))
	}
	return c
}

// Add makes t a candidate for cleaning.
func (c *Cleaner) Add(t Target) {
	c.mu.Lock()
	if _, ok := c.entries[t]; !ok && !c.closed {
		c.entries[t] = &entry{t: t, stop: make(chan struct{}), stats: Stats{Name: t.Name()}}
	}
	c.mu.Unlock()
}

// Remove takes t out, aborting a pass in progress on it and waiting until that pass stopped:
// afterwards the cleaner no longer touches t's log, which may be closed.
func (c *Cleaner) Remove(t Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[t]
	if !ok {
		return
	}
	if !e.removed {
		e.removed = true
		close(e.stop)
	}
	for e.inProgress {
		c.cond.Wait()
	}
	if c.entries[t] == e {
		delete(c.entries, t)
	}
}

// Wake asks the threads to look for due logs now, not at their next backoff.
func (c *Cleaner) Wake() {
	for i := 0; i < c.opts.Threads; i++ {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops the threads, aborting passes in progress (they leave the logs as they were).
func (c *Cleaner) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
}

// Stats lists what the cleaner knows of each compacted log.
func (c *Cleaner) Stats() []Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Stats, 0, len(c.entries))
	for _, e := range c.entries {
		s := e.stats
		s.InProgress = e.inProgress
		s.Progress = e.t.Log().CleanerProgress()
		out = append(out, s)
	}
	return out
}

// StatsOf returns the stats of one target.
func (c *Cleaner) StatsOf(t Target) (Stats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[t]
	if !ok {
		return Stats{}, false
	}
	s := e.stats
	s.InProgress = e.inProgress
	s.Progress = t.Log().CleanerProgress()
	return s, true
}

// run is one cleaner thread.
func (c *Cleaner) run(m *partition.OffsetMap) {
	defer c.wg.Done()
	timer := time.NewTimer(c.opts.Backoff)
	defer timer.Stop()
	for {
		e, o := c.pick()
		if e == nil {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(c.opts.Backoff)
			select {
			case <-c.stop:
				return
			case <-c.wake:
			case <-timer.C:
			}
			continue
		}
		c.clean(e, o, m)
	}
}

// pick returns the due log with the highest dirty ratio (those past max.compaction.lag.ms
// first), marked in progress, or nil. The ratios are computed outside the lock: they may read a
// batch header from disk.
func (c *Cleaner) pick() (*entry, partition.CleanOptions) {
	now := c.opts.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, partition.CleanOptions{}
	}
	candidates := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		if !e.inProgress && !e.removed && !now.Before(e.retryAt) {
			candidates = append(candidates, e)
		}
	}
	c.mu.Unlock()
	type due struct {
		e     *entry
		o     partition.CleanOptions
		ratio float64
	}
	var ranked []due
	for _, e := range candidates {
		o, ok := e.t.CleanOptions(now)
		if !ok {
			continue
		}
		o.Now = now
		ratio, isDue := e.t.Log().DirtyRatio(&o)
		if !isDue {
			continue
		}
		if o.MaxCompactionLag > 0 && ratio < o.MinCleanableRatio {
			ratio += 1 // past max.compaction.lag.ms: before any log merely dirty
		}
		ranked = append(ranked, due{e, o, ratio})
	}
	sort.Slice(ranked, func(i, j int) bool { return ranked[i].ratio > ranked[j].ratio })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range ranked {
		// Another thread may have taken it, or Remove marked it, meanwhile.
		if !d.e.inProgress && !d.e.removed && !c.closed {
			d.e.inProgress = true
			return d.e, d.o
		}
	}
	return nil, partition.CleanOptions{}
}

func (c *Cleaner) clean(e *entry, o partition.CleanOptions, m *partition.OffsetMap) {
	o.Map = m
	o.ReadBufferBytes = c.opts.ReadBufferBytes
	passDone, abort := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-e.stop:
		case <-c.stop:
		case <-passDone:
		}
		close(abort)
	}()
	o.Stop = abort
	o.Throttle = func(n int) { c.limiter.wait(n, abort) }
	stats, err := e.t.Log().Clean(o)
	close(passDone)
	c.mu.Lock()
	e.inProgress = false
	if stats.Ran {
		e.stats.Last = stats
		e.stats.LastRun = c.opts.Now()
		e.stats.Passes++
		e.stats.BytesRead += stats.BytesRead
		e.stats.BytesWritten += stats.BytesWritten
		e.stats.RecordsRemoved += stats.Removed
	}
	switch {
	case err == nil:
		e.stats.LastError = ""
	case errors.Is(err, partition.ErrCleanAborted) || errors.Is(err, partition.ErrClosed):
		// The log changed (retention, truncation, shutdown): the next pass starts over.
		e.retryAt = c.opts.Now().Add(time.Second)
	default:
		e.stats.LastError = err.Error()
		e.retryAt = c.opts.Now().Add(c.opts.Backoff * 4)
		c.logger.Warn("cleaning failed; the log is served as it is and cleaning is retried later",
			zap.String("log", e.t.Name()), zap.Error(err))
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if err == nil && stats.Ran {
		c.logger.Info("cleaned log", zap.String("log", e.t.Name()),
			zap.Float64("dirty_ratio", stats.DirtyRatio), zap.Int64("first_dirty", stats.EndMapped),
			zap.Int64("bytes_read", stats.BytesRead), zap.Int64("bytes_written", stats.BytesWritten),
			zap.Int64("records_removed", stats.Removed), zap.Int("segments", stats.SegmentsAfter),
			zap.Duration("took", stats.Duration))
	}
}

// limiter is the shared I/O rate limit: a virtual clock of when the budget is next free.
type limiter struct {
	mu   sync.Mutex
	rate float64 // bytes per second; <=0 unlimited
	next time.Time
	stop <-chan struct{}
}

func newLimiter(rate float64, stop <-chan struct{}) *limiter {
	return &limiter{rate: rate, stop: stop}
}

// wait blocks until n more bytes fit the rate, the cleaner stops or abort is closed.
func (l *limiter) wait(n int, abort <-chan struct{}) {
	if l.rate <= 0 || n <= 0 {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	case <-abort:
	}
}
