package partition

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestSetLimits moves every limit of an open log and checks the next append and retention pass
// follow the new values, not the ones the log was opened with.
func TestSetLimits(t *testing.T) {
	c := newClock()
	opts := testOptions(vfs.NewMem(), "/p", c)
	l := mustOpen(t, opts)
	defer l.Close()

	if got := l.Limits(); got.SegmentBytes != DefaultSegmentBytes || got.SegmentAge != 0 || got.RetentionBytes != -1 || got.RetentionAge != 0 {
		t.Fatalf("limits after open: %+v", got)
	}
	appendN(t, l, 10, 1, 0, c.Now().UnixMilli(), 100) // ~170 bytes each, one segment
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments before the change", n)
	}

	// A segment size below what the active segment holds: the next append rolls, and from then
	// on segments hold about five batches.
	l.SetLimits(Limits{SegmentBytes: 1000, RetentionBytes: -1})
	appendN(t, l, 10, 1, 0, c.Now().UnixMilli(), 100)
	if segs := l.Segments(); len(segs) != 3 || segs[1] != 10 || segs[2] != 15 {
		t.Fatalf("segments after a smaller segment size: %v", segs)
	}

	// Retention by size keeps the newest segments whose total fits.
	l.SetLimits(Limits{SegmentBytes: 1000, RetentionBytes: 1000})
	deleted, err := l.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 2 || l.StartOffset() != 15 {
		t.Fatalf("retention by size deleted %d segments, start offset %d", deleted, l.StartOffset())
	}

	// Roll by age, then retention by age: the sealed segment is older than the new retention.
	l.SetLimits(Limits{SegmentBytes: 1000, SegmentAge: time.Hour, RetentionBytes: -1, RetentionAge: time.Minute})
	c.Advance(2 * time.Hour)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if segs := l.Segments(); len(segs) != 1 || segs[0] != 20 || l.StartOffset() != 20 {
		t.Fatalf("after roll and retention by age: segments %v, start %d", segs, l.StartOffset())
	}

	// Out-of-range sizes are clamped as Open clamps them.
	l.SetLimits(Limits{SegmentBytes: 0})
	if got := l.Limits().SegmentBytes; got != DefaultSegmentBytes {
		t.Fatalf("segment bytes 0 became %d", got)
	}
	l.SetLimits(Limits{SegmentBytes: segment.MaxSize + 1})
	if got := l.Limits().SegmentBytes; got != segment.MaxSize {
		t.Fatalf("segment bytes past the maximum became %d", got)
	}
}
