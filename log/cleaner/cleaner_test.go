package cleaner

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// target is a log whose writer is the test goroutine's mutex: OnWriter takes it.
type target struct {
	name    string
	l       *partition.Log
	mu      sync.Mutex // the writer
	compact bool
}

func (t *target) Name() string        { return t.name }
func (t *target) Log() *partition.Log { return t.l }
func (t *target) CleanOptions(now time.Time) (partition.CleanOptions, bool) {
	return partition.CleanOptions{
		Now:               now,
		MinCleanableRatio: 0.5,
		DeleteRetention:   time.Hour,
		SegmentBytes:      1 << 20,
		OnWriter: func(fn func() error) error {
			t.mu.Lock()
			defer t.mu.Unlock()
			return fn()
		},
	}, t.compact
}

func newTarget(t *testing.T, name string, compact bool) *target {
	t.Helper()
	l, err := partition.Open(partition.Options{FS: vfs.NewMem(), Dir: "/" + name, SegmentBytes: 4 << 10, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tg := &target{name: name, l: l, compact: compact}
	// 40 batches of 10 records over the same 10 keys: everything but the last batch is dirty
	// garbage.
	for i := 0; i < 40; i++ {
		var b batch.Builder
		b.Reset()
		for k := 0; k < 10; k++ {
			b.Append([]byte(fmt.Sprintf("key-%d", k)), make([]byte, 100), int64(i), nil)
		}
		raw := append([]byte(nil), b.Finish()...)
		batch.SetBaseOffset(raw, l.NextOffset())
		if err := l.Append([][]byte{raw}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return tg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCleanerCompactsDueLogsOnly(t *testing.T) {
	c := New(Options{Threads: 2, DedupeBufferBytes: 1 << 20, Backoff: 10 * time.Millisecond})
	defer c.Close()
	compacted := newTarget(t, "compacted", true)
	plain := newTarget(t, "plain", false)
	sizeBefore := plain.l.Size()
	c.Add(compacted)
	c.Add(plain)
	c.Wake()
	waitFor(t, "a pass on the compacted log", func() bool {
		s, _ := c.StatsOf(compacted)
		return s.Passes > 0
	})
	s, _ := c.StatsOf(compacted)
	if s.Last.Removed == 0 || s.Progress.FirstDirty == 0 || s.LastError != "" {
		t.Fatalf("stats %+v", s)
	}
	if p, _ := c.StatsOf(plain); p.Passes != 0 || plain.l.Size() != sizeBefore {
		t.Fatalf("a log without compaction was cleaned: %+v", p)
	}
	c.Remove(compacted)
	c.Remove(compacted) // twice is harmless
	if _, ok := c.StatsOf(compacted); ok {
		t.Fatal("removed target still listed")
	}
}

func TestCleanerRemoveAbortsAPassInProgress(t *testing.T) {
	// 1 KiB/s: a pass over ~60 KiB would take a minute; Remove must not wait for it.
	c := New(Options{DedupeBufferBytes: 1 << 20, Backoff: 10 * time.Millisecond, IOBytesPerSecond: 1 << 10, ReadBufferBytes: 4 << 10})
	defer c.Close()
	tg := newTarget(t, "slow", true)
	c.Add(tg)
	c.Wake()
	waitFor(t, "the pass to start", func() bool {
		s, _ := c.StatsOf(tg)
		return s.InProgress
	})
	start := time.Now()
	c.Remove(tg)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Remove took %v", d)
	}
	// The log is as it was or fully swapped group by group: every key still reads back.
	if _, err := tg.l.Read(nil, 0, 1<<20, tg.l.EndOffset(), true); err != nil {
		t.Fatal(err)
	}
}

func TestLimiter(t *testing.T) {
	stop := make(chan struct{})
	l := newLimiter(1<<20, stop) // 1 MiB/s
	start := time.Now()
	for i := 0; i < 5; i++ {
		l.wait(100<<10, nil)
	}
	// 500 KiB at 1 MiB/s: at least ~0.4 s (the first wait is free).
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("500 KiB took %v at 1 MiB/s", d)
	}
	close(stop)
	start = time.Now()
	l.wait(100<<20, nil) // would be 100 s; a stopped cleaner does not wait
	l.wait(100<<20, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("wait after stop took %v", d)
	}
}
