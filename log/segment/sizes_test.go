package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/vfs"
)

// Batch sizes that matter to the storage code and to the clients that write it.
const (
	pooledFrameBytes      = 256 << 10 // the broker's pooled request frames stop here
	franzGoMaxBatchBytes  = 1_000_012 // franz-go's default ProducerBatchMaxBytes
	kafkaMaxMessageBytes  = 1<<20 + 12
	sizeTestBaseTimestamp = 1_700_000_000_000
)

// makeFn builds one valid batch at base offset 0 (the matrix lays batches out and patches their
// base offsets). seed varies the content and the timestamps, so batches of one kind differ.
type makeFn func(t testing.TB, seed int64) []byte

// exact is a one-record batch of exactly size bytes.
func exact(size int) makeFn {
	return func(t testing.TB, seed int64) []byte {
		b := batchOfSize(t, seed, size)
		if len(b) != size {
			t.Fatalf("built %d bytes, want %d", len(b), size)
		}
		return b
	}
}

// zeroValues is a batch of records records with no key and a 0-byte value.
func zeroValues(records int) makeFn {
	return func(t testing.TB, seed int64) []byte {
		var b batch.Builder
		b.Reset()
		for i := 0; i < records; i++ {
			b.Append(nil, []byte{}, sizeTestBaseTimestamp+seed*1000+int64(i), nil)
		}
		return bytes.Clone(b.Finish())
	}
}

// tinyRecords is a batch of records records with 1 to 8 byte values and short keys.
func tinyRecords(records int) makeFn {
	return func(t testing.TB, seed int64) []byte {
		var b batch.Builder
		b.Reset()
		for i := 0; i < records; i++ {
			v := bytes.Repeat([]byte{byte('a' + (i+int(seed))%26)}, 1+i%8)
			b.Append([]byte(fmt.Sprintf("%d", i%100)), v, sizeTestBaseTimestamp+seed*1000+int64(i%50), nil)
		}
		return bytes.Clone(b.Finish())
	}
}

// compressedBatch is records records of valueSize bytes compressed with codec. Random values make
// the compressed batch about as large as the plain one; a repeated word (random=false) compresses
// well.
func compressedBatch(codec, records, valueSize int, random bool) makeFn {
	return func(t testing.TB, seed int64) []byte {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(codec)))
		var b batch.Builder
		b.Reset()
		v := make([]byte, valueSize)
		for i := 0; i < records; i++ {
			word := fmt.Sprintf("%08x", rng.Uint32())
			for j := range v {
				if random {
					v[j] = byte(rng.Uint32())
				} else {
					v[j] = word[j%len(word)]
				}
			}
			b.Append([]byte(fmt.Sprintf("key-%d", i)), v, sizeTestBaseTimestamp+seed*1000+int64(i), nil)
		}
		out, err := compress.CompressBatch(nil, b.Finish(), codec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := batch.Validate(out); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// atLeast checks that a maker produces a batch of at least minSize bytes: a compressed batch that
// came out small would not test what its case is named after.
func atLeast(minSize int, mk makeFn) makeFn {
	return func(t testing.TB, seed int64) []byte {
		b := mk(t, seed)
		if len(b) < minSize {
			t.Fatalf("batch of %d bytes, the case needs at least %d", len(b), minSize)
		}
		return b
	}
}

var codecNames = map[int]string{batch.CodecGzip: "gzip", batch.CodecSnappy: "snappy", batch.CodecLZ4: "lz4", batch.CodecZstd: "zstd"}

// sizeCase is one sequence of batches the matrix writes into a segment.
type sizeCase struct {
	name  string
	makes []makeFn
	big   bool // a batch of 8 MiB or more: run with one index interval only
}

func sizeCases() []sizeCase {
	everySize := []makeFn{
		zeroValues(1), exact(100), zeroValues(3000), exact(DefaultIndexIntervalBytes - 1), exact(DefaultIndexIntervalBytes),
		exact(DefaultIndexIntervalBytes + 1), exact(16 << 10), tinyRecords(5000), exact(walkerBufferBytes - 1),
		exact(walkerBufferBytes), exact(walkerBufferBytes + 1), exact(pooledFrameBytes - 1), exact(pooledFrameBytes),
		exact(pooledFrameBytes + 1), exact(1 << 20), exact(franzGoMaxBatchBytes), exact(kafkaMaxMessageBytes), exact(100),
	}
	cases := []sizeCase{
		{name: "every-size-ascending", makes: everySize},
		{name: "every-size-descending", makes: reversed(everySize)},
		{name: "around-the-index-interval", makes: []makeFn{
			exact(DefaultIndexIntervalBytes - 1), exact(200), exact(DefaultIndexIntervalBytes), exact(DefaultIndexIntervalBytes + 1),
			exact(100), exact(DefaultIndexIntervalBytes - 1), exact(DefaultIndexIntervalBytes - 1), exact(DefaultIndexIntervalBytes),
			exact(DefaultIndexIntervalBytes), exact(DefaultIndexIntervalBytes + 1),
		}},
		{name: "large-after-small", makes: []makeFn{
			exact(100), exact(walkerBufferBytes + 1), exact(100), exact(pooledFrameBytes + 1), zeroValues(1),
			exact(kafkaMaxMessageBytes), exact(walkerBufferBytes + 1), exact(walkerBufferBytes + 1),
		}},
		{name: "many-tiny-records", makes: []makeFn{tinyRecords(1), tinyRecords(2000), zeroValues(10000), tinyRecords(20000), tinyRecords(3)}},
		{name: "8MiB", makes: []makeFn{exact(100), exact(8 << 20), exact(walkerBufferBytes + 1), exact(8<<20 + 1)}, big: true},
		{name: "64MiB", makes: []makeFn{exact(100), exact(maxBatchBytes), exact(100)}, big: true},
	}
	for _, codec := range []int{batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		cases = append(cases, sizeCase{name: "compressed-" + codecNames[codec], makes: []makeFn{
			compressedBatch(codec, 3, 50, false),
			atLeast(walkerBufferBytes+1, compressedBatch(codec, 10, 7<<10, true)),
			exact(100),
			compressedBatch(codec, 5000, 20, false), // thousands of records, a small compressed batch
			atLeast(kafkaMaxMessageBytes, compressedBatch(codec, 4, 270<<10, true)),
			atLeast(pooledFrameBytes+1, compressedBatch(codec, 1, 300<<10, true)), // one big record
			compressedBatch(codec, 1, 2<<20, false),                               // one 2 MiB record, compressed small
		}})
	}
	return cases
}

// laidOut is a sequence of batches placed at contiguous offsets from base, with each batch's
// position, as a reference the segment is checked against.
type laidOut struct {
	base    int64
	batches [][]byte
	headers []batch.Header
	pos     []int64
	size    int64
}

func layOut(t testing.TB, base int64, batches [][]byte) laidOut {
	t.Helper()
	m := laidOut{base: base}
	next := base
	for _, b := range batches {
		batch.SetBaseOffset(b, next)
		h, err := batch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		m.batches = append(m.batches, b)
		m.headers = append(m.headers, h)
		m.pos = append(m.pos, m.size)
		m.size += int64(len(b))
		next = h.NextOffset()
	}
	return m
}

// prefix is the reference for the first n batches.
func (m laidOut) prefix(n int) laidOut {
	p := laidOut{base: m.base, batches: m.batches[:n], headers: m.headers[:n], pos: m.pos[:n]}
	if n < len(m.batches) {
		p.size = m.pos[n]
	} else {
		p.size = m.size
	}
	return p
}

func (m laidOut) nextOffset() int64 {
	if len(m.headers) == 0 {
		return m.base
	}
	return m.headers[len(m.headers)-1].NextOffset()
}

func (m laidOut) maxTimestamp() int64 {
	maxTs := int64(-1)
	for _, h := range m.headers {
		maxTs = max(maxTs, h.MaxTimestamp)
	}
	return maxTs
}

func (m laidOut) content() []byte { return bytes.Join(m.batches, nil) }

// indexes computes the documented sparse-index rule from the batch sizes alone: an .index entry for
// a batch once at least interval bytes were written since the previous entry (never for the first
// batch), and a .timeindex entry beside it when the largest timestamp so far grew.
func (m laidOut) indexes(interval int64) ([]IndexEntry, []TimeIndexEntry) {
	var index []IndexEntry
	var timeIndex []TimeIndexEntry
	since, maxTs, maxTsOffset, lastTimeEntry := int64(0), int64(-1), int64(0), int64(-1)
	for i, h := range m.headers {
		if h.MaxTimestamp > maxTs {
			maxTs, maxTsOffset = h.MaxTimestamp, h.BaseOffset
		}
		if since >= interval {
			index = append(index, IndexEntry{RelativeOffset: uint32(h.BaseOffset - m.base), Position: uint32(m.pos[i])})
			if maxTs > lastTimeEntry {
				timeIndex = append(timeIndex, TimeIndexEntry{Timestamp: maxTs, RelativeOffset: uint32(maxTsOffset - m.base)})
				lastTimeEntry = maxTs
			}
			since = 0
		}
		since += int64(h.Size())
	}
	return index, timeIndex
}

// findTimestamp is the reference answer of FindTimestamp: the first batch whose maxTimestamp >= ts.
func (m laidOut) findTimestamp(ts int64) (baseOffset, maxTimestamp int64, found bool) {
	for _, h := range m.headers {
		if h.MaxTimestamp >= ts {
			return h.BaseOffset, h.MaxTimestamp, true
		}
	}
	return 0, 0, false
}

func encodeIndex(entries []IndexEntry) []byte {
	var out []byte
	for _, e := range entries {
		out = AppendIndexEntry(out, e)
	}
	return out
}

func encodeTimeIndex(entries []TimeIndexEntry) []byte {
	var out []byte
	for _, e := range entries {
		out = AppendTimeIndexEntry(out, e)
	}
	return out
}

// timeIndexCheck says how exactly the time index must match the reference.
type timeIndexCheck int

const (
	timeIndexExact timeIndexCheck = iota
	// After TruncateTo the time index keeps every entry naming a batch below the cut, which may
	// include the entry added beside an .index entry that went: allow that one extra entry.
	timeIndexAfterTruncate
)

// checkSegment asserts that s holds exactly m: the .log byte for byte, both indexes in memory and
// on disk, and the answers of Read, Find, FindTimestamp, Scan and Verify.
func checkSegment(t *testing.T, fs vfs.FS, dir string, s *Segment, m laidOut, interval int64, tic timeIndexCheck) {
	t.Helper()
	want := m.content()
	if s.Size() != m.size || s.NextOffset() != m.nextOffset() || s.MaxTimestamp() != m.maxTimestamp() {
		t.Fatalf("size %d next %d max ts %d; want %d %d %d", s.Size(), s.NextOffset(), s.MaxTimestamp(), m.size, m.nextOffset(), m.maxTimestamp())
	}
	logPath := FileName(dir, m.base, LogSuffix)
	if got := readFile(t, fs, logPath); !bytes.Equal(got, want) {
		t.Fatalf(".log holds %d bytes that differ from the %d appended", len(got), len(want))
	}

	wantIndex, wantTime := m.indexes(interval)
	if got := s.IndexEntries(); !slices.Equal(got, wantIndex) {
		t.Fatalf("index has %d entries %v, want %d %v", len(got), head(got), len(wantIndex), head(wantIndex))
	}
	if got := readFile(t, fs, FileName(dir, m.base, IndexSuffix)); !bytes.Equal(got, encodeIndex(wantIndex)) {
		t.Fatalf(".index file (%d bytes) differs from its %d entries", len(got), len(wantIndex))
	}
	gotTime := s.TimeIndexEntries()
	switch tic {
	case timeIndexExact:
		if !slices.Equal(gotTime, wantTime) {
			t.Fatalf("time index %v, want %v", head(gotTime), head(wantTime))
		}
		if got := readFile(t, fs, FileName(dir, m.base, TimeIndexSuffix)); !bytes.Equal(got, encodeTimeIndex(wantTime)) {
			t.Fatalf(".timeindex file (%d bytes) differs from its %d entries", len(got), len(wantTime))
		}
	case timeIndexAfterTruncate:
		if len(gotTime) < len(wantTime) || len(gotTime) > len(wantTime)+1 || !slices.Equal(gotTime[:len(wantTime)], wantTime) {
			t.Fatalf("time index %v, want %v and at most one more", head(gotTime), head(wantTime))
		}
		if len(gotTime) > len(wantTime) {
			extra := gotTime[len(gotTime)-1]
			i := slices.IndexFunc(m.headers, func(h batch.Header) bool { return h.BaseOffset == m.base+int64(extra.RelativeOffset) })
			if i < 0 || m.headers[i].MaxTimestamp != extra.Timestamp || extra.Timestamp != m.maxTimestamp() {
				t.Fatalf("extra time index entry %+v names no batch with that largest timestamp", extra)
			}
		}
	}

	// Find: every batch by its first, last and a middle offset; the ends are outside.
	for i, h := range m.headers {
		for _, off := range []int64{h.BaseOffset, h.BaseOffset + int64(h.LastOffsetDelta)/2, h.LastOffset()} {
			pos, base, err := s.Find(off)
			if err != nil || pos != m.pos[i] || base != h.BaseOffset {
				t.Fatalf("Find(%d) = %d, %d, %v; want batch %d at %d", off, pos, base, err, h.BaseOffset, m.pos[i])
			}
		}
	}
	for _, off := range []int64{m.base - 1, m.nextOffset(), m.nextOffset() + 1} {
		if _, _, err := s.Find(off); !errors.Is(err, ErrNotInSegment) {
			t.Fatalf("Find(%d) outside [%d, %d): %v", off, m.base, m.nextOffset(), err)
		}
	}

	// Read: everything at once, and each batch alone under every limit that should give it.
	if len(want) > 0 {
		got, err := s.Read([]byte("dst"), m.base, len(want), math.MaxInt64, false)
		if err != nil || !bytes.Equal(got, append([]byte("dst"), want...)) {
			t.Fatalf("Read of the whole segment: %d bytes, %v", len(got), err)
		}
	}
	for i, h := range m.headers {
		b := m.batches[i]
		if len(b) > hugeBatchBytes {
			// Each read below copies the whole batch: two are enough for the largest ones.
			if got, err := s.Read(nil, h.BaseOffset, 1, math.MaxInt64, true); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Read batch %d (%d bytes): %d bytes, %v", i, len(b), len(got), err)
			}
			if got, err := s.Read(nil, h.BaseOffset, len(b)-1, math.MaxInt64, false); err != nil || len(got) != 0 {
				t.Fatalf("Read batch %d (%d bytes) one byte short: %d bytes, %v", i, len(b), len(got), err)
			}
			continue
		}
		reads := []struct {
			name      string
			offset    int64
			maxBytes  int
			maxOffset int64
			minOne    bool
			want      []byte
		}{
			{"min one", h.BaseOffset, 1, math.MaxInt64, true, b},
			{"exact max bytes, last offset", h.LastOffset(), len(b), math.MaxInt64, false, b},
			{"one byte short", h.BaseOffset, len(b) - 1, math.MaxInt64, false, nil},
			{"stop at the next batch", h.BaseOffset, int(m.size - m.pos[i]), h.NextOffset(), false, b},
			{"stop at this batch", h.BaseOffset, int(m.size - m.pos[i]), h.BaseOffset, true, nil},
		}
		if i+1 < len(m.batches) {
			reads = append(reads, struct {
				name      string
				offset    int64
				maxBytes  int
				maxOffset int64
				minOne    bool
				want      []byte
			}{"next batch does not fit", h.BaseOffset, len(b) + len(m.batches[i+1]) - 1, math.MaxInt64, true, b})
		}
		for _, r := range reads {
			got, err := s.Read(nil, r.offset, r.maxBytes, r.maxOffset, r.minOne)
			if err != nil || !bytes.Equal(got, r.want) {
				t.Fatalf("Read batch %d (%d bytes) %s: %d bytes, %v; want %d", i, len(b), r.name, len(got), err, len(r.want))
			}
		}
	}

	// FindTimestamp: each batch's largest timestamp, just below it, and past both ends.
	queries := []int64{math.MinInt64, -1, m.maxTimestamp() + 1}
	for _, h := range m.headers {
		queries = append(queries, h.MaxTimestamp, h.MaxTimestamp-1, h.BaseTimestamp)
	}
	for _, ts := range queries {
		base, maxTs, found, err := s.FindTimestamp(ts)
		wantBase, wantMaxTs, wantFound := m.findTimestamp(ts)
		if err != nil || found != wantFound || base != wantBase || maxTs != wantMaxTs {
			t.Fatalf("FindTimestamp(%d) = %d %d %v %v; want %d %d %v", ts, base, maxTs, found, err, wantBase, wantMaxTs, wantFound)
		}
	}

	checkScanAndVerify(t, fs, logPath, m, -1, nil)
}

// checkScanAndVerify checks what Scan and Verify report for the .log at path: the batches of m,
// then (when badPos >= 0) a bad batch at badPos whose reason wraps reason.
func checkScanAndVerify(t *testing.T, fs vfs.FS, path string, m laidOut, badPos int64, reason error) {
	t.Helper()
	n, gotBad := 0, int64(-1)
	err := Scan(fs, path, func(pos int64, h batch.Header, err error) error {
		if err != nil {
			if !errors.Is(err, reason) {
				t.Errorf("Scan: bad batch at %d: %v, want %v", pos, err, reason)
			}
			gotBad = pos
			return nil
		}
		if n >= len(m.headers) || pos != m.pos[n] || h != m.headers[n] {
			t.Errorf("Scan: batch %d at %d %+v unexpected", n, pos, h)
			return errors.New("stop")
		}
		n++
		return nil
	})
	if err != nil || n != len(m.headers) || gotBad != badPos {
		t.Fatalf("Scan: %d batches, bad at %d, %v; want %d, bad at %d", n, gotBad, err, len(m.headers), badPos)
	}
	res, err := Verify(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	wantNext := int64(-1)
	if len(m.headers) > 0 {
		wantNext = m.nextOffset()
	}
	if res.Batches != len(m.headers) || res.ValidBytes != m.size || res.NextOffset != wantNext || res.BadPosition != badPos || !errors.Is(res.Reason, reason) {
		t.Fatalf("Verify: %+v; want %d batches, %d bytes, next %d, bad at %d", res, len(m.headers), m.size, wantNext, badPos)
	}
}

// hugeBatchBytes: checkSegment reads batches larger than this fewer ways, to keep the run short.
const hugeBatchBytes = 8 << 20

// head abbreviates a long index for a failure message.
func head[E any](entries []E) []E { return entries[:min(len(entries), 8)] }

func appendAll(t *testing.T, s *Segment, batches [][]byte, oneCall bool) {
	t.Helper()
	if oneCall {
		if err := s.Append(batches); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, b := range batches {
		if err := s.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSegmentSizeMatrix runs every segment operation over batches of the sizes real clients send:
// empty values, the index interval's edges, the walker's 64 KiB buffer, the broker's pooled-frame
// boundary, Kafka's and franz-go's largest batches, 8 MiB and the 64 MiB frame limit; many tiny
// records and one big record; every codec. After each operation the segment must hold exactly
// the batches written, byte for byte.
func TestSegmentSizeMatrix(t *testing.T) {
	type variant struct {
		name     string
		base     int64
		interval int
		oneCall  bool // all batches in one Append (one Writev)
	}
	variants := []variant{
		{"default-interval", 0, 0, false},
		{"interval-1-one-append", 5_000_000_000, 1, true},
	}
	for ci, c := range sizeCases() {
		for vi, v := range variants {
			if c.big && vi > 0 {
				continue // the biggest batches run once, to keep the run short
			}
			if testing.Short() && (c.big || vi > 0) {
				continue // -short (the race-detector pass): the plain run covers these
			}
			t.Run(c.name+"/"+v.name, func(t *testing.T) {
				if c.big && raceDetector {
					t.Skip("batches of 8 MiB and more run without -race (one goroutine: nothing for the detector)")
				}
				var batches [][]byte
				for i, mk := range c.makes {
					seed := int64(ci*100 + i + 1)
					if c.name == "every-size-descending" {
						seed = int64(ci*100 + len(c.makes) - i) // timestamps go down
					}
					batches = append(batches, mk(t, seed))
				}
				runSegmentMatrix(t, layOut(t, v.base, batches), v.interval, v.oneCall)
			})
		}
	}
}

func runSegmentMatrix(t *testing.T, m laidOut, intervalOpt int, oneCall bool) {
	fs := vfs.NewMem()
	dir := "/p"
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{IndexIntervalBytes: intervalOpt}
	interval := opts.interval()
	n := len(m.batches)

	// Append.
	s, err := Create(fs, dir, m.base, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, m.batches, oneCall)
	checkSegment(t, fs, dir, s, m, interval, timeIndexExact)

	// TruncateTo: inside a batch is refused; at a boundary keeps the prefix; appending the rest
	// again gives the same segment; truncating to the base empties it.
	for i, h := range m.headers {
		if h.LastOffsetDelta > 0 {
			if err := s.TruncateTo(h.BaseOffset + 1); !errors.Is(err, ErrNotBoundary) {
				t.Fatalf("TruncateTo inside batch %d: %v", i, err)
			}
			break
		}
	}
	for _, keep := range []int{n / 2, n - 1, 0} {
		if err := s.TruncateTo(m.prefix(keep).nextOffset()); err != nil {
			t.Fatalf("TruncateTo keeping %d batches: %v", keep, err)
		}
		checkSegment(t, fs, dir, s, m.prefix(keep), interval, timeIndexAfterTruncate)
		appendAll(t, s, m.batches[keep:], oneCall)
		checkSegment(t, fs, dir, s, m, interval, timeIndexAfterTruncate)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Recover rebuilds the indexes exactly and drops nothing.
	s, rep, err := Recover(fs, dir, m.base, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BytesDropped != 0 || rep.Reason != nil {
		t.Fatalf("Recover of a healthy segment: %+v", rep)
	}
	checkSegment(t, fs, dir, s, m, interval, timeIndexExact)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Open (trusted .log) loads the indexes as they are.
	s, rep, err = Open(fs, dir, m.base, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep != (Report{}) {
		t.Fatalf("Open of a healthy segment: %+v", rep)
	}
	checkSegment(t, fs, dir, s, m, interval, timeIndexExact)
	// An append after Open indexes like one that never stopped.
	extra := layOut(t, m.nextOffset(), [][]byte{batchOfSize(t, 99, 100)})
	if err := s.Append(extra.batches); err != nil {
		t.Fatal(err)
	}
	withExtra := layOut(t, m.base, append(slices.Clone(m.batches), extra.batches...))
	checkSegment(t, fs, dir, s, withExtra, interval, timeIndexExact)
	if err := s.TruncateTo(m.nextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Open without an .index falls back to recovery and rebuilds it.
	if err := fs.Remove(FileName(dir, m.base, IndexSuffix)); err != nil {
		t.Fatal(err)
	}
	s, rep, err = Open(fs, dir, m.base, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantIndex, _ := m.indexes(interval)
	if rep.BytesDropped != 0 || rep.IndexRebuilt != (len(wantIndex) > 0) {
		t.Fatalf("Open without .index: %+v", rep)
	}
	checkSegment(t, fs, dir, s, m, interval, timeIndexExact)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Damage in the last batch: torn in its middle, then one byte flipped in its records.
	logPath := FileName(dir, m.base, LogSuffix)
	full := readFile(t, fs, logPath)
	lastPos, last := m.pos[n-1], m.batches[n-1]
	damaged := []struct {
		name    string
		data    []byte
		reason  error
		dropped int64
	}{
		{"torn", full[:lastPos+int64(len(last))/2], ErrTorn, int64(len(last)) / 2},
		{"flipped", flipByte(full, lastPos+batch.HeaderSize+int64(len(last)-batch.HeaderSize)/2), ErrCorrupt, int64(len(last))},
	}
	for _, d := range damaged {
		writeFile(t, fs, logPath, d.data)
		checkScanAndVerify(t, fs, logPath, m.prefix(n-1), lastPos, d.reason)
		s, rep, err := Recover(fs, dir, m.base, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Reason, d.reason) || rep.BytesDropped != d.dropped {
			t.Fatalf("%s last batch: report %+v, want %d bytes dropped for %v", d.name, rep, d.dropped, d.reason)
		}
		checkSegment(t, fs, dir, s, m.prefix(n-1), interval, timeIndexExact)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func reversed(makes []makeFn) []makeFn {
	out := slices.Clone(makes)
	slices.Reverse(out)
	return out
}

func flipByte(data []byte, at int64) []byte {
	out := bytes.Clone(data)
	out[at] ^= 0x5a
	return out
}
