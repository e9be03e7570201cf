package partition

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// resetCases are offsets to reset a log of [start, 46) in segments [0 10 20 30 40] with the start
// advanced to 12 (and a few other things on disk) to.
var resetCases = []struct {
	name   string
	offset int64
}{
	{"below-the-start", 3},
	{"to-zero", 0},
	{"inside", 25},
	{"at-a-segment-base", 30},
	{"at-the-end", 46},
	{"above-the-end", 1000},
}

// resetFixture writes a log of 23 batches of 2 offsets in five segments, epochs 0 to 4, start
// offset 12, a file of diverged batches, everything synced; it returns the open log.
func resetFixture(t *testing.T, fs vfs.FS, opts Options) (*Log, [][]byte) {
	t.Helper()
	opts.SegmentBytes = 1500
	l := mustOpen(t, opts)
	var batches [][]byte
	for i := 0; i < 24; i++ {
		batches = append(batches, appendN(t, l, 1, 2, int32(i/5), 0, 100)...)
	}
	if err := l.TruncateTo(46); err != nil { // keeps one batch aside
		t.Fatal(err)
	}
	batches = batches[:23]
	if err := l.AdvanceStartOffset(12); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); !slices.Equal(got, []int64{10, 20, 30, 40}) || l.EndOffset() != 46 {
		t.Fatalf("fixture: segments %v end %d", got, l.EndOffset())
	}
	return l, batches
}

// checkReset checks that l is the empty log at offset, in memory and on disk.
func checkReset(t *testing.T, fs vfs.FS, l *Log, offset int64) {
	t.Helper()
	if l.StartOffset() != offset || l.EndOffset() != offset || l.NextOffset() != offset || l.DurableEnd() != offset {
		t.Fatalf("start %d end %d next %d durable %d, want all %d", l.StartOffset(), l.EndOffset(), l.NextOffset(), l.DurableEnd(), offset)
	}
	if got := l.Segments(); !slices.Equal(got, []int64{offset}) || l.Size() != 0 {
		t.Fatalf("segments %v size %d", got, l.Size())
	}
	if e := l.EpochEntries(); len(e) != 0 || l.LatestEpoch() != -1 {
		t.Fatalf("epoch entries %v", e)
	}
	if got, err := l.Read(nil, offset, 1<<20, 1<<62, true); err != nil || len(got) != 0 {
		t.Fatalf("Read at the reset offset: %d bytes, %v", len(got), err)
	}
	if offset > 0 {
		if _, err := l.Read(nil, offset-1, 1<<20, 1<<62, true); !isOutOfRange(err) {
			t.Fatalf("Read below the reset offset: %v", err)
		}
	}
	names, err := fs.ReadDir("/p")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && (suffix == segment.LogSuffix || suffix == segment.IndexSuffix || suffix == segment.TimeIndexSuffix) && base != offset {
			t.Fatalf("file %s of an old segment left (directory %v)", name, names)
		}
		if name == resetCheckpoint {
			t.Fatalf("reset marker left (directory %v)", names)
		}
	}
	for _, cp := range []string{logStartCheckpoint, recoveryPointCheckpoint} {
		if got, ok, err := readOffsetCheckpoint(fs, "/p", cp); err != nil || !ok || got != offset {
			t.Fatalf("%s = %d, %v, %v; want %d", cp, got, ok, err, offset)
		}
	}
	if lines, err := readCheckpoint(fs, "/p", leaderEpochCheckpoint, 2); err != nil || len(lines) != 0 {
		t.Fatalf("leader epoch checkpoint %v, %v", lines, err)
	}
	if st := l.cleanState.Load(); st.firstDirty != offset || len(st.horizons) != 0 {
		t.Fatalf("cleaner state %+v", st)
	}
}

func TestResetTo(t *testing.T) {
	for _, tc := range resetCases {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := testOptions(fs, "/p", newClock())
			l, _ := resetFixture(t, fs, opts)
			kept := divergedFiles(t, fs, "/p")
			if err := l.ResetTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			checkReset(t, fs, l, tc.offset)
			if got := divergedFiles(t, fs, "/p"); !slices.Equal(got, kept) || len(kept) != 1 {
				t.Fatalf("diverged files %v, want %v untouched", got, kept)
			}
			// A follower appends its leader's batches from there.
			b := makeBatch(tc.offset, 3, 9, 0, 40)
			if err := l.Append([][]byte{b}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, opts)
			defer l.Close()
			if l.StartOffset() != tc.offset || l.EndOffset() != tc.offset+3 || l.DurableEnd() != tc.offset+3 {
				t.Fatalf("after reopen: start %d end %d durable %d", l.StartOffset(), l.EndOffset(), l.DurableEnd())
			}
			if got := l.EpochEntries(); !slices.Equal(got, []EpochEntry{{9, tc.offset}}) {
				t.Fatalf("epoch entries %v", got)
			}
			if got := readAll(t, l, tc.offset); !bytes.Equal(got, b) {
				t.Fatal("content after reopen")
			}
			// Resetting again, to the same offset, empties it again.
			if err := l.ResetTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			checkReset(t, fs, l, tc.offset)
		})
	}
	// Errors.
	fs := vfs.NewMem()
	l := mustOpen(t, testOptions(fs, "/p", newClock()))
	if err := l.ResetTo(-1); !isOutOfRange(err) {
		t.Fatalf("ResetTo(-1) = %v", err)
	}
	l.Close()
	if err := l.ResetTo(5); !errors.Is(err, ErrClosed) {
		t.Fatalf("ResetTo on a closed log = %v", err)
	}
}

// TestDurableEnd: DurableEnd is the end as of the last Sync; Open counts what it recovered as
// durable; TruncateTo and ResetTo bring it down (or up) with the end.
func TestDurableEnd(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1500
	l := mustOpen(t, opts)
	if l.DurableEnd() != 0 {
		t.Fatalf("empty log: DurableEnd %d", l.DurableEnd())
	}
	appendN(t, l, 8, 2, 0, 0, 100)
	if l.DurableEnd() != 0 || l.EndOffset() != 16 {
		t.Fatalf("unsynced appends: DurableEnd %d end %d", l.DurableEnd(), l.EndOffset())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2, 2, 0, 0, 100)
	if l.DurableEnd() != 16 {
		t.Fatalf("after Sync and two more appends: DurableEnd %d", l.DurableEnd())
	}
	// A restart without Close (a killed broker): what recovery kept is durable.
	l2 := mustOpen(t, opts)
	if l2.DurableEnd() != l2.EndOffset() || l2.EndOffset() != 20 {
		t.Fatalf("after recovery: DurableEnd %d end %d", l2.DurableEnd(), l2.EndOffset())
	}
	if err := l2.TruncateTo(12); err != nil {
		t.Fatal(err)
	}
	if l2.DurableEnd() != 12 {
		t.Fatalf("after TruncateTo(12): DurableEnd %d", l2.DurableEnd())
	}
	appendN(t, l2, 2, 2, 0, 0, 100)
	if err := l2.TruncateTo(14); err != nil { // below what is appended, above what is durable
		t.Fatal(err)
	}
	if l2.DurableEnd() != 14 {
		t.Fatalf("after TruncateTo(14): DurableEnd %d", l2.DurableEnd())
	}
	if err := l2.ResetTo(100); err != nil {
		t.Fatal(err)
	}
	if l2.DurableEnd() != 100 {
		t.Fatalf("after ResetTo(100): DurableEnd %d", l2.DurableEnd())
	}
	if err := l2.ResetTo(4); err != nil {
		t.Fatal(err)
	}
	if l2.DurableEnd() != 4 {
		t.Fatalf("after ResetTo(4): DurableEnd %d", l2.DurableEnd())
	}
	l2.Close()
}

// TestResetToReaders: readers on other goroutines while the log is reset, refilled and reset
// again see either what was there (byte for byte) or ErrOffsetOutOfRange, never another error or
// a torn batch.
func TestResetToReaders(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1500
	l := mustOpen(t, opts)
	defer l.Close()
	// Every batch written has the same bytes at the same offset whatever the round, so a reader
	// can check what it gets.
	want := map[int64][]byte{}
	var wantMu sync.Mutex
	fill := func(from int64, n int) {
		for i := 0; i < n; i++ {
			off := from + int64(2*i)
			b := makeBatch(off, 2, 0, 0, 100)
			wantMu.Lock()
			want[off] = b
			wantMu.Unlock()
			if err := l.Append([][]byte{b}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	fill(0, 20)
	var stop atomic.Bool
	var wg sync.WaitGroup
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	var reads, outOfRange atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			var buf []byte
			for !stop.Load() {
				off := 2 * rng.Int64N(60)
				var err error
				buf, err = l.Read(buf[:0], off, 4000, 1<<62, true)
				switch {
				case isOutOfRange(err):
					outOfRange.Add(1)
					continue
				case err != nil:
					t.Errorf("Read(%d): %v", off, err)
					return
				}
				reads.Add(1)
				if err := batch.Split(buf, func(b []byte) error {
					wantMu.Lock()
					w := want[batch.BaseOffset(b)]
					wantMu.Unlock()
					if !bytes.Equal(b, w) {
						return errors.New("batch differs")
					}
					return nil
				}); err != nil {
					t.Errorf("Read(%d): %v", off, err)
					return
				}
			}
		}(uint64(r))
	}
	deadline := time.Now().Add(20 * time.Second)
	for round := 0; round < 60 || reads.Load() < 200 || outOfRange.Load() < 20; round++ {
		if time.Now().After(deadline) {
			t.Errorf("after %d rounds: %d reads, %d out of range", round, reads.Load(), outOfRange.Load())
			break
		}
		to := int64(2 * (round % 30))
		if err := l.ResetTo(to); err != nil {
			t.Fatal(err)
		}
		fill(to, 20)
	}
	t.Logf("%d reads, %d out of range", reads.Load(), outOfRange.Load())
}

// TestResetToCrash cuts the power at every mutating operation of a ResetTo, and half the time
// again in the middle of the Open that recovers from it: Open must recover either the old log,
// whole, or the new empty one, never something between, and the log takes appends afterwards.
func TestResetToCrash(t *testing.T) {
	for _, tc := range resetCases {
		t.Run(tc.name, func(t *testing.T) {
			build := func(fs vfs.FS) (*Log, [][]byte, Options) {
				opts := testOptions(fs, "/p", newClock())
				l, batches := resetFixture(t, fs, opts)
				opts.SegmentBytes = 1500
				return l, batches, opts
			}
			dry := vfs.NewCrashFS()
			l, batches, _ := build(dry)
			oldEpochs := l.EpochEntries()
			oldContent := bytes.Join(batches[6:], nil) // from the start offset 12
			before := dry.MutatingOps()
			if err := l.ResetTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			ops := dry.MutatingOps() - before
			var olds, news int
			for n := int64(1); n <= ops+1; n++ {
				fs := vfs.NewCrashFS()
				l, _, opts := build(fs)
				fs.CrashAfter(n)
				err := l.ResetTo(tc.offset)
				completed := n > ops
				if completed != (err == nil) || (err != nil && !errors.Is(err, vfs.ErrPowerLost)) {
					t.Fatalf("crash at op %d of %d: ResetTo = %v", n, ops, err)
				}
				rng := rand.New(rand.NewPCG(uint64(n), 11))
				fs.PowerLoss(rng)
				if n%2 == 0 {
					// A second power loss in the middle of the recovery.
					fs.CrashAfter(1 + rng.Int64N(12))
					if l, err := Open(opts); err == nil {
						fs.CrashAfter(0)
						_ = l
					} else if !errors.Is(err, vfs.ErrPowerLost) {
						t.Fatalf("crash at op %d: open under a power cut: %v", n, err)
					}
					fs.PowerLoss(rng)
				}
				l, err = Open(opts)
				if err != nil {
					t.Fatalf("crash at op %d of %d: open: %v", n, ops, err)
				}
				isNew := l.Segments()[0] == tc.offset && l.EndOffset() == tc.offset && l.StartOffset() == tc.offset && l.Size() == 0
				switch {
				case isNew:
					news++
					checkReset(t, fs, l, tc.offset)
				default:
					olds++
					if completed {
						t.Fatalf("completed reset to %d, recovered the old log", tc.offset)
					}
					if l.StartOffset() != 12 || l.EndOffset() != 46 || l.DurableEnd() != 46 ||
						!slices.Equal(l.Segments(), []int64{10, 20, 30, 40}) || !slices.Equal(l.EpochEntries(), oldEpochs) {
						t.Fatalf("crash at op %d of %d: neither the old log nor the new one: start %d end %d segments %v epochs %v",
							n, ops, l.StartOffset(), l.EndOffset(), l.Segments(), l.EpochEntries())
					}
					if got := readAll(t, l, 12); !bytes.Equal(got, oldContent) {
						t.Fatalf("crash at op %d: the old log's content differs", n)
					}
				}
				// The log takes appends at its end, and keeps them.
				end := l.EndOffset()
				b := makeBatch(end, 2, 20, 0, 30)
				if err := l.Append([][]byte{b}); err != nil {
					t.Fatal(err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				fs.PowerLoss(nil)
				l = mustOpen(t, opts)
				if got, err := l.Read(nil, end, 1<<20, 1<<62, true); err != nil || !bytes.Equal(got, b) {
					t.Fatalf("crash at op %d: the batch appended after recovery: %v", n, err)
				}
				l.Close()
			}
			if olds == 0 || news < 2 {
				t.Fatalf("%d operations: %d runs recovered the old log, %d the new one", ops, olds, news)
			}
			t.Logf("%d operations: %d runs recovered the old log, %d the new one", ops, olds, news)
		})
	}
}
