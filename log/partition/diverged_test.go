package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// divergedFiles lists the files of batches TruncateTo cut off in dir, in name order.
func divergedFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := IsDivergedFile(n); ok {
			out = append(out, n)
		}
	}
	return out
}

func baseOf(b []byte) int64 { return batch.BaseOffset(b) }

// TestTruncateKeepsDivergedActive: a truncation inside the active segment keeps exactly the cut
// batches in <offset>.log.diverged-<ms>, logs them at Warn and counts them.
func TestTruncateKeepsDivergedActive(t *testing.T) {
	fs := vfs.NewMem()
	c := newClock()
	opts := testOptions(fs, "/p", c)
	core, logs := observer.New(zapcore.WarnLevel)
	opts.Logger = zap.New(core)
	l := mustOpen(t, opts)
	defer l.Close()
	batches := appendN(t, l, 10, 3, 2, 0, 50)
	if len(l.Segments()) != 1 {
		t.Fatalf("segments %v, want one", l.Segments())
	}
	offset := baseOf(batches[6])
	if err := l.TruncateTo(offset); err != nil {
		t.Fatal(err)
	}
	cut := bytes.Join(batches[6:], nil)
	files := divergedFiles(t, fs, "/p")
	want := fmt.Sprintf("%020d.log.diverged-%d", offset, c.Now().UnixMilli())
	if len(files) != 1 || files[0] != want {
		t.Fatalf("diverged files %v, want [%s]", files, want)
	}
	if got := fileBytes(t, fs, filepath.Join("/p", files[0])); !bytes.Equal(got, cut) {
		t.Fatalf("kept %d bytes that differ from the %d cut", len(got), len(cut))
	}
	if l.DivergedBytes() != int64(len(cut)) {
		t.Fatalf("DivergedBytes %d, want %d", l.DivergedBytes(), len(cut))
	}
	entries := logs.FilterMessageSnippet("diverging batches").All()
	if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
		t.Fatalf("log entries %v", entries)
	}
	m := entries[0].ContextMap()
	if m["from_offset"] != offset || m["to_offset_exclusive"] != int64(30) || m["bytes"] != int64(len(cut)) ||
		m["kept_in"] != filepath.Join("/p", want) {
		t.Fatalf("log fields %v", m)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches[:6], nil)) || l.EndOffset() != offset {
		t.Fatalf("log after the truncation: end %d", l.EndOffset())
	}
	// `segment dump` reads the kept file: the cut batches, at their offsets.
	var bases []int64
	if err := segment.Scan(fs, filepath.Join("/p", files[0]), func(_ int64, h batch.Header, err error) error {
		if err != nil {
			return err
		}
		bases = append(bases, h.BaseOffset)
		return nil
	}); err != nil || len(bases) != 4 || bases[0] != offset {
		t.Fatalf("scan of the kept file: %v %v", bases, err)
	}
}

// TestTruncateKeepsDivergedAcrossSegments: a truncation that drops whole segments keeps the tail
// of the segment holding the offset and every later segment, in order, in one file; the file
// survives reopening and is not taken for a segment.
func TestTruncateKeepsDivergedAcrossSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep int // index of the first batch cut
	}{
		{"inside-a-sealed-segment", 7},
		{"at-a-segment-base", 10},
		{"from-the-first-batch", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			c := newClock()
			opts := testOptions(fs, "/p", c)
			opts.SegmentBytes = 1500
			l := mustOpen(t, opts)
			batches := appendN(t, l, 23, 2, 0, 0, 100) // 5 batches per segment
			if len(l.Segments()) != 5 {
				t.Fatalf("segments %v", l.Segments())
			}
			offset := baseOf(batches[tc.keep])
			if err := l.TruncateTo(offset); err != nil {
				t.Fatal(err)
			}
			cut := bytes.Join(batches[tc.keep:], nil)
			files := divergedFiles(t, fs, "/p")
			if len(files) != 1 || !strings.HasPrefix(files[0], fmt.Sprintf("%020d.log.diverged-", offset)) {
				t.Fatalf("diverged files %v", files)
			}
			if got := fileBytes(t, fs, filepath.Join("/p", files[0])); !bytes.Equal(got, cut) {
				t.Fatalf("kept %d bytes that differ from the %d cut", len(got), len(cut))
			}
			if l.DivergedBytes() != int64(len(cut)) {
				t.Fatalf("DivergedBytes %d, want %d", l.DivergedBytes(), len(cut))
			}
			more := appendN(t, l, 3, 2, 1, 0, 100)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, opts)
			defer l.Close()
			want := bytes.Join(append(slices.Clone(batches[:tc.keep]), more...), nil)
			if got := readAll(t, l, 0); !bytes.Equal(got, want) || l.EndOffset() != offset+6 {
				t.Fatalf("after reopen: end %d, %d bytes", l.EndOffset(), len(got))
			}
			if got := divergedFiles(t, fs, "/p"); !slices.Equal(got, files) || l.DivergedBytes() != 0 {
				t.Fatalf("after reopen: diverged files %v (want %v), DivergedBytes %d", got, files, l.DivergedBytes())
			}
		})
	}
}

// TestTruncateDivergedPruning: the files of cut-off bytes, recovery's and TruncateTo's, stay
// within MaxDroppedFiles and MaxDroppedBytes, the newest kept; a cut larger than MaxDroppedBytes
// is truncated all the same, kept nowhere, and leaves the kept files alone.
func TestTruncateDivergedPruning(t *testing.T) {
	fs := vfs.NewMem()
	c := newClock()
	opts := testOptions(fs, "/p", c)
	opts.MaxDroppedFiles = 3
	opts.MaxDroppedBytes = 2000
	// An older file of bytes cut by recovery: pruned like the others.
	if err := fs.MkdirAll("/p", 0o755); err != nil {
		t.Fatal(err)
	}
	putFile(t, fs, "/p/00000000000000000000.log.dropped-1600000000000", bytes.Repeat([]byte{1}, 100))
	core, logs := observer.New(zapcore.WarnLevel)
	opts.Logger = zap.New(core)
	l := mustOpen(t, opts)
	defer l.Close()
	appendN(t, l, 2, 1, 0, 0, 100)
	var kept []string // newest last
	cutSizes := map[string]int{}
	for i := 0; i < 8; i++ {
		c.Advance(time.Second)
		// Cuts of one to three batches of about 180 bytes.
		n := 1 + i%3
		cut := appendN(t, l, n, 1, 0, 0, 100)
		if err := l.TruncateTo(baseOf(cut[0])); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%020d.log.diverged-%d", baseOf(cut[0]), c.Now().UnixMilli())
		kept = append(kept, name)
		cutSizes[name] = len(bytes.Join(cut, nil))
		if got := fileBytes(t, fs, filepath.Join("/p", name)); !bytes.Equal(got, bytes.Join(cut, nil)) {
			t.Fatalf("truncation %d: the kept file differs from the cut", i)
		}
		// What the directory holds: the newest files that fit both bounds.
		names, _ := fs.ReadDir("/p")
		var have []string
		total := 0
		for _, nm := range names {
			if _, ok := cutFileTime(nm); ok {
				have = append(have, nm)
				total += len(fileBytes(t, fs, filepath.Join("/p", nm)))
			}
		}
		if len(have) > opts.MaxDroppedFiles || int64(total) > opts.MaxDroppedBytes {
			t.Fatalf("truncation %d: %d files of %d bytes kept: %v", i, len(have), total, have)
		}
		if !slices.Contains(have, name) {
			t.Fatalf("truncation %d: the newest file %s was pruned: %v", i, name, have)
		}
		// Every file kept is newer than every file pruned.
		var want []string
		sum := 0
		for j := len(kept) - 1; j >= 0; j-- {
			if len(want) == opts.MaxDroppedFiles || int64(sum+cutSizes[kept[j]]) > opts.MaxDroppedBytes {
				break
			}
			want = append(want, kept[j])
			sum += cutSizes[kept[j]]
		}
		slices.Sort(want)
		if i >= 2 && !slices.Equal(have, want) {
			t.Fatalf("truncation %d: kept %v, want the newest %v", i, have, want)
		}
	}
	if _, err := fs.Stat("/p/00000000000000000000.log.dropped-1600000000000"); err == nil {
		t.Fatal("the oldest file, recovery's, was not pruned")
	}
	if n := len(logs.FilterMessageSnippet("removing an old file of cut-off bytes").All()); n == 0 {
		t.Fatal("pruning not logged")
	}
	// A cut larger than MaxDroppedBytes: truncated, not kept, the kept files left as they were.
	before, _ := fs.ReadDir("/p")
	big := appendN(t, l, 1, 1, 0, 0, 2500)
	if err := l.TruncateTo(baseOf(big[0])); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != baseOf(big[0]) {
		t.Fatalf("end %d after truncating the big batch", l.EndOffset())
	}
	if after, _ := fs.ReadDir("/p"); !slices.Equal(before, after) {
		t.Fatalf("directory changed: %v -> %v", before, after)
	}
	if n := len(logs.FilterMessageSnippet("not kept").All()); n != 1 {
		t.Fatalf("%d 'not kept' warnings, want 1", n)
	}
}

// TestTruncateCrash cuts the power at every mutating operation of a divergence truncation (the
// copy of the cut batches, the checkpoints, the truncation, the final sync) and checks what Open
// recovers: no batch acknowledged durable below the truncation point is lost, the log is a prefix
// of what it held before, a file of diverged batches that survived holds exactly the cut bytes,
// and a completed truncation stays done.
func TestTruncateCrash(t *testing.T) {
	type scenario struct {
		name     string
		segBytes int64
		cutAt    int // index of the first batch cut
		synced   int // batches appended before the last Sync
	}
	scenarios := []scenario{
		{"active-segment", 1 << 20, 9, 12},
		{"across-segments", 1500, 6, 14},
		{"below-unsynced-appends", 1500, 12, 9}, // the cut point is above what is durable
	}
	const total = 16
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			build := func(fs *vfs.CrashFS) (*Log, [][]byte, Options) {
				opts := testOptions(fs, "/p", newClock())
				opts.SegmentBytes = sc.segBytes
				l := mustOpen(t, opts)
				var batches [][]byte
				for i := 0; i < total; i++ {
					batches = append(batches, appendN(t, l, 1, 2, int32(i/4), 0, 100)...)
					if i+1 == sc.synced {
						if err := l.Sync(); err != nil {
							t.Fatal(err)
						}
					}
				}
				return l, batches, opts
			}
			// Count the operations of the truncation.
			dry := vfs.NewCrashFS()
			l, batches, _ := build(dry)
			offset := baseOf(batches[sc.cutAt])
			before := dry.MutatingOps()
			if err := l.TruncateTo(offset); err != nil {
				t.Fatal(err)
			}
			ops := dry.MutatingOps() - before
			durableBelow := min(sc.cutAt, sc.synced) // batches that must survive any crash
			all := bytes.Join(batches, nil)
			cut := bytes.Join(batches[sc.cutAt:], nil)
			completedCount := 0
			for n := int64(1); n <= ops+1; n++ {
				fs := vfs.NewCrashFS()
				l, _, opts := build(fs)
				fs.CrashAfter(n)
				err := l.TruncateTo(offset)
				completed := n > ops
				if completed != (err == nil) || (err != nil && !errors.Is(err, vfs.ErrPowerLost)) {
					t.Fatalf("crash at op %d of %d: TruncateTo = %v", n, ops, err)
				}
				fs.PowerLoss(rand.New(rand.NewPCG(uint64(n), 7)))
				for pass := 0; pass < 2; pass++ { // the second pass: recovery is idempotent
					l, err := Open(opts)
					if err != nil {
						t.Fatalf("crash at op %d of %d: open: %v", n, ops, err)
					}
					end := l.EndOffset()
					got := readAll(t, l, 0)
					if l.StartOffset() != 0 || !bytes.HasPrefix(all, got) {
						t.Fatalf("crash at op %d: recovered [%d, %d) is not a prefix of the log before the truncation", n, l.StartOffset(), end)
					}
					if need := len(bytes.Join(batches[:durableBelow], nil)); len(got) < need {
						t.Fatalf("crash at op %d: recovered %d bytes (end %d), but %d were acknowledged durable below %d", n, len(got), end, need, offset)
					}
					if completed && (end != offset || len(got) != len(all)-len(cut)) {
						t.Fatalf("completed truncation to %d, recovered end %d", offset, end)
					}
					for _, name := range divergedFiles(t, fs, "/p") {
						if kept := fileBytes(t, fs, filepath.Join("/p", name)); !bytes.Equal(kept, cut) {
							t.Fatalf("crash at op %d: %s holds %d bytes, not the %d cut", n, name, len(kept), len(cut))
						}
					}
					if completed && len(divergedFiles(t, fs, "/p")) != 1 {
						t.Fatalf("completed truncation: diverged files %v", divergedFiles(t, fs, "/p"))
					}
					if l.DurableEnd() != end {
						t.Fatalf("crash at op %d: DurableEnd %d after Open, end %d", n, l.DurableEnd(), end)
					}
					for _, e := range l.EpochEntries() {
						if e.StartOffset >= end && end > 0 {
							t.Fatalf("crash at op %d: epoch entry %v past the end %d", n, e, end)
						}
					}
					if pass == 1 {
						// The log takes appends at its recovered end.
						appendN(t, l, 1, 1, 9, 0, 10)
					}
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					if pass == 0 {
						fs.PowerLoss(nil)
					}
				}
				if completed {
					completedCount++
				}
			}
			if completedCount != 1 || ops < 8 {
				t.Fatalf("%d operations, %d completed runs", ops, completedCount)
			}
		})
	}
}

// TestTruncateThenAppendNewEpoch: a follower truncates to the diverging offset and appends the new
// leader's batches from there with a higher leader epoch: the epoch cache holds the old epochs up
// to the offset and the new one from it, on disk too.
func TestTruncateThenAppendNewEpoch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int64
		want   []EpochEntry
	}{
		{"inside-an-epoch", 15, []EpochEntry{{1, 0}, {2, 10}, {7, 15}}},
		{"at-an-epoch-start", 20, []EpochEntry{{1, 0}, {2, 10}, {7, 20}}},
		{"at-the-first-epoch-start", 0, []EpochEntry{{7, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := testOptions(fs, "/p", newClock())
			opts.SegmentBytes = 1200
			l := mustOpen(t, opts)
			appendN(t, l, 10, 1, 1, 0, 50) // epoch 1: [0, 10)
			appendN(t, l, 10, 1, 2, 0, 50) // epoch 2: [10, 20)
			appendN(t, l, 10, 1, 3, 0, 50) // epoch 3: [20, 30)
			if err := l.TruncateTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 4, 2, 7, 0, 50) // the new leader's batches, epoch 7
			check := func(when string, l *Log) {
				t.Helper()
				if got := l.EpochEntries(); !slices.Equal(got, tc.want) {
					t.Fatalf("%s: epoch entries %v, want %v", when, got, tc.want)
				}
				if end, ep := l.EndOffsetForEpoch(3); tc.offset > 0 && (ep != 2 || end != tc.want[len(tc.want)-1].StartOffset) {
					t.Fatalf("%s: EndOffsetForEpoch(3) = %d, %d", when, end, ep)
				}
			}
			check("after the appends", l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, opts)
			check("after reopening", l)
			l.Close()
			// Rebuilt from the batches when the checkpoint is missing: the same.
			if err := fs.Remove("/p/" + leaderEpochCheckpoint); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, opts)
			defer l.Close()
			check("after rebuilding the cache", l)
		})
	}
}
