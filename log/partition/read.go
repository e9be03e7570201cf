package partition

import (
	"errors"
	"fmt"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
)

// Read appends to dst whole batches starting with the batch that contains offset, stopping before
// any batch whose base offset is >= maxOffset (the caller's high watermark) and before exceeding
// maxBytes in total, except that when minOne is true and the first batch alone is larger than
// maxBytes it is returned whole (KIP-74). It reads from one segment per call. offset below
// StartOffset or above EndOffset gives ErrOffsetOutOfRange; offset == maxOffset (or EndOffset)
// returns dst unchanged. Safe from any goroutine.
//
// An offset in a hole of the log (offsets recovery found missing) reads from the next batch
// after the hole, as a fetch at an offset a compacted log no longer holds does in Kafka.
//
// The first batch may start before offset (it contains it), and before StartOffset when the start
// offset lies inside a batch: consumers skip the records below the offset they asked for.
func (l *Log) Read(dst []byte, offset int64, maxBytes int, maxOffset int64, minOne bool) ([]byte, error) {
	// Load the end before the segments: everything below an end offset we saw is published in
	// any snapshot loaded after it.
	start, end := l.startOffset.Load(), l.endOffset.Load()
	if offset < start || offset > end {
		return dst, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset >= maxOffset || offset == end {
		return dst, nil
	}
	for attempt := 0; ; attempt++ {
		snap := l.snapshot()
		seg, from := snap.segmentFrom(offset)
		if seg == nil {
			return dst, fmt.Errorf("%w: %d below the first segment", ErrOffsetOutOfRange, offset)
		}
		if from >= maxOffset {
			return dst, nil
		}
		out, err := seg.Read(dst, from, maxBytes, maxOffset, minOne)
		if err != nil {
			// The cleaner replaced the segment after we loaded the list: read the new one.
			if errors.Is(err, segment.ErrDeleted) && attempt < 3 && l.snapshot() != snap {
				continue
			}
			return dst, readError(from, err)
		}
		return out, nil
	}
}

// readError maps a segment that went away under the reader (retention, truncation) to
// ErrOffsetOutOfRange, which tells a consumer to look up the offsets again.
func readError(offset int64, err error) error {
	if errors.Is(err, segment.ErrDeleted) || errors.Is(err, segment.ErrNotInSegment) {
		return fmt.Errorf("%w: %d: %w", ErrOffsetOutOfRange, offset, err)
	}
	return err
}

// OffsetForTimestamp returns the base offset and max timestamp of the first batch whose
// maxTimestamp >= ts, found through the time indexes; found=false when there is none. A base
// offset below StartOffset is raised to it. Safe from any goroutine.
func (l *Log) OffsetForTimestamp(ts int64) (baseOffset int64, maxTimestamp int64, found bool, err error) {
	for attempt := 0; ; attempt++ {
		snap := l.snapshot()
		base, maxTs, ok, err := snap.offsetForTimestamp(ts)
		if err != nil && errors.Is(err, segment.ErrDeleted) && attempt < 3 && l.snapshot() != snap {
			continue // the cleaner replaced a segment meanwhile
		}
		if err != nil {
			return 0, 0, false, readError(ts, err)
		}
		if ok {
			return max(base, l.startOffset.Load()), maxTs, true, nil
		}
		return 0, 0, false, nil
	}
}

func (s *snapshot) offsetForTimestamp(ts int64) (baseOffset int64, maxTimestamp int64, found bool, err error) {
	for _, seg := range s.segments {
		if seg.MaxTimestamp() < ts {
			continue
		}
		base, maxTs, ok, err := seg.FindTimestamp(ts)
		if err != nil || ok {
			return base, maxTs, ok, err
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp is the largest batch max timestamp in the log (-1 when empty): the answer
// ListOffsets gives for the max-timestamp query (KIP-734) is then found with OffsetForTimestamp.
func (l *Log) MaxTimestamp() int64 {
	maxTs := int64(-1)
	for _, s := range l.snapshot().segments {
		maxTs = max(maxTs, s.MaxTimestamp())
	}
	return maxTs
}

// ScanHeaders calls fn with the header of every batch whose offsets reach from or beyond, oldest
// first. It is used to rebuild state kept beside the log, such as producer sequence numbers, at
// start-up; call it before appends begin.
func (l *Log) ScanHeaders(from int64, fn func(h batch.Header) error) error {
	for _, s := range l.snapshot().segments {
		if s.NextOffset() <= from {
			continue // wholly before from
		}
		// Headers only, from the batch holding from: recovery validated (or trusted) them all,
		// and a start after a crash reads what follows the last snapshot, not whole segments.
		err := s.Headers(from, func(h batch.Header) error {
			if h.NextOffset() <= from {
				return nil
			}
			return fn(h)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
