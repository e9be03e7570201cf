package partition

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

func TestAppendRead(t *testing.T) {
	fs := vfs.NewMem()
	l := mustOpen(t, testOptions(fs, "/t-0", newClock()))
	var all [][]byte
	// Appends of 1..5 batches at once.
	for round := 0; round < 30; round++ {
		var group [][]byte
		next := l.NextOffset()
		for k := 0; k <= round%5; k++ {
			b := makeBatch(next, 1+k%3, 0, int64(round), 50+round)
			next += int64(1 + k%3)
			group = append(group, b)
		}
		if err := l.Append(group); err != nil {
			t.Fatal(err)
		}
		all = append(all, group...)
	}
	if l.EndOffset() != l.NextOffset() {
		t.Fatal("EndOffset != NextOffset")
	}
	want := bytes.Join(all, nil)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
	if l.Size() != int64(len(want)) {
		t.Fatalf("Size %d want %d", l.Size(), len(want))
	}
	// Offsets inside a batch return the containing batch.
	h, _ := batch.ParseHeader(all[5])
	got, err := l.Read(nil, h.LastOffset(), 1, 1<<62, true)
	if err != nil || !bytes.Equal(got, all[5]) {
		t.Fatalf("read inside batch: %v", err)
	}
	for _, tc := range []struct {
		name      string
		offset    int64
		maxOffset int64
		wantErr   bool
		wantEmpty bool
	}{
		{"past end", l.EndOffset() + 1, 1 << 62, true, false},
		{"negative", -1, 1 << 62, true, false},
		{"at end", l.EndOffset(), 1 << 62, false, true},
		{"at high watermark", 3, 3, false, true},
	} {
		got, err := l.Read([]byte("x"), tc.offset, 1000, tc.maxOffset, true)
		if tc.wantErr != isOutOfRange(err) || (tc.wantEmpty && string(got) != "x") {
			t.Errorf("%s: %q %v", tc.name, got, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, testOptions(fs, "/t-0", newClock()))
	defer l.Close()
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("data differs after reopen")
	}
}

func TestAppendRejectsNonContiguous(t *testing.T) {
	l := mustOpen(t, testOptions(vfs.NewMem(), "/p", newClock()))
	defer l.Close()
	appendN(t, l, 1, 3, 0, 0, 10)
	good := makeBatch(3, 2, 0, 0, 10)
	for _, tc := range []struct {
		name    string
		batches [][]byte
	}{
		{"wrong base", [][]byte{makeBatch(4, 1, 0, 0, 10)}},
		{"gap inside", [][]byte{good, makeBatch(6, 1, 0, 0, 10)}},
		{"trailing bytes", [][]byte{append(append([]byte(nil), good...), 0)}},
		{"short", [][]byte{good[:30]}},
		{"cut batch", [][]byte{good[:len(good)-1]}},
	} {
		if err := l.Append(tc.batches); !errors.Is(err, ErrNotContiguous) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if l.NextOffset() != 3 {
		t.Fatalf("next offset moved to %d", l.NextOffset())
	}
	if err := l.Append([][]byte{good}); err != nil {
		t.Fatal("log unusable after a rejected append:", err)
	}
}

func TestRollBySize(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1000
	l := mustOpen(t, opts)
	batches := appendN(t, l, 40, 1, 0, 0, 100) // ~170 bytes each: 5 per segment
	segs := l.Segments()
	if len(segs) != 8 {
		t.Fatalf("%d segments: %v", len(segs), segs)
	}
	for i, base := range segs {
		if base != int64(i*5) {
			t.Fatalf("segment bases %v", segs)
		}
	}
	for _, s := range l.snapshot().segments {
		if s.Size() > opts.SegmentBytes {
			t.Fatalf("segment %d has %d bytes", s.BaseOffset(), s.Size())
		}
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches, nil)) {
		t.Fatal("read across segments differs")
	}
	// A batch larger than SegmentBytes still goes in (alone in its segment).
	big := makeBatch(l.NextOffset(), 1, 0, 0, 3000)
	if err := l.Append([][]byte{big}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	if len(l.Segments()) != 9 || l.NextOffset() != 41 {
		t.Fatalf("after reopen: %v next %d", l.Segments(), l.NextOffset())
	}
}

func TestRollByAge(t *testing.T) {
	c := newClock()
	opts := testOptions(vfs.NewMem(), "/p", c)
	opts.SegmentAge = time.Hour
	l := mustOpen(t, opts)
	defer l.Close()
	appendN(t, l, 1, 1, 0, 0, 10)
	c.Advance(59 * time.Minute)
	appendN(t, l, 1, 1, 0, 0, 10)
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("rolled early: %d segments", n)
	}
	c.Advance(time.Minute)
	appendN(t, l, 1, 1, 0, 0, 10)
	if got := l.Segments(); len(got) != 2 || got[1] != 2 {
		t.Fatalf("segments %v", got)
	}
	// EnforceRetention rolls an aged segment even without appends.
	c.Advance(2 * time.Hour)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); len(got) != 3 || got[2] != 3 {
		t.Fatalf("segments after retention %v", got)
	}
	// An empty active segment does not roll.
	c.Advance(2 * time.Hour)
	l.EnforceRetention()
	if n := len(l.Segments()); n != 3 {
		t.Fatalf("empty segment rolled: %d", n)
	}
}

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name           string
		retentionBytes int64
		retentionAge   time.Duration
		advance        time.Duration
		wantDeleted    int
		wantStart      int64
	}{
		{"unlimited", -1, 0, 0, 0, 0},
		{"bytes keep all", 100000, 0, 0, 0, 0},
		{"bytes", 2500, 0, 0, 4, 20}, // 6 segments of 880 bytes: 2640 still exceeds, keep 2
		{"bytes zero keeps active", 0, 0, 0, 5, 25},
		{"age none old", -1, time.Hour, 30 * time.Minute, 0, 0},
		{"age some old", -1, time.Hour, time.Hour + 75*time.Second, 3, 15}, // batch i has ts now+i*5s
		{"age all old", -1, time.Hour, 10 * time.Hour, 5, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			opts := testOptions(vfs.NewMem(), "/p", c)
			opts.SegmentBytes = 900
			opts.RetentionBytes = tc.retentionBytes
			opts.RetentionAge = tc.retentionAge
			l := mustOpen(t, opts)
			defer l.Close()
			now := c.Now().UnixMilli()
			for i := 0; i < 30; i++ {
				b := makeBatch(l.NextOffset(), 1, 0, now+int64(i)*5000, 100)
				if err := l.Append([][]byte{b}); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(l.Segments()); n != 6 {
				t.Fatalf("setup: %d segments", n)
			}
			c.Advance(tc.advance)
			deleted, err := l.EnforceRetention()
			if err != nil || deleted != tc.wantDeleted || l.StartOffset() != tc.wantStart {
				t.Fatalf("deleted %d start %d err %v; want %d %d", deleted, l.StartOffset(), err, tc.wantDeleted, tc.wantStart)
			}
			if tc.retentionBytes >= 0 && len(l.Segments()) > 1 && l.Size() > tc.retentionBytes {
				t.Fatalf("size %d over %d", l.Size(), tc.retentionBytes)
			}
			if _, err := l.Read(nil, tc.wantStart-1, 100, 1<<62, true); tc.wantStart > 0 && !isOutOfRange(err) {
				t.Fatalf("read below start: %v", err)
			}
			if _, err := l.Read(nil, tc.wantStart, 100, 1<<62, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAdvanceStartOffset(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1500
	l := mustOpen(t, opts)
	appendN(t, l, 20, 2, 0, 0, 100) // 5 batches (10 offsets) per segment
	if err := l.AdvanceStartOffset(23); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 23 || l.Segments()[0] != 20 {
		t.Fatalf("start %d segments %v", l.StartOffset(), l.Segments())
	}
	if _, err := l.Read(nil, 22, 1000, 1<<62, true); !isOutOfRange(err) {
		t.Fatalf("read below start: %v", err)
	}
	// The batch holding the start offset is served whole.
	got, err := l.Read(nil, 23, 1, 1<<62, true)
	if err != nil || batch.BaseOffset(got) != 22 {
		t.Fatalf("read at start: %v", err)
	}
	if err := l.AdvanceStartOffset(10); err != nil || l.StartOffset() != 23 {
		t.Fatal("start offset went down")
	}
	if err := l.AdvanceStartOffset(41); !isOutOfRange(err) {
		t.Fatalf("past end: %v", err)
	}
	l.Close()
	l = mustOpen(t, opts)
	if l.StartOffset() != 23 {
		t.Fatalf("start offset not persisted: %d", l.StartOffset())
	}
	// Up to the end: the active segment rolls and goes too.
	if err := l.AdvanceStartOffset(40); err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); len(got) != 1 || got[0] != 40 || l.Size() != 0 {
		t.Fatalf("segments %v size %d", got, l.Size())
	}
	appendN(t, l, 1, 1, 0, 0, 10)
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	if l.StartOffset() != 40 || l.NextOffset() != 41 {
		t.Fatalf("reopen: start %d next %d", l.StartOffset(), l.NextOffset())
	}
}

func TestTruncateTo(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1500
	l := mustOpen(t, opts)
	batches := appendN(t, l, 20, 2, 0, 0, 100) // 5 batches (10 offsets) per segment
	for _, tc := range []struct {
		offset int64
		want   error
	}{
		{41, ErrOffsetOutOfRange},
		{13, ErrNotBoundary},
		{-1, ErrOffsetOutOfRange},
	} {
		if err := l.TruncateTo(tc.offset); !errors.Is(err, tc.want) {
			t.Errorf("TruncateTo(%d) = %v, want %v", tc.offset, err, tc.want)
		}
	}
	if err := l.TruncateTo(40); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(14); err != nil {
		t.Fatal(err)
	}
	if l.NextOffset() != 14 || l.EndOffset() != 14 || len(l.Segments()) != 2 {
		t.Fatalf("next %d segments %v", l.NextOffset(), l.Segments())
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches[:7], nil)) {
		t.Fatal("content after truncate")
	}
	// Truncating to a segment's base offset empties it.
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); len(got) != 2 || l.snapshot().segments[1].Size() != 0 {
		t.Fatalf("segments %v", got)
	}
	more := appendN(t, l, 3, 2, 1, 0, 100)
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	want := bytes.Join(append(append([][]byte(nil), batches[:5]...), more...), nil)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) || l.NextOffset() != 16 {
		t.Fatalf("after reopen: next %d", l.NextOffset())
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	opts := testOptions(vfs.NewMem(), "/p", newClock())
	opts.SegmentBytes = 2000
	l := mustOpen(t, opts)
	defer l.Close()
	// Timestamps wobble: batch i has records at base ts (i*100 - (i%3)*150).
	var batches [][]byte
	for i := 0; i < 60; i++ {
		b := makeBatch(l.NextOffset(), 2, 0, int64(i*100-(i%3)*150), 60)
		if err := l.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	if len(l.Segments()) < 3 {
		t.Fatal("want several segments")
	}
	ref := func(ts int64) (int64, int64, bool) {
		for _, b := range batches {
			h, _ := batch.ParseHeader(b)
			if h.MaxTimestamp >= ts {
				return h.BaseOffset, h.MaxTimestamp, true
			}
		}
		return 0, 0, false
	}
	for ts := int64(-500); ts < 6500; ts += 13 {
		gb, gm, gf, err := l.OffsetForTimestamp(ts)
		wb, wm, wf := ref(ts)
		if err != nil || gb != wb || gm != wm || gf != wf {
			t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v; want %d %d %v", ts, gb, gm, gf, err, wb, wm, wf)
		}
	}
}

func TestEpochCache(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	l := mustOpen(t, opts)
	if l.LatestEpoch() != -1 {
		t.Fatal("empty cache")
	}
	if off, ep := l.EndOffsetForEpoch(0); off != -1 || ep != -1 {
		t.Fatalf("empty: %d %d", off, ep)
	}
	// epochs: 1 at 0, 3 at 4, 5 at 8; end 12. A batch with an older epoch changes nothing.
	for _, e := range []int32{1, 1, 3, 1, 5, 5} {
		if err := l.Append([][]byte{makeBatch(l.NextOffset(), 2, e, 0, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []EpochEntry{{1, 0}, {3, 4}, {5, 8}}
	check := func(l *Log, want []EpochEntry) {
		t.Helper()
		got := l.EpochEntries()
		if len(got) != len(want) {
			t.Fatalf("epochs %v want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("epochs %v want %v", got, want)
			}
		}
	}
	check(l, want)
	for _, tc := range []struct {
		epoch     int32
		wantEnd   int64
		wantEpoch int32
	}{
		{0, 0, 0}, // older than the first: the first start offset
		{1, 4, 1}, // next epoch's start
		{2, 4, 1}, // not an epoch of ours: the largest below it
		{3, 8, 3},
		{4, 8, 3},
		{5, 12, 5},  // latest: log end
		{6, -1, -1}, // newer than anything
		{-1, -1, -1},
	} {
		if end, ep := l.EndOffsetForEpoch(tc.epoch); end != tc.wantEnd || ep != tc.wantEpoch {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.epoch, end, ep, tc.wantEnd, tc.wantEpoch)
		}
	}
	if l.LatestEpoch() != 5 {
		t.Fatal("latest")
	}
	// Truncation trims.
	if err := l.TruncateTo(8); err != nil {
		t.Fatal(err)
	}
	check(l, want[:2])
	l.Close()
	l = mustOpen(t, opts)
	check(l, want[:2])
	l.Close()
	// Missing checkpoint: rebuilt from the batches.
	if err := fs.Remove("/p/" + leaderEpochCheckpoint); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, opts)
	check(l, want[:2])
	// Advancing the start offset moves the first entry's start.
	if err := l.AdvanceStartOffset(5); err != nil {
		t.Fatal(err)
	}
	check(l, []EpochEntry{{3, 5}})
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	check(l, []EpochEntry{{3, 5}}) // epoch 1 lies wholly below the start offset
}

// TestRecoveryCorruptMiddleDeletesLater corrupts a batch in the middle of a sealed segment that
// is above the recovery point: it is truncated there and every later segment deleted.
func TestRecoveryCorruptMiddleDeletesLater(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 900
	l := mustOpen(t, opts)
	batches := appendN(t, l, 15, 1, 0, 0, 100) // 3 segments of 5
	l.Close()
	// Forget the recovery point: everything is validated.
	fs.Remove("/p/" + recoveryPointCheckpoint)
	path := segment.FileName("/p", 5, segment.LogSuffix)
	f, _ := fs.OpenFile(path, 2, 0)
	pos := int64(len(batches[5]) + len(batches[6]) + 80)
	one := make([]byte, 1)
	f.ReadAt(one, pos)
	one[0] ^= 0x55
	f.WriteAt(one, pos)
	f.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	if l.NextOffset() != 7 || len(l.Segments()) != 2 {
		t.Fatalf("next %d segments %v", l.NextOffset(), l.Segments())
	}
	if _, err := fs.Stat(segment.FileName("/p", 10, segment.LogSuffix)); err == nil {
		t.Fatal("segment after the corruption not deleted")
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches[:7], nil)) {
		t.Fatal("content")
	}
	appendN(t, l, 1, 1, 0, 0, 10)
}
