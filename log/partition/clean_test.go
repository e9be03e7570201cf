package partition

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/vfs"
)

// keyedRecord is one record of the compaction model.
type keyedRecord struct {
	offset int64
	key    string
	value  []byte // nil: tombstone
	ts     int64
}

// compactWriter appends random keyed batches and remembers every record.
type compactWriter struct {
	t       testing.TB
	l       *Log
	rng     *rand.Rand
	keys    int
	written []keyedRecord
	pid     int64
	seq     int32
}

func (w *compactWriter) appendBatch(n int, ts int64, valueSize int) {
	w.t.Helper()
	var b batch.Builder
	idempotent := w.rng.IntN(3) == 0
	if idempotent {
		b.ResetProducer(w.pid, 0, w.seq)
		w.seq += int32(n)
	} else {
		b.Reset()
	}
	base := w.l.NextOffset()
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k%04d", w.rng.IntN(w.keys))
		var value []byte
		if w.rng.IntN(10) > 0 {
			value = bytes.Repeat([]byte{byte(w.rng.IntN(256))}, w.rng.IntN(valueSize+1))
		}
		b.Append([]byte(key), value, ts+int64(i), []batch.RecordHeader{{Key: "h", Value: []byte(key)}})
		w.written = append(w.written, keyedRecord{offset: base + int64(i), key: key, value: value, ts: ts + int64(i)})
	}
	raw := append([]byte(nil), b.Finish()...)
	if codec := w.rng.IntN(5); codec != batch.CodecNone {
		c, err := compress.CompressBatch(nil, raw, codec)
		if err != nil {
			w.t.Fatal(err)
		}
		raw = c
	}
	batch.SetBaseOffset(raw, base)
	if err := w.l.Append([][]byte{raw}); err != nil {
		w.t.Fatal(err)
	}
}

// latest is the model: each key's last record.
func (w *compactWriter) latest() map[string]keyedRecord {
	m := map[string]keyedRecord{}
	for _, r := range w.written {
		m[r.key] = r
	}
	return m
}

// readRecords reads the whole log back as records, checking offsets increase.
func readRecords(t testing.TB, l *Log) []keyedRecord {
	t.Helper()
	var out []keyedRecord
	last := int64(-1)
	offset := l.StartOffset()
	for offset < l.EndOffset() {
		buf, err := l.Read(nil, offset, 1<<20, l.EndOffset(), true)
		if err != nil {
			t.Fatalf("read at %d: %v", offset, err)
		}
		if len(buf) == 0 {
			t.Fatalf("no progress at %d", offset)
		}
		err = batch.Split(buf, func(b []byte) error {
			h, records, err := compress.DecompressBatch(b, nil, 64<<20)
			if err != nil {
				return err
			}
			if _, err := batch.ValidateStored(b); err != nil {
				return err
			}
			offset = h.NextOffset()
			return batch.DecodeRecords(&h, records, func(r *batch.Record) error {
				if r.Offset <= last {
					return fmt.Errorf("offset %d after %d", r.Offset, last)
				}
				last = r.Offset
				if len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Key) {
					return fmt.Errorf("offset %d: headers %v", r.Offset, r.Headers)
				}
				var v []byte
				if r.Value != nil {
					v = append([]byte{}, r.Value...)
				}
				out = append(out, keyedRecord{offset: r.Offset, key: string(r.Key), value: v, ts: r.Timestamp})
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func directWriter(fn func() error) error { return fn() }

func cleanAll(t testing.TB, l *Log, c *clock, m *OffsetMap, retention time.Duration) []CleanStats {
	t.Helper()
	var all []CleanStats
	for i := 0; i < 100; i++ {
		st, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: m, DeleteRetention: retention, OnWriter: directWriter, ReadBufferBytes: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if !st.Ran {
			t.Logf("pass %d: %s", i, st.Skipped)
			return all
		}
		all = append(all, st)
	}
	t.Fatal("cleaning does not finish")
	return nil
}

// checkCompacted asserts the log holds every key's latest record unchanged, at most one record
// per key below the first dirty offset, and no tombstone below tombstonesGoneBelow.
func checkCompacted(t testing.TB, l *Log, w *compactWriter, tombstonesGoneBelow int64) {
	t.Helper()
	got := readRecords(t, l)
	byOffset := map[int64]keyedRecord{}
	for _, r := range got {
		byOffset[r.offset] = r
	}
	firstDirty := l.CleanerProgress().FirstDirty
	for key, want := range w.latest() {
		r, ok := byOffset[want.offset]
		if want.value == nil && want.offset < tombstonesGoneBelow {
			if ok {
				t.Fatalf("key %s: expired tombstone at %d still there", key, want.offset)
			}
			continue
		}
		if !ok {
			t.Fatalf("key %s: latest record at %d missing (first dirty %d)", key, want.offset, firstDirty)
		}
		if r.key != key || !bytes.Equal(r.value, want.value) || (r.value == nil) != (want.value == nil) || r.ts != want.ts {
			t.Fatalf("key %s: record at %d is %+v, want %+v", key, want.offset, r, want)
		}
	}
	seen := map[string]bool{}
	for _, r := range got {
		if r.offset >= firstDirty {
			continue
		}
		if seen[r.key] {
			t.Fatalf("key %s twice below the first dirty offset %d", r.key, firstDirty)
		}
		seen[r.key] = true
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mapBytes int64
	}{{"map holds all", 1 << 20}, {"map of 40 keys", 1100}} {
		t.Run(tc.name, func(t *testing.T) {
			fs, c := vfs.NewMem(), newClock()
			opts := testOptions(fs, "/p", c)
			opts.SegmentBytes = 8 << 10
			l := mustOpen(t, opts)
			w := &compactWriter{t: t, l: l, rng: rand.New(rand.NewPCG(1, 2)), keys: 200, pid: 7}
			for i := 0; i < 300; i++ {
				w.appendBatch(1+w.rng.IntN(20), c.Now().UnixMilli(), 100)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			start, end := l.StartOffset(), l.EndOffset()
			before := l.Size()
			stats := cleanAll(t, l, c, NewOffsetMap(tc.mapBytes), time.Hour)
			if len(stats) == 0 {
				t.Fatal("no pass ran")
			}
			if l.StartOffset() != start || l.EndOffset() != end {
				t.Fatalf("offsets moved: [%d, %d) -> [%d, %d)", start, end, l.StartOffset(), l.EndOffset())
			}
			if l.Size() >= before {
				t.Fatalf("size %d not below %d", l.Size(), before)
			}
			checkCompacted(t, l, w, 0)
			firstCleaned := l.CleanerProgress().FirstDirty

			// Tombstones go once delete.retention.ms has passed since they were first cleaned.
			c.Advance(2 * time.Hour)
			for i := 0; i < 3; i++ { // roll so the dirty part holds the whole written log
				w.appendBatch(1, c.Now().UnixMilli(), 10)
			}
			if err := l.roll(); err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			cleanAll(t, l, c, NewOffsetMap(tc.mapBytes), time.Hour)
			checkCompacted(t, l, w, firstCleaned)

			// A restart reads the same log (segments with gaps, the checkpoint).
			want := readRecords(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := mustOpen(t, opts)
			defer l2.Close()
			if got := readRecords(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after reopen: %d records, want %d", len(got), len(want))
			}
		})
	}
}
