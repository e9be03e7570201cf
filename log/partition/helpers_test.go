package partition

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// clock is an injected Now for tests: it only moves when told to.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newClock() *clock { return &clock{now: time.UnixMilli(1_700_000_000_000)} }

// makeBatch builds a batch of n records at base with leader epoch epoch and record timestamps
// ts, ts+1, ...
func makeBatch(base int64, n int, epoch int32, ts int64, valueSize int) []byte {
	var b batch.Builder
	b.Reset()
	for i := 0; i < n; i++ {
		b.Append([]byte(fmt.Sprintf("key-%d", base+int64(i))), bytes.Repeat([]byte{byte(base + int64(i))}, valueSize), ts+int64(i), nil)
	}
	out := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(out, base)
	batch.SetPartitionLeaderEpoch(out, epoch)
	return out
}

func testOptions(fs vfs.FS, dir string, c *clock) Options {
	return Options{FS: fs, Dir: dir, RetentionBytes: -1, IndexIntervalBytes: 256, Now: c.Now}
}

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendN appends count batches of recordsPerBatch records, one Append each; returns them.
func appendN(t testing.TB, l *Log, count, recordsPerBatch int, epoch int32, ts int64, valueSize int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < count; i++ {
		b := makeBatch(l.NextOffset(), recordsPerBatch, epoch, ts+int64(i), valueSize)
		if err := l.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// readAll reads from offset to the end, one call per segment, and returns the bytes.
func readAll(t testing.TB, l *Log, offset int64) []byte {
	t.Helper()
	var out []byte
	for offset < l.EndOffset() {
		before := len(out)
		var err error
		out, err = l.Read(out, offset, 1<<30, l.EndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == before {
			t.Fatalf("no progress at %d", offset)
		}
		// Continue after the last batch read.
		if err := batch.Split(out[before:], func(b []byte) error {
			h, _ := batch.ParseHeader(b)
			offset = h.NextOffset()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func isOutOfRange(err error) bool { return errors.Is(err, ErrOffsetOutOfRange) }
