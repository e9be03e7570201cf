package partition

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// Log compaction (cleanup.policy=compact), Kafka's algorithm:
//
//   - The log is split at the first dirty offset (the cleaner checkpoint): below it, what earlier
//     passes cleaned; from it up to the first uncleanable offset, the dirty part. The active
//     segment, what is not durable yet, what is above the high watermark and segments younger
//     than min.compaction.lag.ms are never cleaned.
//   - A pass maps every key of the dirty part to its latest offset (OffsetMap, bounded: when it is
//     full the pass stops mapping there and the rest waits for the next pass), then rewrites every
//     segment from the log start up to where the map ends, keeping a record when it is the latest
//     of its key, or beyond the mapped part. Tombstones (null values) are kept until
//     delete.retention.ms after the pass that first cleaned them. Records without a key are
//     removed, as Kafka's cleaner does. Offsets, timestamps and headers of kept records are
//     unchanged: a partially kept batch keeps its base offset, last offset delta, producer fields
//     and codec; an idempotent producer's last batch is kept (empty if need be) so deduplication
//     survives.
//   - Consecutive segments are merged while the result fits segment.bytes.
//
// The swap, for each group of segments (see docs/STORAGE.md):
//
//  1. The cleaner writes <base>.log.cleaned and its indexes and fsyncs them (off the writer).
//  2. On the writer goroutine: the segments are checked to still be in the log; the cleaner
//     checkpoint is rewritten naming the swap (the commit point) with the new first dirty offset.
//  3. The old segments are retired (readers holding them keep an open descriptor), the other old
//     segments' files are removed, the cleaned files are renamed to the live names (indexes
//     first), the new segment list is published, the old segments closed.
//  4. The directory is synced and the checkpoint rewritten without the swap.
//
// Open completes a swap named in the checkpoint and removes cleaned files of any other.

const cleanerCheckpoint = "cleaner-offset-checkpoint"

// Entry kinds of the cleaner checkpoint (three fields per line: kind, a, b).
const (
	cleanFirstDirty = 0 // a: the first dirty offset
	cleanHorizon    = 1 // a: offsets below were first cleaned by the pass at b (unix ms)
	cleanSwap       = 2 // a: base offset of the cleaned segment, b: one segment it replaces
)

// maxHorizons bounds the checkpoint: older horizons are merged, keeping the later time
// (tombstones are then kept longer, never shorter).
const maxHorizons = 64

type horizon struct{ offset, ms int64 }

// cleanState is the cleaner's progress, published to the cleaner goroutine by the writer.
type cleanState struct {
	firstDirty int64
	horizons   []horizon // offsets ascending (and so times)
}

type pendingSwap struct {
	base     int64
	replaced []int64
}

// Errors of cleaning.
var (
	// ErrCleanAborted is a pass given up because the log changed under it (retention, a
	// truncation, a shutdown); nothing was lost and the next pass starts over.
	ErrCleanAborted = errors.New("log/partition: cleaning aborted")
)

func (st *cleanState) lines(swap *pendingSwap) [][]int64 {
	lines := [][]int64{{cleanFirstDirty, st.firstDirty, 0}}
	for _, h := range st.horizons {
		lines = append(lines, []int64{cleanHorizon, h.offset, h.ms})
	}
	if swap != nil {
		for _, b := range swap.replaced {
			lines = append(lines, []int64{cleanSwap, swap.base, b})
		}
	}
	return lines
}

// firstCleanedMs is when offset was first cleaned (unix ms), false if never.
func (st *cleanState) firstCleanedMs(offset int64) (int64, bool) {
	i := sort.Search(len(st.horizons), func(i int) bool { return st.horizons[i].offset > offset })
	if i == len(st.horizons) {
		return 0, false
	}
	return st.horizons[i].ms, true
}

// withHorizon returns a copy of st with offsets below upTo marked first cleaned at ms (by the
// pass of that time), the first dirty offset raised to upTo, and expired horizons merged.
func (st *cleanState) withHorizon(upTo, ms int64, deleteRetention time.Duration) *cleanState {
	next := &cleanState{firstDirty: max(st.firstDirty, upTo), horizons: slices.Clone(st.horizons)}
	if n := len(next.horizons); n > 0 && next.horizons[n-1].ms == ms {
		next.horizons[n-1].offset = max(next.horizons[n-1].offset, upTo)
	} else if n == 0 || next.horizons[n-1].offset < upTo {
		next.horizons = append(next.horizons, horizon{upTo, ms})
	}
	// Everything below an expired horizon is expired: keep only the newest expired one.
	expiredBefore := ms - deleteRetention.Milliseconds()
	k := -1
	for i, h := range next.horizons {
		if h.ms <= expiredBefore {
			k = i
		}
	}
	if k > 0 {
		next.horizons = next.horizons[k:]
	}
	for len(next.horizons) > maxHorizons {
		next.horizons = slices.Delete(next.horizons, 0, 1) // the next one's later time covers them
	}
	return next
}

// loadCleanerState reads the cleaner checkpoint and finishes or undoes a swap a crash
// interrupted. It runs at Open before the segments are listed.
func (l *Log) loadCleanerState() error {
	st := &cleanState{}
	l.cleanState.Store(st)
	lines, err := readCheckpoint(l.fs, l.dir, cleanerCheckpoint, 3)
	names, derr := l.fs.ReadDir(l.dir)
	if derr != nil {
		return derr
	}
	var cleaned []string
	for _, name := range names {
		if filepath.Ext(name) == segment.CleanedSuffix {
			cleaned = append(cleaned, name)
		}
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		lines = nil
	case errors.Is(err, errBadCheckpoint):
		// Without the checkpoint a swap in progress cannot be told from an abandoned one: keep
		// the cleaned files (renamed so no later pass overwrites them) and start cleaning over.
		l.logger.Error("cleaner checkpoint unreadable: cleaning starts over; cleaned files kept aside",
			zap.String("dir", l.dir), zap.Error(err), zap.Strings("files", cleaned))
		for _, name := range cleaned {
			from := filepath.Join(l.dir, name)
			if err := l.fs.Rename(from, segment.DroppedName(l.fs, from, l.opts.Now())); err != nil {
				return err
			}
		}
		l.dirUnsynced = true
		return nil
	case err != nil:
		return err
	}
	var swap *pendingSwap
	for _, f := range lines {
		switch f[0] {
		case cleanFirstDirty:
			st.firstDirty = f[1]
		case cleanHorizon:
			st.horizons = append(st.horizons, horizon{f[1], f[2]})
		case cleanSwap:
			if swap == nil {
				swap = &pendingSwap{base: f[1]}
			}
			swap.replaced = append(swap.replaced, f[2])
		}
	}
	if swap != nil {
		if err := l.completeSwap(swap); err != nil {
			return err
		}
		cleaned = nil
	}
	for _, name := range cleaned {
		l.logger.Info("removing the files of an unfinished cleaning", zap.String("dir", l.dir), zap.String("file", name))
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		l.dirUnsynced = true
	}
	if swap != nil {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpoint, st.lines(nil)); err != nil {
			return err
		}
		l.validateFrom = swap.base
	}
	return nil
}

// completeSwap finishes a swap the checkpoint committed: the replaced segments' files go, the
// cleaned files take the live names. Idempotent.
func (l *Log) completeSwap(swap *pendingSwap) error {
	logCleaned := segment.FileName(l.dir, swap.base, segment.LogSuffix) + segment.CleanedSuffix
	_, err := l.fs.Stat(logCleaned)
	installing := err == nil
	l.logger.Warn("completing a cleaned-segment swap interrupted by a crash", zap.String("dir", l.dir),
		zap.Int64("base_offset", swap.base), zap.Int64s("replaced", swap.replaced), zap.Bool("renaming", installing))
	for _, b := range swap.replaced {
		if b == swap.base && !installing {
			continue // already the cleaned segment
		}
		for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix} {
			if b == swap.base && suffix == segment.LogSuffix {
				continue // replaced by the rename below
			}
			if err := l.fs.Remove(segment.FileName(l.dir, b, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	for _, pair := range segment.CleanedFiles(l.dir, swap.base) {
		if err := l.fs.Rename(pair[0], pair[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	// Remove cleaned files of other bases, if any.
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if filepath.Ext(name) == segment.CleanedSuffix {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	l.dirUnsynced = true
	return nil
}

// CleanOptions are the settings of one cleaning pass, from the topic's configs.
type CleanOptions struct {
	Now               time.Time
	MinCleanableRatio float64       // min.cleanable.dirty.ratio
	MinCompactionLag  time.Duration // min.compaction.lag.ms: younger segments are not cleaned
	MaxCompactionLag  time.Duration // max.compaction.lag.ms: older dirty data is cleaned whatever the ratio; <=0 none
	DeleteRetention   time.Duration // delete.retention.ms
	SegmentBytes      int64         // segments are merged while the result fits; default DefaultSegmentBytes
	// MaxOffset, when positive: nothing at or above it is cleaned (the high watermark).
	MaxOffset int64
	// Force cleans whatever the dirty ratio (an operator's request, tests).
	Force bool
	// Map is the offset map to use (required); its budget bounds the pass's memory.
	Map *OffsetMap
	// ReadBufferBytes is how much is read at a time; default 1 MiB.
	ReadBufferBytes int
	// Throttle, when set, is called with the bytes just read and those about to be written, and
	// may sleep: the I/O rate limit.
	Throttle func(bytes int)
	// ProducerBatches, when set, returns for each idempotent producer the base offset of its
	// last batch in the log: those batches are kept.
	ProducerBatches func() map[int64]int64
	// OnWriter runs fn on the log's writer goroutine and returns its error (required).
	OnWriter func(fn func() error) error
	// Stop aborts the pass when closed.
	Stop <-chan struct{}
}

// CleanStats is what a pass did, or why it did nothing.
type CleanStats struct {
	Ran            bool
	Skipped        string // why no pass ran
	DirtyRatio     float64
	FirstDirty     int64 // before the pass
	EndMapped      int64 // the new first dirty offset
	KeysMapped     int
	MapBytes       int64
	BytesRead      int64
	BytesWritten   int64
	Records        int64 // records read in the rewritten segments
	Removed        int64 // records removed (superseded, expired tombstones, no key)
	Tombstones     int64 // of which expired tombstones
	SegmentsBefore int
	SegmentsAfter  int
	Duration       time.Duration
}

// CleanerProgress is how far cleaning got, for operators: the first dirty offset (offsets below
// were cleaned) and the dirty bytes from it to the log end.
type CleanerProgress struct {
	FirstDirty int64
	DirtyBytes int64
	CleanBytes int64
}

// CleanerProgress reports the cleaner's position. Safe from any goroutine.
func (l *Log) CleanerProgress() CleanerProgress {
	st := l.cleanState.Load()
	first := max(st.firstDirty, l.startOffset.Load())
	var p CleanerProgress
	p.FirstDirty = first
	for _, s := range l.snapshot().segments {
		if s.BaseOffset() < first && s.NextOffset() <= first {
			p.CleanBytes += s.Size()
		} else {
			p.DirtyBytes += s.Size()
		}
	}
	return p
}

// cleanRange is what a pass would clean.
type cleanRange struct {
	segs       []*segment.Segment // the snapshot
	firstDirty int64
	end        int64 // first uncleanable offset (a segment base)
	endIndex   int   // index in segs of the first uncleanable segment
	ratio      float64
	dirty      int64
	mustClean  bool // max.compaction.lag.ms exceeded
}

// DirtyRatio is the share of the cleanable part of the log not cleaned yet, and whether a pass is
// due under o. Safe from any goroutine: the scheduler calls it to pick the dirtiest log.
func (l *Log) DirtyRatio(o *CleanOptions) (ratio float64, due bool) {
	r := l.cleanable(o)
	if r == nil {
		return 0, false
	}
	return r.ratio, r.mustClean || o.Force || r.ratio >= o.MinCleanableRatio
}

func (l *Log) cleanable(o *CleanOptions) *cleanRange {
	segs := l.snapshot().segments
	if len(segs) < 2 {
		return nil
	}
	upper := min(segs[len(segs)-1].BaseOffset(), l.durableEnd.Load())
	if o.MaxOffset > 0 {
		upper = min(upper, o.MaxOffset)
	}
	lagCutoff := o.Now.Add(-o.MinCompactionLag).UnixMilli()
	k := 0 // first uncleanable segment
	for k < len(segs)-1 && segs[k+1].BaseOffset() <= upper && (o.MinCompactionLag <= 0 || segs[k].MaxTimestamp() <= lagCutoff) {
		k++
	}
	if k == 0 {
		return nil
	}
	st := l.cleanState.Load()
	first := max(st.firstDirty, l.startOffset.Load())
	end := segs[k].BaseOffset()
	if first >= end {
		return nil
	}
	r := &cleanRange{segs: segs, firstDirty: first, end: end, endIndex: k}
	var clean int64
	firstDirtySeg := -1
	for i := 0; i < k; i++ {
		s := segs[i]
		if s.NextOffset() <= first && (i+1 >= len(segs) || segs[i+1].BaseOffset() <= first) {
			clean += s.Size()
			continue
		}
		if firstDirtySeg < 0 {
			firstDirtySeg = i
		}
		r.dirty += s.Size()
	}
	if r.dirty+clean > 0 {
		r.ratio = float64(r.dirty) / float64(r.dirty+clean)
	}
	if o.MaxCompactionLag > 0 && firstDirtySeg >= 0 {
		cutoff := o.Now.Add(-o.MaxCompactionLag).UnixMilli()
		_ = segs[firstDirtySeg].Headers(first, func(h batch.Header) error {
			if h.BaseTimestamp <= cutoff || h.MaxTimestamp <= cutoff {
				r.mustClean = true
			}
			return errStopScan
		})
	}
	return r
}

var errStopScan = errors.New("stop")

// Clean runs one cleaning pass if one is due (see the package notes above and CleanOptions). It
// runs on a cleaner goroutine, never the writer's: it reads through the same path as fetches and
// hands each swap to the writer with o.OnWriter. ErrCleanAborted means the log changed meanwhile.
func (l *Log) Clean(o CleanOptions) (CleanStats, error) {
	begin := time.Now()
	var stats CleanStats
	if o.Map == nil || o.OnWriter == nil {
		return stats, errors.New("log/partition: CleanOptions.Map and OnWriter are required")
	}
	if o.Now.IsZero() {
		o.Now = l.opts.Now()
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.ReadBufferBytes <= 0 {
		o.ReadBufferBytes = 1 << 20
	}
	r := l.cleanable(&o)
	if r == nil {
		stats.Skipped = "nothing cleanable"
		return stats, nil
	}
	stats.DirtyRatio, stats.FirstDirty = r.ratio, r.firstDirty
	if !o.Force && !r.mustClean && r.ratio < o.MinCleanableRatio {
		stats.Skipped = fmt.Sprintf("dirty ratio %.2f below %.2f", r.ratio, o.MinCleanableRatio)
		return stats, nil
	}
	p := &cleanPass{l: l, o: &o, stats: &stats, st: l.cleanState.Load()}
	defer p.release()
	endMapped, err := p.buildMap(r)
	if err != nil {
		return stats, err
	}
	stats.EndMapped = endMapped
	stats.KeysMapped = o.Map.Len()
	stats.MapBytes = o.Map.Bytes()
	if o.ProducerBatches != nil {
		p.producerLast = o.ProducerBatches()
	}
	// The segments to rewrite: from the first up to the one holding the last mapped offset.
	n := 0
	for n < r.endIndex && r.segs[n].BaseOffset() < endMapped {
		n++
	}
	stats.SegmentsBefore = n
	for _, group := range groupSegments(r.segs[:n], o.SegmentBytes) {
		groupEnd := endMapped
		if last := group[len(group)-1]; last != r.segs[n-1] {
			groupEnd = min(endMapped, r.segs[slices.Index(r.segs, last)+1].BaseOffset())
		}
		if err := p.cleanGroup(group, endMapped, groupEnd); err != nil {
			return stats, err
		}
		stats.SegmentsAfter++
	}
	stats.Ran = true
	stats.Duration = time.Since(begin)
	return stats, nil
}

// groupSegments splits segs into runs merged into one cleaned segment each: a run stays within
// maxBytes (by the segments' sizes before cleaning) and within the indexes' 32-bit relative
// offsets.
func groupSegments(segs []*segment.Segment, maxBytes int64) [][]*segment.Segment {
	var groups [][]*segment.Segment
	for i := 0; i < len(segs); {
		j, size := i+1, segs[i].Size()
		for j < len(segs) && size+segs[j].Size() <= maxBytes && size+segs[j].Size() <= segment.MaxSize &&
			segs[j].NextOffset()-1-segs[i].BaseOffset() <= segment.MaxRelativeOffset {
			size += segs[j].Size()
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// cleanPass is one pass's working state, owned by the cleaner goroutine.
type cleanPass struct {
	l            *Log
	o            *CleanOptions
	stats        *CleanStats
	st           *cleanState
	producerLast map[int64]int64
	readBuf      []byte
	decompressed []byte
	kept         []byte // the records kept from one batch
	filtered     []byte // one rebuilt batch
	compressed   []byte // the same, compressed
	out          []byte // batches waiting to be appended to the cleaned segment
	outBatches   [][]byte
	rec          batch.Record
	cleaned      *segment.Segment // being written, removed if the pass fails
}

func (p *cleanPass) release() {
	if p.cleaned != nil {
		p.cleaned.Delete()
		p.cleaned = nil
	}
}

func (p *cleanPass) stopped() bool {
	if p.o.Stop == nil {
		return false
	}
	select {
	case <-p.o.Stop:
		return true
	default:
		return false
	}
}

// eachBatch calls fn with every batch of seg whose offsets reach from or beyond, reading
// ReadBufferBytes at a time (a larger batch whole).
func (p *cleanPass) eachBatch(seg *segment.Segment, from int64, fn func(b []byte, h *batch.Header) error) error {
	next := max(from, seg.BaseOffset())
	end := seg.NextOffset()
	for next < end {
		if p.stopped() {
			return ErrCleanAborted
		}
		buf, err := seg.Read(p.readBuf[:0], next, p.o.ReadBufferBytes, math.MaxInt64, true)
		if err != nil {
			if errors.Is(err, segment.ErrDeleted) || errors.Is(err, segment.ErrNotInSegment) {
				return fmt.Errorf("%w: segment %d went away: %w", ErrCleanAborted, seg.BaseOffset(), err)
			}
			return err
		}
		p.readBuf = buf
		if p.o.Throttle != nil {
			p.o.Throttle(len(buf)) // the bytes read: the next read waits for them
		}
		if len(buf) == 0 {
			return fmt.Errorf("%w: no batch at %d in segment %d", ErrCleanAborted, next, seg.BaseOffset())
		}
		p.stats.BytesRead += int64(len(buf))
		for rest := buf; len(rest) > 0; {
			h, err := batch.ParseHeader(rest)
			if err != nil || h.Size() > len(rest) {
				return fmt.Errorf("log/partition: cleaning %s: bad batch at offset %d: %v", seg.Path(), next, err)
			}
			b := rest[:h.Size()]
			rest = rest[h.Size():]
			next = h.NextOffset()
			if h.NextOffset() <= from {
				continue
			}
			if err := fn(b, &h); err != nil {
				return err
			}
		}
	}
	return nil
}

// records decompresses b's records section if need be and walks them.
func (p *cleanPass) records(b []byte, h *batch.Header, fn func(r *batch.Record, raw []byte) error) error {
	section := b[batch.HeaderSize:]
	if h.Codec() != batch.CodecNone {
		out, err := compress.Decompress(h.Codec(), p.decompressed[:0], section, maxCleanedBatch)
		if err != nil {
			return fmt.Errorf("log/partition: cleaning: batch at %d: %w", h.BaseOffset, err)
		}
		p.decompressed = out
		section = out
	}
	if err := batch.WalkRecords(h, section, &p.rec, fn); err != nil {
		return fmt.Errorf("log/partition: cleaning: batch at %d: %w", h.BaseOffset, err)
	}
	return nil
}

// maxCleanedBatch bounds what one batch decompresses to in the cleaner (the broker's own bound on
// what it accepts).
const maxCleanedBatch = 64 << 20

// buildMap maps the keys of the dirty part to their latest offsets and returns the offset where
// mapping stopped: r.end, or the first record whose key did not fit.
func (p *cleanPass) buildMap(r *cleanRange) (int64, error) {
	// Size the map for the records the dirty part holds at most.
	var records int64
	for _, s := range r.segs[:r.endIndex] {
		if s.NextOffset() <= r.firstDirty {
			continue
		}
		records += s.NextOffset() - max(s.BaseOffset(), r.firstDirty)
	}
	p.o.Map.Reserve(records)
	end := r.end
	full := errors.New("full")
	for _, s := range r.segs[:r.endIndex] {
		if s.NextOffset() <= r.firstDirty {
			continue
		}
		err := p.eachBatch(s, r.firstDirty, func(b []byte, h *batch.Header) error {
			if h.IsControl() {
				return nil
			}
			return p.records(b, h, func(rec *batch.Record, _ []byte) error {
				if rec.Offset < r.firstDirty || rec.Key == nil {
					return nil
				}
				if !p.o.Map.Put(rec.Key, rec.Offset) {
					end = rec.Offset
					return full
				}
				return nil
			})
		})
		if errors.Is(err, full) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if end <= r.firstDirty {
		return 0, fmt.Errorf("log/partition: the cleaner's offset map (%d bytes) holds no key; raise the dedupe buffer", p.o.Map.MaxBytes())
	}
	return end, nil
}

// cleanGroup rewrites one group of segments into a cleaned segment and swaps it in.
func (p *cleanPass) cleanGroup(group []*segment.Segment, endMapped, groupEnd int64) error {
	l := p.l
	base := group[0].BaseOffset()
	seg, err := segment.CreateCleaned(l.fs, l.dir, base, l.segmentOpts)
	if err != nil {
		return err
	}
	p.cleaned = seg
	nowMs := p.o.Now.UnixMilli()
	deleteBefore := nowMs - p.o.DeleteRetention.Milliseconds()
	for _, s := range group {
		err := p.eachBatch(s, s.BaseOffset(), func(b []byte, h *batch.Header) error {
			if h.IsControl() {
				return p.emit(b)
			}
			var kept, count int32
			maxTs := int64(-1)
			p.kept = p.kept[:0]
			err := p.records(b, h, func(rec *batch.Record, raw []byte) error {
				count++
				p.stats.Records++
				if !p.retain(rec, endMapped, deleteBefore) {
					p.stats.Removed++
					return nil
				}
				kept++
				p.kept = append(p.kept, raw...)
				maxTs = max(maxTs, rec.Timestamp)
				return nil
			})
			if err != nil {
				return err
			}
			switch {
			case kept == count && count > 0:
				return p.emit(b) // unchanged, byte for byte
			case kept == 0:
				if h.ProducerID >= 0 && p.producerLast != nil && p.producerLast[h.ProducerID] == h.BaseOffset {
					// The producer's last batch: keep its header so its sequence survives.
					p.filtered = batch.AppendFiltered(p.filtered[:0], b, nil, 0, h.MaxTimestamp)
					return p.emit(p.filtered)
				}
				return nil
			default:
				if h.LogAppendTime() {
					maxTs = h.MaxTimestamp
				}
				p.filtered = batch.AppendFiltered(p.filtered[:0], b, p.kept, kept, maxTs)
				if c := h.Codec(); c != batch.CodecNone {
					compressed, err := compress.CompressBatch(p.compressed[:0], p.filtered, c)
					if err != nil {
						return fmt.Errorf("log/partition: cleaning: recompressing the batch at %d: %w", h.BaseOffset, err)
					}
					p.compressed = compressed
					return p.emit(compressed)
				}
				return p.emit(p.filtered)
			}
		})
		if err != nil {
			return err
		}
	}
	if err := p.flush(); err != nil {
		return err
	}
	if err := seg.Sync(); err != nil {
		return err
	}
	if err := seg.SyncIndexes(); err != nil {
		return err
	}
	if err := seg.Seal(); err != nil {
		return err
	}
	err = p.o.OnWriter(func() error { return l.swapCleaned(seg, group, groupEnd, p.o) })
	if errors.Is(err, ErrFenced) {
		// The checkpoint on disk may name the swap: the cleaned files are for the next Open to
		// install or remove, not for the pass to delete (they may hold the only copy of the
		// group's records, under the live names once installed).
		if !slices.Contains(l.snapshot().segments, seg) {
			seg.Close()
		}
		p.cleaned = nil
	}
	if err != nil {
		return err
	}
	p.cleaned = nil
	p.stats.BytesWritten += seg.Size()
	return nil
}

// retain decides whether a record survives the pass.
func (p *cleanPass) retain(rec *batch.Record, endMapped, deleteBefore int64) bool {
	if rec.Offset >= endMapped {
		return true // beyond what this pass mapped
	}
	if rec.Key == nil {
		return false // a compacted log keeps records by key, as Kafka's cleaner does
	}
	if latest := p.o.Map.Get(rec.Key); latest > rec.Offset {
		return false // superseded
	}
	if rec.Value == nil {
		if ms, ok := p.st.firstCleanedMs(rec.Offset); ok && ms <= deleteBefore {
			p.stats.Tombstones++
			return false // a tombstone past delete.retention.ms since it was first cleaned
		}
	}
	return true
}

// emit queues one batch for the cleaned segment (copying it: b aliases a reused buffer).
func (p *cleanPass) emit(b []byte) error {
	if len(p.out)+len(b) > p.o.ReadBufferBytes && len(p.out) > 0 {
		if err := p.flush(); err != nil {
			return err
		}
	}
	p.out = append(p.out, b...)
	return nil
}

func (p *cleanPass) flush() error {
	if len(p.out) == 0 {
		return nil
	}
	for rest := p.out; len(rest) > 0; {
		n, _ := batch.Size(rest)
		p.outBatches = append(p.outBatches, rest[:n:n])
		rest = rest[n:]
	}
	if p.o.Throttle != nil {
		p.o.Throttle(len(p.out))
	}
	if err := p.cleaned.Append(p.outBatches); err != nil {
		return err
	}
	clear(p.outBatches)
	p.outBatches = p.outBatches[:0]
	p.out = p.out[:0]
	return nil
}

// swapCleaned replaces group by the cleaned segment (writer goroutine). ErrCleanAborted if the
// log changed since the pass read it.
func (l *Log) swapCleaned(cleaned *segment.Segment, group []*segment.Segment, groupEnd int64, o *CleanOptions) error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	segs := l.snapshot().segments
	i := slices.Index(segs, group[0])
	if i < 0 || i+len(group) >= len(segs) || !slices.Equal(segs[i:i+len(group)], group) {
		return fmt.Errorf("%w: the segments changed (retention or truncation)", ErrCleanAborted)
	}
	st := l.cleanState.Load().withHorizon(groupEnd, o.Now.UnixMilli(), o.DeleteRetention)
	swap := &pendingSwap{base: cleaned.BaseOffset()}
	for _, s := range group {
		swap.replaced = append(swap.replaced, s.BaseOffset())
	}
	// The commit point: from here a crash completes the swap at the next start.
	if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpoint, st.lines(swap)); err != nil {
		return l.fence("cleaner checkpoint", err)
	}
	l.cleanState.Store(st)
	for _, s := range group {
		if err := s.Retire(); err != nil {
			return l.fence("swap", err)
		}
	}
	for _, s := range group[1:] {
		if err := removeSegmentFiles(l, s.BaseOffset()); err != nil {
			return l.fence("swap", err)
		}
	}
	if err := cleaned.Install(); err != nil {
		return l.fence("swap", err)
	}
	next := make([]*segment.Segment, 0, len(segs)-len(group)+1)
	next = append(next, segs[:i]...)
	next = append(next, cleaned)
	next = append(next, segs[i+len(group):]...)
	l.publish(next)
	// Readers that loaded the old list read on through the retired descriptors until now; from
	// here their reads fail with ErrDeleted and Read retries on the new list.
	for _, s := range group {
		s.Discard()
	}
	for _, s := range group {
		for j, u := range l.rolledUnsynced {
			if u == s {
				l.rolledUnsynced = slices.Delete(l.rolledUnsynced, j, j+1)
				break
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fence("swap", err)
	}
	if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpoint, st.lines(nil)); err != nil {
		return l.fence("cleaner checkpoint", err)
	}
	l.logger.Debug("swapped in a cleaned segment", zap.String("dir", l.dir), zap.Int64("base_offset", cleaned.BaseOffset()),
		zap.Int("replaced", len(group)), zap.Int64("bytes", cleaned.Size()))
	return nil
}

// removeSegmentFiles removes the files of the segment at base without closing it.
func removeSegmentFiles(l *Log, base int64) error {
	for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix} {
		if err := l.fs.Remove(segment.FileName(l.dir, base, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	l.dirUnsynced = true
	return nil
}

// Compacted reports whether the segment .log file at path may have been rewritten by the log
// cleaner, so its batches may skip offsets (segment.VerifyCompacted and ScanCompacted accept
// that): its partition directory's cleaner checkpoint puts the first dirty offset above the
// segment's base offset. For tools reading a data directory.
func Compacted(fs vfs.FS, path string) bool {
	base, suffix, ok := segment.ParseFileName(filepath.Base(path))
	if !ok || suffix != segment.LogSuffix {
		return false
	}
	lines, err := readCheckpoint(fs, filepath.Dir(path), cleanerCheckpoint, 3)
	if err != nil {
		return false
	}
	for _, f := range lines {
		if f[0] == cleanFirstDirty && base < f[1] {
			return true
		}
	}
	return false
}
