package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
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
				if len(r.Headers) > 0 && (len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Key)) {
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

// keyedBatch builds one uncompressed batch at base of records key → value (nil value: tombstone).
func keyedBatch(base int64, ts int64, pid int64, seq int32, kv ...string) []byte {
	var b batch.Builder
	if pid >= 0 {
		b.ResetProducer(pid, 0, seq)
	} else {
		b.Reset()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		var v []byte
		if kv[i+1] != "<nil>" {
			v = []byte(kv[i+1])
		}
		b.Append([]byte(kv[i]), v, ts, nil)
	}
	raw := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(raw, base)
	return raw
}

func mustAppend(t *testing.T, l *Log, raw []byte) {
	t.Helper()
	if err := l.Append([][]byte{raw}); err != nil {
		t.Fatal(err)
	}
}

func TestCleanKeepsAProducersLastBatchEmpty(t *testing.T) {
	fs, c := vfs.NewMem(), newClock()
	opts := testOptions(fs, "/p", c)
	l := mustOpen(t, opts)
	defer l.Close()
	ts := c.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(0, ts, 42, 0, "a", "1", "b", "1")) // producer 42's last batch
	mustAppend(t, l, keyedBatch(2, ts, -1, 0, "a", "2", "b", "2")) // supersedes both records
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyedBatch(4, ts, -1, 0, "c", "1"))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	st, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: NewOffsetMap(1 << 20), OnWriter: directWriter,
		ProducerBatches: func() map[int64]int64 { return map[int64]int64{42: 0} }})
	if err != nil || !st.Ran {
		t.Fatal(st, err)
	}
	var headers []batch.Header
	if err := l.ScanHeaders(0, func(h batch.Header) error { headers = append(headers, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(headers) != 3 {
		t.Fatalf("%d batches, want 3: %+v", len(headers), headers)
	}
	h := headers[0]
	if h.ProducerID != 42 || h.RecordCount != 0 || h.BaseOffset != 0 || h.LastOffsetDelta != 1 || h.BaseSequence != 0 || h.Size() != batch.HeaderSize {
		t.Fatalf("producer's last batch kept as %+v", h)
	}
	// Without the producer, the emptied batch goes.
	mustAppend(t, l, keyedBatch(5, ts, -1, 0, "c", "2"))
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: NewOffsetMap(1 << 20), OnWriter: directWriter}); err != nil {
		t.Fatal(err)
	}
	headers = headers[:0]
	if err := l.ScanHeaders(0, func(h batch.Header) error { headers = append(headers, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if headers[0].ProducerID == 42 {
		t.Fatalf("an untracked producer's empty batch was kept: %+v", headers[0])
	}
}

func TestCleanHonoursLagsRatioAndHighWatermark(t *testing.T) {
	fs, c := vfs.NewMem(), newClock()
	l := mustOpen(t, testOptions(fs, "/p", c))
	defer l.Close()
	old := c.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(0, old, -1, 0, "a", "1", "a", "2"))
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	mustAppend(t, l, keyedBatch(2, c.Now().UnixMilli(), -1, 0, "a", "3"))
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyedBatch(3, c.Now().UnixMilli(), -1, 0, "b", "1"))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	m := NewOffsetMap(1 << 20)
	base := CleanOptions{Now: c.Now(), Map: m, OnWriter: directWriter, MinCleanableRatio: 0.5}

	// Younger than min.compaction.lag.ms: only the first segment is cleanable.
	o := base
	o.MinCompactionLag = 30 * time.Minute
	st, err := l.Clean(o)
	if err != nil || !st.Ran || st.EndMapped != 2 {
		t.Fatalf("min lag: %+v %v", st, err)
	}
	// The high watermark bounds what is cleaned too.
	o = base
	o.MaxOffset = 2
	if st, err = l.Clean(o); err != nil || st.Ran {
		t.Fatalf("nothing below the high watermark is dirty: %+v %v", st, err)
	}
	// Below the dirty ratio nothing runs, unless max.compaction.lag.ms is exceeded.
	o = base
	o.MinCleanableRatio = 1.1
	if st, err = l.Clean(o); err != nil || st.Ran {
		t.Fatalf("ratio: %+v %v", st, err)
	}
	o.MaxCompactionLag = 30 * time.Minute
	if st, err = l.Clean(o); err != nil || st.Ran {
		t.Fatalf("the dirty data is 0 s old, below the max lag: %+v %v", st, err)
	}
	o.Now = o.Now.Add(time.Hour)
	if st, err = l.Clean(o); err != nil || !st.Ran || st.EndMapped != 3 {
		t.Fatalf("max lag: %+v %v", st, err)
	}
	got := readRecords(t, l)
	if len(got) != 2 || got[0].key != "a" || string(got[0].value) != "3" || got[1].key != "b" {
		t.Fatalf("records %+v", got)
	}
}

func TestCleanAbortsWhenRetentionDeletesTheSegments(t *testing.T) {
	fs, c := vfs.NewMem(), newClock()
	l := mustOpen(t, testOptions(fs, "/p", c))
	defer l.Close()
	ts := c.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(0, ts, -1, 0, "a", "1", "a", "2"))
	if err := l.roll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyedBatch(2, ts, -1, 0, "a", "3"))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	onWriter := func(fn func() error) error {
		if err := l.AdvanceStartOffset(2); err != nil { // DeleteRecords just before the swap
			t.Fatal(err)
		}
		return fn()
	}
	_, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: NewOffsetMap(1 << 20), OnWriter: onWriter})
	if !errors.Is(err, ErrCleanAborted) {
		t.Fatalf("err %v, want ErrCleanAborted", err)
	}
	names, _ := fs.ReadDir("/p")
	for _, n := range names {
		if strings.HasSuffix(n, ".cleaned") {
			t.Fatalf("left %s behind", n)
		}
	}
}

// TestCleanThrottleChargesWhatIsRead: the I/O rate limit is charged the bytes a pass reads and
// writes, not its read buffer's size.
func TestCleanThrottleChargesWhatIsRead(t *testing.T) {
	fs, c := vfs.NewMem(), newClock()
	l := mustOpen(t, testOptions(fs, "/p", c))
	defer l.Close()
	ts := c.Now().UnixMilli()
	for i := 0; i < 20; i++ {
		mustAppend(t, l, keyedBatch(l.NextOffset(), ts, -1, 0, "k", strings.Repeat("v", 1000)))
		if err := l.roll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	var charged int64
	st, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: NewOffsetMap(1 << 20), OnWriter: directWriter,
		Throttle: func(n int) { charged += int64(n) }})
	if err != nil || !st.Ran {
		t.Fatal(st, err)
	}
	if io := st.BytesRead + st.BytesWritten; charged < st.BytesRead || charged > io {
		t.Fatalf("charged %d bytes for %d read and %d written", charged, st.BytesRead, st.BytesWritten)
	}
}
