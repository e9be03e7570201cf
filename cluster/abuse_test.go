package cluster

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// withRecords returns a batch whose header is that of a one-record batch from the Builder,
// claiming count records, with section (uncompressed records) compressed by codec.
func withRecords(t *testing.T, codec int, section []byte, count int32) []byte {
	t.Helper()
	var bl batch.Builder
	bl.Reset()
	bl.Append(nil, nil, testNow.UnixMilli(), nil)
	b := append([]byte(nil), bl.Finish()[:batch.HeaderSize]...)
	var err error
	if b, err = compress.Compress(codec, b, section, compress.DefaultLevel); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batch.LengthPrefix))
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	fixCRC(b)
	return b
}

// headerBomb is the records section of one record with n empty headers (key "", value null).
func headerBomb(n int) []byte {
	body := []byte{0, 0, 0, 1, 1} // attributes, timestamp delta, offset delta, null key and value
	body = binary.AppendVarint(body, int64(n))
	headers := make([]byte, 2*n)
	for i := 1; i < len(headers); i += 2 {
		headers[i] = 1 // null value
	}
	rec := binary.AppendVarint(nil, int64(len(body)+len(headers)))
	rec = append(rec, body...)
	return append(rec, headers...)
}

// valueBomb is the records section of one record whose value is n zero bytes.
func valueBomb(n int) []byte { return valueRecord(0, n) }

// valueRecord is one record with offset delta delta (under 64) and a value of n zero bytes.
func valueRecord(delta, n int) []byte {
	body := []byte{0, 0, byte(2 * delta), 1}
	body = binary.AppendVarint(body, int64(n))
	rec := binary.AppendVarint(nil, int64(len(body)+n+1))
	rec = append(rec, body...)
	rec = append(rec, make([]byte, n)...)
	return append(rec, 0) // no headers
}

// measureValidate validates b on r's scratch (the writer is idle) and reports the bytes
// allocated during the call, the heap growth it left behind after a GC, and its duration.
func measureValidate(t *testing.T, r *Replica, b []byte) (verr *errcode.Error, alloc, retained uint64, took time.Duration) {
	t.Helper()
	_ = r.validate(b, testNow.UnixMilli()) // warm the shared decoders
	var before, during, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	verr = r.validate(b, testNow.UnixMilli())
	took = time.Since(start)
	runtime.ReadMemStats(&during)
	runtime.GC()
	runtime.ReadMemStats(&after)
	alloc = during.TotalAlloc - before.TotalAlloc
	if after.HeapAlloc > before.HeapAlloc {
		retained = after.HeapAlloc - before.HeapAlloc
	}
	return verr, alloc, retained, took
}

// TestAbuseCompressedBombs: small compressed batches that expand to tens of MiB are refused
// quickly, allocating and keeping a small, fixed amount: one record with 31 million empty
// headers (62 MB decompressed, 2 KB of zstd), zeros past the 64 MiB cap, and a record whose
// value alone is past it.
func TestAbuseCompressedBombs(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/p", nil, FsyncPolicy{Mode: FsyncNever})
	cases := []struct {
		name    string
		codec   int
		section []byte
		count   int32
		want    errcode.Code
	}{
		{"zstd 31M empty headers", batch.CodecZstd, headerBomb(31_000_000), 1, errcode.InvalidRecord},
		{"zstd zeros 65 MiB", batch.CodecZstd, make([]byte, 65<<20), 1, errcode.InvalidRecord},
		{"gzip zeros 65 MiB", batch.CodecGzip, make([]byte, 65<<20), 1000, errcode.InvalidRecord},
		{"zstd value of 65 MiB", batch.CodecZstd, valueBomb(65 << 20), 1, errcode.CorruptMessage},
		{"lz4 value of 65 MiB", batch.CodecLZ4, valueBomb(65 << 20), 1, errcode.CorruptMessage},
		{"zstd count beyond 64 MiB of records", batch.CodecZstd, make([]byte, 1024), 10_000_000, errcode.InvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := withRecords(t, c.codec, c.section, c.count)
			if len(b) > 1<<20 {
				t.Fatalf("the bomb is %d bytes, not small", len(b))
			}
			verr, alloc, retained, took := measureValidate(t, r, b)
			t.Logf("%d-byte batch: %v in %v, %d bytes allocated, %d retained", len(b), verr, took, alloc, retained)
			if codeOf(verr) != c.want {
				t.Fatalf("got %v, want %v", verr, c.want)
			}
			if alloc > 2<<20 {
				t.Errorf("allocated %d bytes to refuse it, want at most 2 MiB", alloc)
			}
			if retained > 1<<20 {
				t.Errorf("heap grew by %d bytes after it, want at most 1 MiB", retained)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// TestAbuseLargeValidBatchLeavesNothing: a valid compressed batch of 40 MiB of records is
// accepted; validating it allocates little and the writer keeps nothing of it.
func TestAbuseLargeValidBatchLeavesNothing(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/p", map[string]string{"max.message.bytes": "8388608"}, FsyncPolicy{Mode: FsyncNever})
	var section []byte
	const n = 40
	for i := range n {
		section = append(section, valueRecord(i, 1<<20)...)
	}
	for _, codec := range []int{batch.CodecZstd, batch.CodecGzip, batch.CodecLZ4, batch.CodecSnappy} {
		b := withRecords(t, codec, section, n)
		verr, alloc, retained, took := measureValidate(t, r, b)
		t.Logf("codec %d: %d-byte batch of %d MiB: %v in %v, %d allocated, %d retained", codec, len(b), len(section)>>20, verr, took, alloc, retained)
		if verr != nil {
			t.Fatalf("codec %d: %v", codec, verr)
		}
		if alloc > 2<<20 {
			t.Errorf("codec %d: allocated %d bytes, want at most 2 MiB", codec, alloc)
		}
		if retained > 1<<20 {
			t.Errorf("codec %d: heap grew by %d bytes, want at most 1 MiB", codec, retained)
		}
	}
}

// onWriter runs fn on r's goroutine, which owns the producer state.
func onWriter(r *Replica, fn func()) {
	done := make(chan struct{})
	r.control <- func() { fn(); close(done) }
	<-done
}

// TestProducerNegativeSequence: an idempotent batch with a negative sequence is refused with
// INVALID_RECORD, as Kafka refuses it.
func TestProducerNegativeSequence(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/p", nil, FsyncPolicy{Mode: FsyncNever})
	if res := appendOne(t, r, idempotentBatch(3, -1, 1)); codeOf(res.Err) != errcode.InvalidRecord {
		t.Fatalf("sequence -1: %+v, want INVALID_RECORD", res)
	}
	if res := appendOne(t, r, idempotentBatch(3, 0, 1)); res.Err != nil {
		t.Fatalf("sequence 0: %+v", res)
	}
}

// clock is a settable Now for replicas.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// TestProducerExpiry: a producer idle for producer.id.expiration.ms is forgotten at the next
// periodic check (its next batch is then accepted at any sequence, as Kafka accepts an unknown
// producer's); one that keeps producing is kept.
func TestProducerExpiry(t *testing.T) {
	var c clock
	c.ms.Store(testNow.UnixMilli())
	cfg, _ := BuildTopicConfig(map[string]string{"message.timestamp.difference.max.ms": "9223372036854775807"}, DefaultDefaults)
	r := NewReplica(ReplicaOptions{Topic: "t", Log: openLog(t, vfs.NewMem(), "/p"), Config: cfg, Now: c.now,
		RetentionCheck: 5 * time.Millisecond, ProducerIDExpiration: time.Hour})
	t.Cleanup(func() { _ = r.Close() })
	for _, pid := range []int64{1, 2} {
		if res := appendOne(t, r, idempotentBatch(pid, 0, 1)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	c.advance(50 * time.Minute)
	if res := appendOne(t, r, idempotentBatch(2, 1, 1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	c.advance(20 * time.Minute) // producer 1 idle 70 min, producer 2 idle 20 min
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		var has1 bool
		onWriter(r, func() { n = r.producers.len(); has1 = r.producers.byID[1] != nil })
		if !has1 {
			if n != 1 {
				t.Fatalf("%d producers left, want producer 2 only", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("producer 1 never expired")
		}
		time.Sleep(5 * time.Millisecond) // the periodic check runs every 5 ms
	}
	if res := appendOne(t, r, idempotentBatch(1, 40, 1)); res.Err != nil {
		t.Fatalf("expired producer's next batch: %+v, want it accepted", res)
	}
	if res := appendOne(t, r, idempotentBatch(2, 7, 1)); codeOf(res.Err) != errcode.OutOfOrderSequenceNumber {
		t.Fatalf("live producer's gap: %+v, want OUT_OF_ORDER_SEQUENCE_NUMBER", res)
	}
}

// TestProducerCap: a partition tracks at most MaxProducers producer ids. A new id beyond that
// is refused with a retriable error while every tracked producer is recently active, and takes
// the least recently active one's place once that one has been idle long enough; the snapshot
// follows the bound.
func TestProducerCap(t *testing.T) {
	var c clock
	c.ms.Store(testNow.UnixMilli())
	cfg, _ := BuildTopicConfig(map[string]string{"message.timestamp.difference.max.ms": "9223372036854775807"}, DefaultDefaults)
	fs := vfs.NewMem()
	r := NewReplica(ReplicaOptions{Topic: "t", Log: openLog(t, fs, "/p"), Config: cfg, Now: c.now, MaxProducers: 100})
	for pid := range int64(100) {
		if res := appendOne(t, r, idempotentBatch(pid, 0, 1)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	res := appendOne(t, r, idempotentBatch(100, 0, 1))
	if codeOf(res.Err) != errcode.RequestTimedOut || !errcode.RequestTimedOut.Retryable() {
		t.Fatalf("101st producer: %+v, want the retriable REQUEST_TIMED_OUT", res)
	}
	c.advance(time.Minute)
	if res := appendOne(t, r, idempotentBatch(0, 1, 1)); res.Err != nil { // producer 0 active again
		t.Fatal(res.Err)
	}
	c.advance(producerEvictableAfter)
	for pid := int64(100); pid < 150; pid++ {
		if res := appendOne(t, r, idempotentBatch(pid, 0, 1)); res.Err != nil {
			t.Fatalf("producer %d after the others went idle: %+v", pid, res)
		}
	}
	var n int
	var has0, has1 bool
	onWriter(r, func() { n, has0, has1 = r.producers.len(), r.producers.byID[0] != nil, r.producers.byID[1] != nil })
	if n != 100 || !has0 || has1 {
		t.Fatalf("%d producers (0 kept: %v, 1 kept: %v), want 100 with the most recently active kept", n, has0, has1)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, fs, "/p")
	lines, err := l.ReadStateCheckpoint(producerSnapshotFile, 7)
	_ = l.Close()
	if err != nil || len(lines) != 1+100+1 { // the header, one batch per producer, producer 0's second
		t.Fatalf("snapshot of %d lines (%v), want 102", len(lines), err)
	}
}

// TestProducerStateBoundedAgainstInventedIDs: 200,000 producer ids invented by a client in a
// burst leave at most DefaultMaxProducers tracked, a heap and a snapshot of matching size.
func TestProducerStateBoundedAgainstInventedIDs(t *testing.T) {
	ps := newProducerStates(0, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	nowMs := testNow.UnixMilli()
	refused := 0
	h := batch.Header{ProducerEpoch: 0, BaseSequence: 0, RecordCount: 1}
	for pid := range int64(200_000) {
		h.ProducerID, h.BaseOffset = pid, pid
		if _, _, err := ps.check(&h, nowMs); err != nil {
			refused++
			continue
		}
		ps.update(&h, nowMs)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if ps.len() != DefaultMaxProducers || refused != 200_000-DefaultMaxProducers {
		t.Fatalf("%d tracked, %d refused", ps.len(), refused)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("heap grew by %d bytes for %d producers", grown, ps.len())
	}
	// Much later, new ids replace idle ones instead of growing the state.
	nowMs += producerEvictableAfter.Milliseconds()
	for pid := int64(200_000); pid < 210_000; pid++ {
		h.ProducerID = pid
		if _, _, err := ps.check(&h, nowMs); err != nil {
			t.Fatalf("producer %d: %v", pid, err)
		}
		ps.update(&h, nowMs)
	}
	if ps.len() != DefaultMaxProducers {
		t.Fatalf("%d tracked", ps.len())
	}
	if n := ps.expire(nowMs + DefaultProducerIDExpiration.Milliseconds()); n != DefaultMaxProducers || ps.len() != 0 {
		t.Fatalf("expired %d, %d left", n, ps.len())
	}
}

// TestRecordForTimestamp: ListOffsets by timestamp answers the first record at or after the
// time inside a compressed batch (timestamps out of order), walking it with bounded memory.
func TestRecordForTimestamp(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/p", nil, FsyncPolicy{Mode: FsyncAlways})
	base := testNow.UnixMilli()
	var bl batch.Builder
	bl.Reset()
	for _, d := range []int64{0, 50, 10, 70, 30} {
		bl.Append(nil, make([]byte, 1<<20), base+d, nil)
	}
	b, err := compress.CompressBatch(nil, bl.Finish(), batch.CodecZstd)
	if err != nil {
		t.Fatal(err)
	}
	if res := appendOne(t, r, b); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, c := range []struct{ ts, off, at int64 }{{base, 0, base}, {base + 5, 1, base + 50}, {base + 60, 3, base + 70}, {base + 70, 3, base + 70}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		off, at, found, err := r.RecordForTimestamp(c.ts)
		runtime.ReadMemStats(&after)
		if err != nil || !found || off != c.off || at != c.at {
			t.Fatalf("ts +%d: offset %d at +%d (found %v, %v), want %d at +%d", c.ts-base, off, at-base, found, err, c.off, c.at-base)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(b))+2<<20 {
			t.Fatalf("ts +%d: allocated %d bytes for a %d-byte batch of 5 MiB", c.ts-base, alloc, len(b))
		}
	}
	if _, _, found, _ := r.RecordForTimestamp(base + 71); found {
		t.Fatal("found a record after the last timestamp")
	}
}
