package partition

import (
	"time"

	"github.com/thorstream/thorstream/log/segment"
)

// Limits are the roll and retention settings of an open Log: the ones a topic config change
// moves while the partition keeps serving. They mean what the fields of the same names in
// Options mean.
type Limits struct {
	SegmentBytes   int64         // roll before an append would make the active segment larger; <=0: DefaultSegmentBytes
	SegmentAge     time.Duration // roll when the active segment's first append is older; 0 = never
	RetentionBytes int64         // delete oldest whole segments while the total exceeds; <0 = unlimited
	RetentionAge   time.Duration // delete segments whose largest timestamp is older; <=0 = unlimited
}

// Limits returns the log's current limits. Writer goroutine only.
func (l *Log) Limits() Limits {
	return Limits{
		SegmentBytes:   l.opts.SegmentBytes,
		SegmentAge:     l.opts.SegmentAge,
		RetentionBytes: l.opts.RetentionBytes,
		RetentionAge:   l.opts.RetentionAge,
	}
}

// SetLimits replaces the log's roll and retention limits. Writer goroutine only: the writer
// reads them on every Append and EnforceRetention, and readers never do.
//
// Nothing moves at once. The next Append rolls if the active segment is already past a smaller
// SegmentBytes or older than a shorter SegmentAge (so a segment larger than the new size is
// sealed as it is, never split); the next EnforceRetention applies the retention limits.
func (l *Log) SetLimits(lim Limits) {
	if lim.SegmentBytes <= 0 {
		lim.SegmentBytes = DefaultSegmentBytes
	}
	if lim.SegmentBytes > segment.MaxSize {
		lim.SegmentBytes = segment.MaxSize
	}
	l.opts.SegmentBytes = lim.SegmentBytes
	l.opts.SegmentAge = lim.SegmentAge
	l.opts.RetentionBytes = lim.RetentionBytes
	l.opts.RetentionAge = lim.RetentionAge
}
