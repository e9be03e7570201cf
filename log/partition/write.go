package partition

import (
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
)

// Append writes batches (each exactly one batch, already validated, baseOffset patched, the first
// at NextOffset and contiguous) with one Writev per segment they go to: as Kafka rolls before a
// batch that would overflow the active segment, a group of batches is split where a roll falls,
// so no segment grows past SegmentBytes by more than one batch. It does not fsync. In steady
// state it allocates nothing.
func (l *Log) Append(batches [][]byte) error { return l.appendBatches(batches, false) }

// AppendReplicated is Append for a follower copying its leader's batches: a batch may start
// after the end of the one before it (the leader's cleaner removed the batches in between), never
// before.
func (l *Log) AppendReplicated(batches [][]byte) error { return l.appendBatches(batches, true) }

func (l *Log) appendBatches(batches [][]byte, gaps bool) error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	if len(batches) == 0 {
		return nil
	}
	// Check framing and contiguity from the headers only: the caller validated the CRCs.
	next := l.active.NextOffset()
	for i, b := range batches {
		h, err := batch.ParseHeader(b)
		if err != nil {
			return fmt.Errorf("%w: batch %d: %w", ErrNotContiguous, i, err)
		}
		if h.Size() != len(b) {
			return fmt.Errorf("%w: batch %d has %d bytes, header says %d", ErrNotContiguous, i, len(b), h.Size())
		}
		if (h.BaseOffset != next && (!gaps || h.BaseOffset < next)) || h.LastOffsetDelta < 0 {
			return fmt.Errorf("%w: batch %d starts at %d, expected %d", ErrNotContiguous, i, h.BaseOffset, next)
		}
		if int64(len(b)) > segment.MaxSize {
			return fmt.Errorf("%w: batch %d has %d bytes, more than a segment holds", ErrNotContiguous, i, len(b))
		}
		next = h.NextOffset()
	}
	for len(batches) > 0 {
		run, size, runNext := l.fittingRun(batches)
		if err := l.maybeRoll(size, runNext); err != nil {
			return err
		}
		if err := l.active.Append(batches[:run]); err != nil {
			return l.fence("write", err)
		}
		if l.activeFirstAppend.IsZero() {
			l.activeFirstAppend = l.opts.Now()
		}
		l.activeUnsynced = true
		l.endOffset.Store(runNext)
		if err := l.assignEpochs(batches[:run]); err != nil {
			return err
		}
		batches = batches[run:]
	}
	return nil
}

// fittingRun is how many of batches (at least one) fit in the active segment together, their size
// and the offset after them. A run that does not fit a non-empty active segment is its first batch
// alone, which maybeRoll then puts in a new one.
func (l *Log) fittingRun(batches [][]byte) (n int, size, nextOffset int64) {
	activeSize, base := l.active.Size(), l.active.BaseOffset()
	for n < len(batches) {
		b := batches[n]
		h, _ := batch.ParseHeader(b) // checked by Append
		if n > 0 && (activeSize+size+int64(len(b)) > l.opts.SegmentBytes || h.LastOffset()-base > segment.MaxRelativeOffset) {
			break
		}
		size += int64(len(b))
		nextOffset = h.NextOffset()
		n++
	}
	return n, size, nextOffset
}

// assignEpochs records the leader epochs of appended batches, rewriting the checkpoint when one
// is new.
func (l *Log) assignEpochs(batches [][]byte) error {
	changed := false
	for _, b := range batches {
		h, _ := batch.ParseHeader(b)
		if l.epochCache.assign(h.PartitionLeaderEpoch, h.BaseOffset) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	l.publishEpochs()
	if err := writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, l.epochCache.lines()); err != nil {
		return l.fence("checkpoint write", err)
	}
	return nil
}

// maybeRoll starts a new segment when appending size bytes ending at nextOffset would overflow the
// active one (SegmentBytes, or the 32-bit relative offsets and positions of the indexes), or when
// the active segment is older than SegmentAge.
func (l *Log) maybeRoll(size, nextOffset int64) error {
	active := l.active
	if active.Size() == 0 {
		return nil
	}
	full := active.Size()+size > l.opts.SegmentBytes ||
		nextOffset-1-active.BaseOffset() > segment.MaxRelativeOffset
	if full || l.agedOut() {
		return l.roll()
	}
	return nil
}

func (l *Log) agedOut() bool {
	return l.opts.SegmentAge > 0 && !l.activeFirstAppend.IsZero() &&
		l.opts.Now().Sub(l.activeFirstAppend) >= l.opts.SegmentAge
}

// roll seals the active segment and starts a new one at the log end offset.
func (l *Log) roll() error {
	base := l.active.NextOffset()
	seg, err := segment.Create(l.fs, l.dir, base, l.segmentOpts)
	if err != nil {
		return l.fence("roll", err)
	}
	// Even if its .log was synced, the sealed segment's indexes still need a sync. Sealed now,
	// it holds no descriptor until a reader needs it, whether or not the policy ever syncs.
	if err := l.active.Seal(); err != nil {
		return l.fence("roll", err)
	}
	l.rolledUnsynced = append(l.rolledUnsynced, l.active)
	old := l.snapshot().segments
	segs := make([]*segment.Segment, len(old), len(old)+1)
	copy(segs, old)
	l.publish(append(segs, seg))
	l.active = seg
	l.activeFirstAppend = time.Time{}
	l.activeUnsynced = false
	l.dirUnsynced = true
	l.logger.Debug("rolled segment", zap.String("dir", l.dir), zap.Int64("base_offset", base))
	return nil
}

// Sync fdatasyncs every segment written since the last Sync (the active one and any rolled in
// between, with their indexes) and the directory if files were created or removed. When rolled
// segments became durable it advances the recovery point to the active segment's base offset.
func (l *Log) Sync() error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	for _, s := range l.rolledUnsynced {
		if err := s.Sync(); err != nil {
			return l.fence("sync", err)
		}
		if err := s.SyncIndexes(); err != nil {
			return l.fence("sync", err)
		}
	}
	if l.activeUnsynced {
		if err := l.active.Sync(); err != nil {
			return l.fence("sync", err)
		}
		l.activeUnsynced = false
	}
	if l.dirUnsynced {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fence("sync", err)
		}
		l.dirUnsynced = false
	}
	l.syncedEnd = l.active.NextOffset()
	l.durableEnd.Store(l.syncedEnd)
	// Rolled segments became durable, or a truncation left the recovery point past the end: the
	// active segment's base is a recovery point whatever its indexes hold.
	if len(l.rolledUnsynced) > 0 || l.recoveryPoint > l.syncedEnd {
		clear(l.rolledUnsynced)
		l.rolledUnsynced = l.rolledUnsynced[:0]
		if err := l.writeRecoveryPoint(l.active.BaseOffset()); err != nil {
			return err
		}
	}
	return nil
}

// CheckpointRecoveryPoint moves the recovery point up to what the last Sync made durable, inside
// the active segment: it syncs the active segment's indexes, then writes the checkpoint. A start
// after a crash then validates only what was appended after it (and at most one index interval
// before). It costs two or three fsyncs: the partition's owner calls it now and then (every so
// many bytes appended, and on its periodic tick), not after every append. Writer goroutine only.
func (l *Log) CheckpointRecoveryPoint() error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	if l.syncedEnd <= l.recoveryPoint || l.syncedEnd > l.active.NextOffset() {
		return nil
	}
	if err := l.active.SyncIndexes(); err != nil {
		return l.fence("sync", err)
	}
	return l.writeRecoveryPoint(l.syncedEnd)
}

func (l *Log) writeRecoveryPoint(offset int64) error {
	if offset == l.recoveryPoint {
		return nil
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, recoveryPointCheckpoint, offset); err != nil {
		return l.fence("checkpoint write", err)
	}
	l.recoveryPoint = offset
	return nil
}

// TruncateTo drops everything at and after offset (follower divergence). offset must be a batch
// boundary in [StartOffset, NextOffset]. Readers must not be reading at or above offset (they
// read below the high watermark, which never exceeds a truncation point). The truncation is
// fsynced before returning, so the dropped batches cannot reappear after a crash.
//
// The cut-off batches are first copied, byte for byte and durably, into a file beside the
// segments (<offset>.log.diverged-<unix ms>, see DivergedInfix) unless they are more than
// MaxDroppedBytes; older files of cut-off bytes are pruned to MaxDroppedFiles and MaxDroppedBytes.
// What was cut is logged at Warn and counted in DivergedBytes. DurableEnd comes down to offset.
func (l *Log) TruncateTo(offset int64) error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	end := l.active.NextOffset()
	if offset == end {
		return nil
	}
	if offset > end || offset < l.startOffset.Load() {
		return fmt.Errorf("%w: truncate to %d, log is [%d, %d]", ErrOffsetOutOfRange, offset, l.startOffset.Load(), end)
	}
	segs := l.snapshot().segments
	i := len(segs) - 1
	for i > 0 && segs[i].BaseOffset() > offset {
		i--
	}
	target := segs[i]
	var pos int64 // of offset in target
	if offset != target.BaseOffset() {
		at, base, err := target.Find(offset)
		if err != nil {
			return fmt.Errorf("%w: %d: %w", ErrNotBoundary, offset, err)
		}
		if base != offset {
			return fmt.Errorf("%w: %d is inside the batch at %d", ErrNotBoundary, offset, base)
		}
		pos = at
	}
	// Before anything is cut: the cut batches, kept durably.
	l.keepDiverged(offset, target, pos, segs[i+1:])
	// The recovery point comes down first: were it left above offset, a crash in the middle of
	// the truncation could leave it naming offsets the log no longer has (and recovery would
	// trust a hole).
	if l.recoveryPoint > offset {
		if err := l.writeRecoveryPoint(offset); err != nil {
			return err
		}
	}
	// So does the cleaner's first dirty offset: what is appended after the truncation is dirty.
	if st := l.cleanState.Load(); st.firstDirty > offset {
		next := &cleanState{firstDirty: offset}
		for _, h := range st.horizons {
			if h.offset <= offset {
				next.horizons = append(next.horizons, h)
			}
		}
		if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpoint, next.lines(nil)); err != nil {
			return l.fence("cleaner checkpoint", err)
		}
		l.cleanState.Store(next)
	}
	// Readers stop seeing the dropped segments before their files go.
	kept := append([]*segment.Segment(nil), segs[:i+1]...)
	dropped := segs[i+1:]
	l.lowerDurableEnd(offset)
	l.endOffset.Store(offset)
	l.publish(kept)
	if err := target.Unseal(); err != nil {
		return l.fence("truncate", err)
	}
	l.active = target
	for _, s := range dropped {
		if err := s.Delete(); err != nil {
			return l.fence("truncate", err)
		}
	}
	if err := target.TruncateTo(offset); err != nil {
		return l.fence("truncate", err)
	}
	stillUnsynced := l.rolledUnsynced[:0]
	for _, s := range l.rolledUnsynced {
		if s.BaseOffset() < target.BaseOffset() {
			stillUnsynced = append(stillUnsynced, s)
		}
	}
	l.rolledUnsynced = stillUnsynced
	l.activeUnsynced = true
	l.dirUnsynced = l.dirUnsynced || len(dropped) > 0
	if len(dropped) > 0 || l.activeFirstAppend.IsZero() {
		l.activeFirstAppend = l.opts.Now()
	}
	if target.Size() == 0 {
		l.activeFirstAppend = time.Time{}
	}
	if l.epochCache.truncateFromEnd(offset) {
		l.publishEpochs()
		if err := writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, l.epochCache.lines()); err != nil {
			return l.fence("checkpoint write", err)
		}
	}
	return l.Sync()
}

// AdvanceStartOffset raises the log start offset (Kafka DeleteRecords), persists it, and deletes
// the segments wholly below it. Offsets are never renumbered. Lowering it is a no-op.
func (l *Log) AdvanceStartOffset(offset int64) error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	if offset <= l.startOffset.Load() {
		return nil
	}
	if end := l.active.NextOffset(); offset > end {
		return fmt.Errorf("%w: start offset %d past the log end %d", ErrOffsetOutOfRange, offset, end)
	}
	if err := l.syncBelow(offset); err != nil {
		return err
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint, offset); err != nil {
		return l.fence("checkpoint write", err)
	}
	l.startOffset.Store(offset)
	if l.active.Size() > 0 && l.active.NextOffset() <= offset {
		if err := l.roll(); err != nil { // so the old active segment can go too
			return err
		}
	}
	n := 0
	for _, s := range l.snapshot().segments {
		if s == l.active || s.NextOffset() > offset {
			break
		}
		n++
	}
	if _, err := l.deleteOldest(n, "start offset"); err != nil {
		return err
	}
	return l.trimEpochsToStart()
}

// EnforceRetention rolls the active segment if it is older than SegmentAge, then deletes the
// oldest sealed segments whose largest timestamp is older than RetentionAge, and more while the
// total size exceeds RetentionBytes. The log start offset moves up to the first kept segment.
// The active segment is never deleted.
func (l *Log) EnforceRetention() (deletedSegments int, err error) {
	if err := l.writerCheck(); err != nil {
		return 0, err
	}
	if l.active.Size() > 0 && l.agedOut() {
		if err := l.roll(); err != nil {
			return 0, err
		}
	}
	segs := l.snapshot().segments
	sealed := segs[:len(segs)-1]
	n := 0
	if l.opts.RetentionAge > 0 {
		cutoff := l.opts.Now().Add(-l.opts.RetentionAge).UnixMilli()
		for n < len(sealed) && sealed[n].MaxTimestamp() < cutoff {
			n++
		}
	}
	if l.opts.RetentionBytes >= 0 {
		total := l.Size()
		for _, s := range sealed[:n] {
			total -= s.Size()
		}
		for n < len(sealed) && total > l.opts.RetentionBytes {
			total -= sealed[n].Size()
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	newStart := segs[n].BaseOffset()
	if newStart > l.startOffset.Load() {
		if err := l.syncBelow(newStart); err != nil {
			return 0, err
		}
		if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint, newStart); err != nil {
			return 0, l.fence("checkpoint write", err)
		}
		l.startOffset.Store(newStart)
	}
	if n, err = l.deleteOldest(n, "retention"); err != nil {
		return n, err
	}
	return n, l.trimEpochsToStart()
}

// syncBelow syncs the log if offset is past what is durable, so that a checkpoint naming offset is
// never ahead of the log after a crash.
func (l *Log) syncBelow(offset int64) error {
	if offset <= l.syncedEnd {
		return nil
	}
	return l.Sync()
}

// deleteOldest removes the n oldest segments: readers first stop seeing them, then the files go.
func (l *Log) deleteOldest(n int, why string) (int, error) {
	if n == 0 {
		return 0, nil
	}
	segs := l.snapshot().segments
	doomed := segs[:n]
	l.publish(append([]*segment.Segment(nil), segs[n:]...))
	for _, s := range doomed {
		l.logger.Info("deleting segment", zap.String("dir", l.dir), zap.String("segment", filepath.Base(s.Path())), zap.String("why", why))
		for i, u := range l.rolledUnsynced {
			if u == s {
				l.rolledUnsynced = append(l.rolledUnsynced[:i], l.rolledUnsynced[i+1:]...)
				break
			}
		}
		if err := s.Delete(); err != nil {
			return 0, l.fence("delete", err)
		}
	}
	l.dirUnsynced = true
	return n, nil
}

// trimEpochsToStart drops the epoch entries wholly below the log start offset.
func (l *Log) trimEpochsToStart() error {
	if l.epochCache.truncateFromStart(l.startOffset.Load()) {
		l.publishEpochs()
		if err := writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, l.epochCache.lines()); err != nil {
			return l.fence("checkpoint write", err)
		}
	}
	return nil
}

// Close syncs, writes the checkpoints and closes the files. A fenced log is closed without
// syncing and Close returns the fence error.
func (l *Log) Close() error {
	if l.closed {
		return ErrClosed
	}
	err := l.Sync()
	if err == nil {
		err = writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint, l.startOffset.Load())
	}
	if err == nil {
		// Everything is durable: the next start validates nothing.
		err = l.CheckpointRecoveryPoint()
	}
	l.closed = true
	for _, s := range l.snapshot().segments {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
