package partition

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// defaultPropertyIterations is how many seeds TestRecoveryProperty runs (a fifth of them under
// -race) unless THORSTREAM_PROPERTY_ITERATIONS asks for more; THORSTREAM_PROPERTY_SEED replays
// one seed.
const defaultPropertyIterations = 100

func propertySeeds(t *testing.T) []uint64 {
	if s := os.Getenv("THORSTREAM_PROPERTY_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("THORSTREAM_PROPERTY_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	n := defaultPropertyIterations
	if raceDetector {
		n /= 5 // one goroutine: the detector only slows it down
	}
	if testing.Short() {
		n /= 5 // the race-detector pass; the plain run does them all
	}
	if s := os.Getenv("THORSTREAM_PROPERTY_ITERATIONS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			t.Fatalf("THORSTREAM_PROPERTY_ITERATIONS=%q: want a positive number", s)
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// logUniform is an integer between lo and hi whose logarithm is uniform: tiny and huge values
// are equally likely orders of magnitude.
func logUniform(rng *rand.Rand, lo, hi int) int {
	return int(math.Round(math.Exp(math.Log(float64(lo)) + rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo))))))
}

// randomBatch is a valid batch at offset 0 of about size bytes: mostly one record padded to
// exactly size, sometimes many records (empty values among them), sometimes compressed.
func randomBatch(t *testing.T, rng *rand.Rand, seed int64) (b []byte, desc string) {
	size := logUniform(rng, 70, 2<<20)
	switch k := rng.IntN(10); {
	case k < 5:
		return batchOfExactSize(t, seed, size), fmt.Sprintf("%dB", size)
	case k < 7:
		records := 1 + rng.IntN(min(size/8, 5000)+1)
		valueSize := max(size/records-8, 0)
		b := manyRecords(records, valueSize, batch.CodecNone, false)(t, seed)
		return b, fmt.Sprintf("%dB/%drec", len(b), records)
	default:
		codec := batch.CodecGzip + rng.IntN(4)
		records := 1 + rng.IntN(min(size/16, 3000)+1)
		random := rng.IntN(2) == 0
		b := manyRecords(records, max(size/records-8, 0), codec, random)(t, seed)
		return b, fmt.Sprintf("%dB/%drec/codec%d", len(b), records, codec)
	}
}

// placed is one written batch and where it lies: segment index and position in that .log.
type placed struct {
	b       []byte
	segment int
	pos     int64
}

// TestRecoveryProperty appends random batches (1 to 16, from 70 bytes to 2 MiB, some with
// thousands of records, some compressed) through a Log with random segment and index sizes, stops
// it without Close (as a crash does), damages one .log that recovery must validate — torn at a
// random byte, or one random byte flipped — and reopens. The log must serve exactly the batches
// wholly before the damage, and without damage all of them; it must then take appends and keep
// them across a clean reopen. Which .log may be damaged depends on the recovery point: with no
// Sync every segment is validated at open; after a Sync only segments from the then active one;
// after CheckpointRecoveryPoint only bytes appended after it.
func TestRecoveryProperty(t *testing.T) {
	for _, seed := range propertySeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			var story []string
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d (replay: THORSTREAM_PROPERTY_SEED=%d go test -run TestRecoveryProperty ./log/partition/)\n%s\n"+format,
					append([]any{seed, seed, strings.Join(story, "\n")}, args...)...)
			}
			runRecoveryProperty(t, rand.New(rand.NewPCG(seed, 0x7468_6f72)), &story, fail)
		})
	}
}

func runRecoveryProperty(t *testing.T, rng *rand.Rand, story *[]string, fail func(string, ...any)) {
	say := func(format string, args ...any) { *story = append(*story, fmt.Sprintf(format, args...)) }
	fs := vfs.NewMem()
	dir := "/topic-0"
	opts := Options{FS: fs, Dir: dir, RetentionBytes: -1, Now: newClock().Now}
	switch rng.IntN(3) {
	case 0: // default
	case 1:
		opts.SegmentBytes = 1 // every append rolls
	default:
		opts.SegmentBytes = int64(logUniform(rng, 4<<10, 4<<20))
	}
	switch rng.IntN(3) {
	case 0: // default
	case 1:
		opts.IndexIntervalBytes = 1
	default:
		opts.IndexIntervalBytes = logUniform(rng, 64, 64<<10)
	}
	say("segment bytes %d, index interval %d", opts.SegmentBytes, opts.IndexIntervalBytes)

	l, err := Open(opts)
	if err != nil {
		fail("open: %v", err)
	}
	m := newLogModel(opts.SegmentBytes)
	count := 1 + rng.IntN(16)
	// The recovery point: none, a Sync, or a checkpoint inside the active segment, taken after
	// syncAfter appends. Damage may only hit what recovery validates: segments from
	// validatedSegment on, and in a checkpointed segment only from validatedOffset on.
	syncMode, syncAfter := rng.IntN(3), rng.IntN(count+1)
	validatedSegment, validatedOffset := 0, int64(0)
	maybeSync := func(appended int) {
		if appended != syncAfter || syncMode == 0 {
			return
		}
		if err := l.Sync(); err != nil {
			fail("sync: %v", err)
		}
		validatedSegment = len(m.segments) - 1
		if syncMode == 2 {
			if err := l.CheckpointRecoveryPoint(); err != nil {
				fail("checkpoint: %v", err)
			}
			validatedOffset = m.next()
		}
		say("sync (checkpoint %v) after %d batches: validated from segment %d, offset %d", syncMode == 2, appended, validatedSegment, validatedOffset)
	}
	var descs []string
	var groupSizes []int
	for appended := 0; appended < count; {
		maybeSync(appended)
		n := min(1+rng.IntN(3), count-appended)
		if appended < syncAfter {
			n = min(n, syncAfter-appended)
		}
		var group [][]byte
		next := m.next()
		for range n {
			b, d := randomBatch(t, rng, int64(rng.IntN(1000)))
			batch.SetBaseOffset(b, next)
			batch.SetPartitionLeaderEpoch(b, int32(appended/4))
			h, err := batch.Validate(b)
			if err != nil {
				fail("built an invalid batch: %v", err)
			}
			next = h.NextOffset()
			group = append(group, b)
			descs = append(descs, d)
			appended++
		}
		if err := l.Append(group); err != nil {
			fail("append: %v", err)
		}
		m.append(group)
		groupSizes = append(groupSizes, n)
	}
	maybeSync(count)
	say("batches %v in appends of %v", descs, groupSizes)
	if got := l.Segments(); fmt.Sprint(got) != fmt.Sprint(m.bases()) {
		fail("segments %v before the crash, want %v", got, m.bases())
	}
	// l is abandoned here, never closed: the process died.

	// Where every batch lies.
	var all []placed
	for si, s := range m.segments {
		var pos int64
		for _, b := range s.batches {
			all = append(all, placed{b: b, segment: si, pos: pos})
			pos += int64(len(b))
		}
	}

	// Damage one validated .log, or nothing.
	expect := make([][]byte, 0, len(all))
	for _, p := range all {
		expect = append(expect, p.b)
	}
	damage := rng.IntN(10) // 0: none, 1-5: torn, 6-9: flipped
	candidates := []int{}
	for si, s := range m.segments {
		if si >= validatedSegment && s.size > 0 {
			candidates = append(candidates, si)
		}
	}
	if damage > 0 && len(candidates) > 0 {
		si := candidates[len(candidates)-1] // the active segment half the time
		if rng.IntN(2) == 0 {
			si = candidates[rng.IntN(len(candidates))]
		}
		seg := m.segments[si]
		lo := int64(0) // first byte recovery is sure to validate
		for _, p := range all {
			if p.segment == si && batch.BaseOffset(p.b) < validatedOffset {
				lo = p.pos + int64(len(p.b))
			}
		}
		path := segment.FileName(dir, seg.base, segment.LogSuffix)
		data := fileBytes(t, fs, path)
		if !bytes.Equal(data, bytes.Join(seg.batches, nil)) {
			fail("segment %d holds other bytes than were appended before the crash", seg.base)
		}
		if lo < int64(len(data)) {
			if damage <= 5 {
				cut := lo + rng.Int64N(int64(len(data))-lo+1)
				say("tear segment %d (%d bytes) at %d", seg.base, len(data), cut)
				putFile(t, fs, path, data[:cut])
				expect = expect[:0]
				for _, p := range all {
					if p.segment < si || (p.segment == si && p.pos+int64(len(p.b)) <= cut) {
						expect = append(expect, p.b)
					}
				}
			} else {
				at := lo + rng.Int64N(int64(len(data))-lo)
				data[at] ^= byte(1 + rng.IntN(255))
				putFile(t, fs, path, data)
				expect = expect[:0]
				for i, p := range all {
					if p.segment < si || (p.segment == si && p.pos+int64(len(p.b)) <= at) {
						expect = append(expect, p.b)
						continue
					}
					// p holds the flipped byte. Its partitionLeaderEpoch (bytes 12-15) is the one
					// field neither the CRC nor recovery checks: the batch stays, changed, as in
					// Kafka. Anything else makes it and every batch after it invalid.
					if within := at - p.pos; within >= 12 && within < 16 {
						for _, q := range all[i:] {
							expect = append(expect, q.b)
						}
						expect[i] = bytes.Clone(p.b)
						expect[i][within] = data[at]
					}
					break
				}
				say("flip byte %d of segment %d (%d bytes)", at, seg.base, len(data))
			}
		}
	}
	want := bytes.Join(expect, nil)
	wantEnd := int64(0)
	if len(expect) > 0 {
		h, _ := batch.ParseHeader(expect[len(expect)-1])
		wantEnd = h.NextOffset()
	}
	say("expect %d of %d batches, end offset %d", len(expect), len(all), wantEnd)

	// Recovery serves exactly the valid prefix.
	l, err = Open(opts)
	if err != nil {
		fail("reopen: %v", err)
	}
	if l.EndOffset() != wantEnd || l.NextOffset() != wantEnd {
		fail("recovered end offset %d, want %d", l.EndOffset(), wantEnd)
	}
	if got := readAll(t, l, l.StartOffset()); !bytes.Equal(got, want) || l.StartOffset() != 0 {
		fail("recovered %d bytes from %d, want %d from 0 (first difference at %d)", len(got), l.StartOffset(), len(want), firstDifference(got, want))
	}

	// The recovered log takes appends and keeps everything across a clean stop.
	fresh := batchOfExactSize(t, 5, logUniform(rng, 70, 2<<20))
	batch.SetBaseOffset(fresh, wantEnd)
	batch.SetPartitionLeaderEpoch(fresh, 1000)
	if err := l.Append([][]byte{fresh}); err != nil {
		fail("append after recovery: %v", err)
	}
	if err := l.Close(); err != nil {
		fail("close after recovery: %v", err)
	}
	l, err = Open(opts)
	if err != nil {
		fail("second reopen: %v", err)
	}
	defer l.Close()
	want = append(want, fresh...)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) || l.LatestEpoch() != 1000 {
		fail("after an append and a clean reopen: %d bytes, want %d (first difference at %d), latest epoch %d", len(got), len(want), firstDifference(got, want), l.LatestEpoch())
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
