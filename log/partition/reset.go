package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/log/segment"
)

// resetCheckpoint names the offset a ResetTo restarts the log at while the reset is under way:
// it is the reset's commit point. Open finds it only after a crash in the middle of a reset and
// completes the reset (resetFiles), so a crash leaves either the old log (before the marker was
// durable) or the new empty one (after).
const resetCheckpoint = "log-reset-offset-checkpoint"

// DurableEnd is the log end offset as of the last successful Sync (every offset below it is on
// disk), never above EndOffset: Open counts everything it recovered as durable, TruncateTo and
// ResetTo lower it before they lower the end. A follower reports it to its leader, which counts
// only durable offsets in the high watermark. Safe from any goroutine.
func (l *Log) DurableEnd() int64 { return l.durableEnd.Load() }

// lowerDurableEnd brings what is durable down to offset, before the end offset comes down to it.
func (l *Log) lowerDurableEnd(offset int64) {
	if l.syncedEnd > offset {
		l.syncedEnd = offset
	}
	if l.durableEnd.Load() > offset {
		l.durableEnd.Store(offset)
	}
}

// ResetTo drops every segment and restarts the log empty at offset: afterwards StartOffset,
// EndOffset, NextOffset and DurableEnd are all offset, whether offset was below, inside or above
// the old range (a follower whose fetch offset fell below its leader's log start restarts at the
// leader's log start). The dropped batches are deleted, not kept: they lie below the leader's log
// start, deleted there too. The log start and recovery point checkpoints become offset, the
// leader epoch cache (and its checkpoint) empties, the cleaner checkpoint restarts at offset, and
// a new active segment is created at base offset; everything is fsynced before it returns. A crash
// in the middle leaves either the old log or the new empty one, as Open recovers it (see
// resetCheckpoint). Readers holding the old segments get ErrOffsetOutOfRange. Writer goroutine
// only; offset must be >= 0 (else ErrOffsetOutOfRange).
func (l *Log) ResetTo(offset int64) error {
	if err := l.writerCheck(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: reset to %d", ErrOffsetOutOfRange, offset)
	}
	oldStart, oldEnd, oldSize := l.startOffset.Load(), l.endOffset.Load(), l.Size()
	// The commit point.
	if err := writeOffsetCheckpoint(l.fs, l.dir, resetCheckpoint, offset); err != nil {
		return l.fence("reset", err)
	}
	l.lowerDurableEnd(offset)
	for _, s := range l.snapshot().segments {
		if err := s.Delete(); err != nil {
			return l.fence("reset", err)
		}
	}
	clear(l.rolledUnsynced)
	l.rolledUnsynced = l.rolledUnsynced[:0]
	l.activeUnsynced = false
	if err := l.resetFiles(offset); err != nil {
		return l.fence("reset", err)
	}
	seg, err := segment.Create(l.fs, l.dir, offset, l.segmentOpts)
	if err != nil {
		return l.fence("reset", err)
	}
	l.publish([]*segment.Segment{seg})
	l.active = seg
	// Keep StartOffset <= EndOffset at every instant for readers.
	if offset < oldStart {
		l.startOffset.Store(offset)
		l.endOffset.Store(offset)
	} else {
		l.endOffset.Store(offset)
		l.startOffset.Store(offset)
	}
	l.activeFirstAppend = time.Time{}
	l.recoveryPoint = offset
	l.cleanState.Store(&cleanState{firstDirty: offset})
	l.epochCache.entries = nil
	l.publishEpochs()
	if err := l.fs.Remove(filepath.Join(l.dir, resetCheckpoint)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return l.fence("reset", err)
	}
	l.dirUnsynced = true
	if err := l.Sync(); err != nil { // the new segment and the marker's removal
		return err
	}
	l.logger.Warn("log reset: every segment deleted, the log restarts empty",
		zap.String("dir", l.dir), zap.Int64("offset", offset), zap.Int64("old_start_offset", oldStart),
		zap.Int64("old_end_offset", oldEnd), zap.Int64("bytes_deleted", oldSize))
	return nil
}

// resetFiles makes the directory hold a reset log at offset, but for its segment (Open creates a
// missing one at the log start offset): checkpoints first, then every segment file goes, then the
// directory is synced. Idempotent: Open runs it again after a crash while the marker exists.
func (l *Log) resetFiles(offset int64) error {
	if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpoint, (&cleanState{firstDirty: offset}).lines(nil)); err != nil {
		return err
	}
	if err := writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, nil); err != nil {
		return err
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint, offset); err != nil {
		return err
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, recoveryPointCheckpoint, offset); err != nil {
		return err
	}
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		_, suffix, ok := segment.ParseFileName(name)
		if !ok || (suffix != segment.LogSuffix && suffix != segment.IndexSuffix && suffix != segment.TimeIndexSuffix) {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return l.fs.SyncDir(l.dir)
}

// finishReset completes a ResetTo a crash interrupted (Open, before anything else reads the
// directory).
func (l *Log) finishReset() error {
	offset, ok, err := readOffsetCheckpoint(l.fs, l.dir, resetCheckpoint)
	if err != nil {
		return err
	}
	path := filepath.Join(l.dir, resetCheckpoint)
	if !ok {
		if _, err := l.fs.Stat(path); err != nil {
			return nil // no reset under way
		}
		// Written atomically, so only damage makes it unreadable: the reset it names is lost.
		l.logger.Error("log reset marker unreadable: removed; the log is recovered as it is",
			zap.String("dir", l.dir), zap.String("file", resetCheckpoint))
	} else {
		l.logger.Warn("completing a log reset interrupted by a crash", zap.String("dir", l.dir), zap.Int64("offset", offset))
		if err := l.resetFiles(offset); err != nil {
			return err
		}
	}
	if err := l.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return l.fs.SyncDir(l.dir)
}
