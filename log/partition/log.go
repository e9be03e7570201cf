// Package partition is a partition's log: an ordered list of segments in one directory.
//
// # Directory layout
//
//	<dir>/
//	  00000000000000000000.log          segments, named by base offset (see package segment)
//	  00000000000000000000.index
//	  00000000000000000000.timeindex
//	  00000000000000001234.log          ... the last segment is the active one
//	  leader-epoch-checkpoint           epoch → first offset, rewritten when it changes
//	  log-start-offset-checkpoint       the log start offset (AdvanceStartOffset, retention, ResetTo)
//	  recovery-point-offset-checkpoint  segments wholly below it were fsynced
//	  cleaner-offset-checkpoint         the cleaner's progress (compacted topics, see clean.go)
//	  00000000000000001234.log.dropped-<unix ms>   bytes recovery cut off segment 1234 (Open)
//	  00000000000000005678.log.diverged-<unix ms>  batches TruncateTo cut off, from offset 5678 on
//	  log-reset-offset-checkpoint       only while a ResetTo is under way (its commit point)
//
// The files of cut-off bytes (.dropped- and .diverged-, with -<n> appended when two share a
// millisecond) are kept for the operator and bounded together by MaxDroppedFiles and
// MaxDroppedBytes, the newest kept.
//
// # Concurrency
//
// One writer goroutine owns a Log: Append, Sync, TruncateTo, ResetTo, AdvanceStartOffset,
// EnforceRetention and Close. Any goroutine may call the reader methods (Read,
// OffsetForTimestamp, StartOffset, EndOffset, DurableEnd, Size, LatestEpoch, EndOffsetForEpoch,
// DivergedBytes) at any time.
// Readers see an immutable snapshot of the segment list through an atomic.Pointer; inside a
// segment they read only below its published size, which the writer raises after a write
// completed, so a reader never sees a torn batch. A segment deleted under a reader makes that
// read return ErrOffsetOutOfRange.
//
// # Failure
//
// An I/O error on a write or an fsync fences the log: the page cache can no longer be trusted to
// match the disk (an fsync error may have dropped dirty pages), so every later Append, Sync and
// other writer call returns an error wrapping ErrFenced and the cause. Readers keep serving what
// was published before. The broker reports KAFKA_STORAGE_ERROR and reopens the log (recovery then
// decides what survived); data that Append and then Sync succeeded for is never lost.
package partition

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// Options configure a Log.
type Options struct {
	FS                 vfs.FS        // required
	Dir                string        // created if missing
	SegmentBytes       int64         // roll before an append would make the active segment larger; default 1 GiB
	SegmentAge         time.Duration // roll when the active segment's first append is older; 0 = never
	RetentionBytes     int64         // delete oldest whole segments while the total exceeds; <0 = unlimited
	RetentionAge       time.Duration // delete segments whose largest timestamp is older; <=0 = unlimited
	IndexIntervalBytes int           // default 4096
	// MaxDroppedFiles and MaxDroppedBytes bound the files of bytes cut off by recovery and by
	// TruncateTo kept in the directory (the newest are kept; those of the current open's recovery
	// always; a truncation cutting more than MaxDroppedBytes keeps nothing); defaults 10 and
	// 2 GiB.
	MaxDroppedFiles int
	MaxDroppedBytes int64
	// Files bounds the open .log files of sealed segments, shared by every log of a broker
	// (default segment.DefaultFileCache).
	Files  *segment.FileCache
	Logger *zap.Logger      // default zap.NewNop()
	Now    func() time.Time // default time.Now
}

// Defaults of Options.
const (
	DefaultSegmentBytes    = 1 << 30
	DefaultMaxDroppedFiles = 10
	DefaultMaxDroppedBytes = 2 << 30
)

// Errors. Fenced errors wrap ErrFenced and the I/O error that caused the fence.
var (
	ErrOffsetOutOfRange = errors.New("log/partition: offset out of range")
	ErrFenced           = errors.New("log/partition: fenced")
	ErrNotContiguous    = errors.New("log/partition: batches not contiguous")
	ErrNotBoundary      = errors.New("log/partition: offset is not a batch boundary")
	ErrClosed           = errors.New("log/partition: closed")
)

// snapshot is the immutable list of segments readers work on, oldest first.
type snapshot struct {
	segments []*segment.Segment
}

// Log is a partition's log. See the package doc for who may call what.
type Log struct {
	opts        Options
	fs          vfs.FS
	dir         string
	logger      *zap.Logger
	segmentOpts segment.Options

	// Published to readers.
	segments      atomic.Pointer[snapshot]
	startOffset   atomic.Int64
	endOffset     atomic.Int64
	epochs        atomic.Pointer[[]EpochEntry]
	durableEnd    atomic.Int64               // syncedEnd, for the cleaner and DurableEnd
	cleanState    atomic.Pointer[cleanState] // the cleaner checkpoint; written by the writer
	divergedBytes atomic.Int64               // bytes TruncateTo cut off since Open

	// Writer-only.
	active            *segment.Segment
	activeFirstAppend time.Time // zero until the active segment's first append
	activeUnsynced    bool      // the active segment was written since the last Sync
	rolledUnsynced    []*segment.Segment
	dirUnsynced       bool     // files were created or removed since the last Sync
	recoveryPoint     int64    // offsets below are durable, and so are the indexes that cover them
	syncedEnd         int64    // the log end offset as of the last successful Sync
	droppedThisOpen   []string // files of cut-off bytes this open made (never pruned)
	epochCache        epochCache
	fenceErr          error
	closed            bool
	validateFrom      int64 // Open: a segment base whose cleaned-segment swap was just completed (-1 none)
}

func (o *Options) fill() error {
	if o.FS == nil {
		return errors.New("log/partition: Options.FS is required")
	}
	if o.Dir == "" {
		return errors.New("log/partition: Options.Dir is required")
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes > segment.MaxSize {
		o.SegmentBytes = segment.MaxSize
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = segment.DefaultIndexIntervalBytes
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxDroppedFiles <= 0 {
		o.MaxDroppedFiles = DefaultMaxDroppedFiles
	}
	if o.MaxDroppedBytes <= 0 {
		o.MaxDroppedBytes = DefaultMaxDroppedBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

func (l *Log) snapshot() *snapshot { return l.segments.Load() }

// publish replaces the segment list readers see.
func (l *Log) publish(segments []*segment.Segment) {
	l.segments.Store(&snapshot{segments: segments})
}

func (l *Log) publishEpochs() {
	entries := l.epochCache.entries
	l.epochs.Store(&entries)
}

// fence records the first I/O failure; every later writer call returns it.
func (l *Log) fence(op string, err error) error {
	if l.fenceErr == nil {
		l.fenceErr = fmt.Errorf("%w after %s error: %w", ErrFenced, op, err)
		l.logger.Error("partition log fenced", zap.String("dir", l.dir), zap.String("op", op), zap.Error(err))
	}
	return l.fenceErr
}

func (l *Log) writerCheck() error {
	if l.closed {
		return ErrClosed
	}
	return l.fenceErr
}

// NextOffset is the log end offset: the offset the next batch gets. Writer goroutine only.
func (l *Log) NextOffset() int64 { return l.active.NextOffset() }

// StartOffset is the first offset readers may read.
func (l *Log) StartOffset() int64 { return l.startOffset.Load() }

// EndOffset is NextOffset for any goroutine.
func (l *Log) EndOffset() int64 { return l.endOffset.Load() }

// Size is the bytes on disk of all segments' .log files.
func (l *Log) Size() int64 {
	var total int64
	for _, s := range l.snapshot().segments {
		total += s.Size()
	}
	return total
}

// Segments lists the base offsets of the current segments, oldest first.
func (l *Log) Segments() []int64 {
	segs := l.snapshot().segments
	out := make([]int64, len(segs))
	for i, s := range segs {
		out[i] = s.BaseOffset()
	}
	return out
}

// LatestEpoch is the newest leader epoch in the log, -1 when none.
func (l *Log) LatestEpoch() int32 {
	entries := *l.epochs.Load()
	if len(entries) == 0 {
		return -1
	}
	return entries[len(entries)-1].Epoch
}

// EpochEntries returns the leader epoch cache, oldest first.
func (l *Log) EpochEntries() []EpochEntry {
	return append([]EpochEntry(nil), *l.epochs.Load()...)
}

// EndOffsetForEpoch answers OffsetsForLeaderEpoch: for the largest epoch <= epoch it returns that
// epoch and its end offset (the next epoch's start offset, or the log end offset for the latest
// epoch); (-1, -1) when the cache is empty or epoch is newer than the latest.
func (l *Log) EndOffsetForEpoch(epoch int32) (endOffset int64, epochFound int32) {
	c := epochCache{entries: *l.epochs.Load()}
	return c.endOffsetFor(epoch, l.endOffset.Load())
}

// segmentFrom returns the segment to read offset from, and the offset to read: offset itself, or
// the next segment's base offset when offset lies in a hole after the end of its segment (a
// segment recovery found missing, or batches the cleaner removed). A sealed segment's end never moves, and the active one has no
// successor, so the answer is stable for offsets below an end offset loaded before the snapshot.
func (s *snapshot) segmentFrom(offset int64) (*segment.Segment, int64) {
	i := sort.Search(len(s.segments), func(i int) bool { return s.segments[i].BaseOffset() > offset })
	if i == 0 {
		return nil, offset
	}
	seg := s.segments[i-1]
	// Past the segment's last batch: the next segment with a batch at or after offset (the
	// cleaner can leave a segment with no batch at all).
	for offset >= seg.NextOffset() && i < len(s.segments) {
		seg = s.segments[i]
		offset = max(offset, seg.BaseOffset())
		i++
	}
	return seg, offset
}
