package partition

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// Batch sizes that matter to the storage code and to the clients that write it.
const (
	walkerBufferBytes    = 64 << 10  // segment recovery's first read buffer
	pooledFrameBytes     = 256 << 10 // the broker's pooled request frames stop here
	franzGoMaxBatchBytes = 1_000_012 // franz-go's default ProducerBatchMaxBytes
	kafkaMaxMessageBytes = 1<<20 + 12
	maxBatchBytes        = 64 << 20 // a whole request frame
	sizesBaseTimestamp   = 1_700_000_000_000
)

// batchOfExactSize builds one valid batch of exactly size bytes at offset 0: one record padded to
// reach size, or, for the few sizes where the record's length varint changes width, a tiny first
// record and a padded second one. seed varies its content and its timestamp.
func batchOfExactSize(t testing.TB, seed int64, size int) []byte {
	t.Helper()
	var b batch.Builder
	for records := 1; records <= 2; records++ {
		value := max(size-80, 0)
		for try := 0; try < 8 && value >= 0; try++ {
			b.Reset()
			if records == 2 {
				b.Append(nil, []byte{}, sizesBaseTimestamp+seed*1000, nil)
			}
			v := make([]byte, value)
			for i := range v {
				v[i] = byte(i*13 + int(seed))
			}
			b.Append([]byte("k"), v, sizesBaseTimestamp+seed*1000, nil)
			out := b.Finish()
			if len(out) == size {
				return bytes.Clone(out)
			}
			value += size - len(out)
		}
	}
	t.Fatalf("cannot build a batch of exactly %d bytes", size)
	return nil
}

// batchMaker builds one valid batch at offset 0; the test lays batches out at their offsets.
type batchMaker func(t testing.TB, seed int64) []byte

func exactly(size int) batchMaker {
	return func(t testing.TB, seed int64) []byte { return batchOfExactSize(t, seed, size) }
}

// manyRecords is a batch of records records of valueSize bytes (0: empty values), compressed with
// codec unless it is batch.CodecNone. Random values keep a compressed batch about as large as the
// plain one; otherwise each value repeats one short word and compresses well.
func manyRecords(records, valueSize, codec int, random bool) batchMaker {
	return func(t testing.TB, seed int64) []byte {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(codec)))
		var b batch.Builder
		b.Reset()
		v := make([]byte, valueSize)
		for i := 0; i < records; i++ {
			word := fmt.Sprintf("%06x", rng.Uint32()&0xffffff)
			for j := range v {
				if random {
					v[j] = byte(rng.Uint32())
				} else {
					v[j] = word[j%len(word)]
				}
			}
			b.Append([]byte(fmt.Sprintf("%d", i)), v, sizesBaseTimestamp+seed*1000+int64(i%100), nil)
		}
		out, err := compress.CompressBatch(nil, b.Finish(), codec)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// atLeastBytes fails the test if a maker's batch is smaller than the case needs.
func atLeastBytes(minSize int, mk batchMaker) batchMaker {
	return func(t testing.TB, seed int64) []byte {
		b := mk(t, seed)
		if len(b) < minSize {
			t.Fatalf("batch of %d bytes, the case needs at least %d", len(b), minSize)
		}
		return b
	}
}

// modelSegment and logModel are the reference the log is checked against: which batches each
// segment holds, following the documented roll, truncation and retention rules.
type modelSegment struct {
	base    int64
	batches [][]byte
	size    int64
}

type logModel struct {
	segmentBytes int64
	segments     []modelSegment
	start        int64
}

func newLogModel(segmentBytes int64) *logModel {
	if segmentBytes <= 0 {
		segmentBytes = DefaultSegmentBytes
	}
	return &logModel{segmentBytes: segmentBytes, segments: []modelSegment{{base: 0}}}
}

func (m *logModel) next() int64 {
	last := m.segments[len(m.segments)-1]
	if len(last.batches) == 0 {
		return last.base
	}
	h, _ := batch.ParseHeader(last.batches[len(last.batches)-1])
	return h.NextOffset()
}

// append applies one Append call: a roll before any batch that would overflow a non-empty
// segment, as Kafka rolls.
func (m *logModel) append(group [][]byte) {
	for _, b := range group {
		if last := m.segments[len(m.segments)-1]; last.size > 0 && last.size+int64(len(b)) > m.segmentBytes {
			m.segments = append(m.segments, modelSegment{base: m.next()})
		}
		last := &m.segments[len(m.segments)-1]
		last.batches = append(slices.Clip(last.batches), b)
		last.size += int64(len(b))
	}
}

// truncate applies TruncateTo(offset): segments that start after offset go, the one holding it
// keeps its batches below offset.
func (m *logModel) truncate(offset int64) {
	i := len(m.segments) - 1
	for i > 0 && m.segments[i].base > offset {
		i--
	}
	m.segments = m.segments[:i+1]
	seg := &m.segments[i]
	kept := 0
	seg.size = 0
	for _, b := range seg.batches {
		if batch.BaseOffset(b) >= offset {
			break
		}
		kept++
		seg.size += int64(len(b))
	}
	seg.batches = slices.Clip(seg.batches[:kept])
}

// retain applies EnforceRetention: sealed segments whose largest timestamp is older than cutoff go
// first (cutoff < 0: no age limit), then more while the total exceeds maxBytes (< 0: no limit).
func (m *logModel) retain(maxBytes, cutoff int64) int {
	sealed := m.segments[:len(m.segments)-1]
	n := 0
	for cutoff >= 0 && n < len(sealed) && segmentMaxTimestamp(sealed[n]) < cutoff {
		n++
	}
	var total int64
	for _, s := range m.segments[n:] {
		total += s.size
	}
	for maxBytes >= 0 && n < len(sealed) && total > maxBytes {
		total -= sealed[n].size
		n++
	}
	m.segments = m.segments[n:]
	if n > 0 {
		m.start = max(m.start, m.segments[0].base)
	}
	return n
}

func segmentMaxTimestamp(s modelSegment) int64 {
	maxTs := int64(-1)
	for _, b := range s.batches {
		h, _ := batch.ParseHeader(b)
		maxTs = max(maxTs, h.MaxTimestamp)
	}
	return maxTs
}

func (m *logModel) batches() [][]byte {
	var out [][]byte
	for _, s := range m.segments {
		out = append(out, s.batches...)
	}
	return out
}

func (m *logModel) bases() []int64 {
	var out []int64
	for _, s := range m.segments {
		out = append(out, s.base)
	}
	return out
}

// checkLog asserts that l serves exactly what m holds: the segment list, every segment's .log byte
// for byte, a read of everything, each batch by its first and last offset, the ends, timestamp
// lookups and the latest epoch.
func checkLog(t *testing.T, fs vfs.FS, dir string, l *Log, m *logModel) {
	t.Helper()
	all := m.batches()
	want := bytes.Join(all, nil)
	if l.EndOffset() != m.next() || l.NextOffset() != m.next() || l.StartOffset() != m.start || l.Size() != int64(len(want)) {
		t.Fatalf("end %d next %d start %d size %d; want %d, %d, %d", l.EndOffset(), l.NextOffset(), l.StartOffset(), l.Size(), m.next(), m.start, len(want))
	}
	if got := l.Segments(); !slices.Equal(got, m.bases()) {
		t.Fatalf("segments %v, want %v", head(got), head(m.bases()))
	}
	for _, s := range m.segments {
		if got := readLogFile(t, fs, segment.FileName(dir, s.base, segment.LogSuffix)); !bytes.Equal(got, bytes.Join(s.batches, nil)) {
			t.Fatalf("segment %d: .log has %d bytes that differ from the %d bytes appended", s.base, len(got), s.size)
		}
	}
	if got := readAll(t, l, m.start); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes that differ from the %d appended", len(got), len(want))
	}
	end := l.EndOffset()
	for i, b := range all {
		h, _ := batch.ParseHeader(b)
		if got, err := l.Read(nil, h.BaseOffset, 1, end, true); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Read batch %d at %d (%d bytes): %d bytes, %v", i, h.BaseOffset, len(b), len(got), err)
		}
		if got, err := l.Read([]byte("dst"), h.LastOffset(), len(b), end, false); err != nil || !bytes.Equal(got, append([]byte("dst"), b...)) {
			t.Fatalf("Read batch %d by its last offset %d (%d bytes): %d bytes, %v", i, h.LastOffset(), len(b), len(got), err)
		}
	}
	if got, err := l.Read(nil, end, 1<<20, math.MaxInt64, true); err != nil || len(got) != 0 {
		t.Fatalf("Read at the end: %d bytes, %v", len(got), err)
	}
	if _, err := l.Read(nil, end+1, 1<<20, math.MaxInt64, true); !isOutOfRange(err) {
		t.Fatalf("Read past the end: %v", err)
	}
	if m.start > 0 {
		if _, err := l.Read(nil, m.start-1, 1<<20, math.MaxInt64, true); !isOutOfRange(err) {
			t.Fatalf("Read below the start: %v", err)
		}
	}
	for _, b := range all {
		h, _ := batch.ParseHeader(b)
		for _, ts := range []int64{h.MaxTimestamp, h.MaxTimestamp + 1} {
			base, maxTs, found, err := l.OffsetForTimestamp(ts)
			wantBase, wantMaxTs, wantFound := int64(0), int64(0), false
			for _, c := range all {
				if ch, _ := batch.ParseHeader(c); ch.MaxTimestamp >= ts {
					wantBase, wantMaxTs, wantFound = max(ch.BaseOffset, m.start), ch.MaxTimestamp, true
					break
				}
			}
			if err != nil || found != wantFound || base != wantBase || maxTs != wantMaxTs {
				t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v; want %d %d %v", ts, base, maxTs, found, err, wantBase, wantMaxTs, wantFound)
			}
		}
	}
	wantEpoch := int32(-1)
	if len(all) > 0 {
		h, _ := batch.ParseHeader(all[len(all)-1])
		wantEpoch = h.PartitionLeaderEpoch
	}
	if l.LatestEpoch() != wantEpoch {
		t.Fatalf("latest epoch %d, want %d", l.LatestEpoch(), wantEpoch)
	}
}

func readLogFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, size)
	if n, err := f.ReadAt(out, 0); n != len(out) {
		t.Fatalf("read %s: %d of %d bytes: %v", path, n, size, err)
	}
	return out
}

func head[E any](s []E) []E { return s[:min(len(s), 10)] }

// groupSizes is how many batches each Append call carries, in turn.
var groupSizes = []int{1, 3, 1, 2}

// appendGroups appends batches (laid out from l.NextOffset) in groups, to l and to m.
func appendGroups(t *testing.T, l *Log, m *logModel, batches [][]byte) {
	t.Helper()
	for i, g := 0, 0; i < len(batches); g++ {
		n := min(groupSizes[g%len(groupSizes)], len(batches)-i)
		group := batches[i : i+n]
		if err := l.Append(group); err != nil {
			t.Fatal(err)
		}
		m.append(group)
		i += n
	}
}

// layOutFrom patches the batches' base offsets to follow each other from next, and the leader
// epoch to rise from epoch every few batches.
func layOutFrom(t *testing.T, next int64, epoch int32, batches [][]byte) [][]byte {
	t.Helper()
	for i, b := range batches {
		batch.SetBaseOffset(b, next)
		batch.SetPartitionLeaderEpoch(b, epoch+int32(i/5))
		h, err := batch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		next = h.NextOffset()
	}
	return batches
}

type partitionSizeCase struct {
	name    string
	makes   []batchMaker
	biggest bool // run with one segment size only
}

func partitionSizeCases() []partitionSizeCase {
	cases := []partitionSizeCase{
		{name: "every-size", makes: []batchMaker{
			manyRecords(1, 0, batch.CodecNone, false), exactly(100), manyRecords(3000, 0, batch.CodecNone, false),
			exactly(segment.DefaultIndexIntervalBytes - 1), exactly(segment.DefaultIndexIntervalBytes), exactly(segment.DefaultIndexIntervalBytes + 1),
			exactly(16 << 10), manyRecords(5000, 4, batch.CodecNone, false), exactly(walkerBufferBytes - 1), exactly(walkerBufferBytes),
			exactly(walkerBufferBytes + 1), exactly(pooledFrameBytes - 1), exactly(pooledFrameBytes), exactly(pooledFrameBytes + 1),
			exactly(1 << 20), exactly(franzGoMaxBatchBytes), exactly(kafkaMaxMessageBytes), exactly(100), exactly(walkerBufferBytes + 1),
		}},
		{name: "8MiB", makes: []batchMaker{exactly(100), exactly(8 << 20), exactly(walkerBufferBytes + 1), exactly(100)}},
		{name: "64MiB", makes: []batchMaker{exactly(walkerBufferBytes + 1), exactly(maxBatchBytes), exactly(100)}, biggest: true},
	}
	for _, c := range []struct {
		name  string
		codec int
	}{{"gzip", batch.CodecGzip}, {"snappy", batch.CodecSnappy}, {"lz4", batch.CodecLZ4}, {"zstd", batch.CodecZstd}} {
		cases = append(cases, partitionSizeCase{name: "compressed-" + c.name, makes: []batchMaker{
			manyRecords(5, 40, c.codec, false),
			atLeastBytes(walkerBufferBytes+1, manyRecords(9, 8<<10, c.codec, true)),
			manyRecords(5000, 16, c.codec, false), // thousands of records
			exactly(100),
			atLeastBytes(kafkaMaxMessageBytes, manyRecords(3, 360<<10, c.codec, true)),
			atLeastBytes(pooledFrameBytes+1, manyRecords(1, 260<<10, c.codec, true)), // one big record
			manyRecords(1, 3<<20, c.codec, false),                                    // one 3 MiB record, compressed
		}})
	}
	return cases
}

// TestPartitionSizeMatrix runs the partition log's operations over batches of the sizes Kafka
// clients send (up to the 64 MiB frame limit, every codec, many tiny records and one big record),
// with the default segment size, segments of 300 KiB (some batches are larger) and segments
// smaller than any batch (every append rolls). After each operation the log must serve exactly
// what was written, byte for byte: appends across rolls, reads, Close and reopen, reopen without
// Close (a killed broker), TruncateTo, and retention by size and by age.
func TestPartitionSizeMatrix(t *testing.T) {
	segmentSizes := []struct {
		name  string
		bytes int64
	}{
		{"default-segments", 0},
		{"300KiB-segments", 300 << 10},
		{"every-append-rolls", 1},
	}
	for ci, c := range partitionSizeCases() {
		for si, ss := range segmentSizes {
			if (c.biggest || testing.Short()) && si != 1 {
				continue // -short (the race-detector pass) runs one segment size; the plain run all
			}
			t.Run(c.name+"/"+ss.name, func(t *testing.T) {
				if c.biggest && raceDetector {
					t.Skip("64 MiB batches run without -race (one goroutine: nothing for the detector)")
				}
				var batches [][]byte
				for i, mk := range c.makes {
					batches = append(batches, mk(t, int64(ci*100+i+1)))
				}
				runPartitionMatrix(t, batches, ss.bytes)
			})
		}
	}
}

func runPartitionMatrix(t *testing.T, batches [][]byte, segmentBytes int64) {
	fs := vfs.NewMem()
	dir := "/topic-0"
	c := newClock()
	opts := Options{FS: fs, Dir: dir, SegmentBytes: segmentBytes, RetentionBytes: -1, Now: c.Now}
	m := newLogModel(segmentBytes)
	batches = layOutFrom(t, 0, 0, batches)
	n := len(batches)

	// Append across rolls.
	l := mustOpen(t, opts)
	appendGroups(t, l, m, batches)
	checkLog(t, fs, dir, l, m)

	// Close and reopen.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	checkLog(t, fs, dir, l, m)

	// Reopen without Close, as after a kill: the second log must recover what the first wrote,
	// including appends it never synced. The first log is abandoned, not used again.
	extra := layOutFrom(t, l.NextOffset(), l.LatestEpoch()+1, [][]byte{batchOfExactSize(t, 77, walkerBufferBytes+1), batchOfExactSize(t, 78, 100)})
	for _, b := range extra {
		if err := l.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		m.append([][]byte{b})
	}
	l = mustOpen(t, opts)
	checkLog(t, fs, dir, l, m)

	// TruncateTo the middle, the last batch and the start; append the rest again each time.
	all := m.batches()
	for _, keep := range []int{n / 2, len(all) - 1, 0} {
		offset := batch.BaseOffset(all[keep])
		if err := l.TruncateTo(offset); err != nil {
			t.Fatalf("TruncateTo(%d): %v", offset, err)
		}
		m.truncate(offset)
		checkLog(t, fs, dir, l, m)
		appendGroups(t, l, m, all[keep:])
		checkLog(t, fs, dir, l, m)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Retention by size: keep about half the bytes.
	opts.RetentionBytes = l.Size() / 2
	l = mustOpen(t, opts)
	deleted, err := l.EnforceRetention()
	if want := m.retain(opts.RetentionBytes, -1); err != nil || deleted != want || (want == 0 && segmentBytes > 0) {
		t.Fatalf("retention by size deleted %d segments, %v; want %d (and some with small segments)", deleted, err, want)
	}
	checkLog(t, fs, dir, l, m)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Retention by age: every batch is older than an hour once the clock moves a day on.
	opts.RetentionBytes, opts.RetentionAge = -1, time.Hour
	c.Advance(24 * time.Hour)
	l = mustOpen(t, opts)
	deleted, err = l.EnforceRetention()
	if want := m.retain(-1, c.Now().Add(-time.Hour).UnixMilli()); err != nil || deleted != want || len(l.Segments()) != 1 {
		t.Fatalf("retention by age deleted %d segments, %v; want %d, leaving only the active one", deleted, err, want)
	}
	checkLog(t, fs, dir, l, m)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	checkLog(t, fs, dir, l, m)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
