package partition

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
)

// Open opens (creating if needed) the log in opts.Dir and recovers it:
//
//  1. Stray temporary checkpoint files and index files without a .log are removed.
//  2. Segments wholly below the recovery point were fsynced: they are opened trusting the .log
//     (indexes are checked cheaply and rebuilt if missing, short or inconsistent).
//  3. The segment holding the recovery point and every later one (always at least the last) are
//     validated batch by batch; a torn or corrupt tail is truncated, and every segment after a
//     truncated one is deleted, since offsets must stay contiguous.
//  4. The leader epoch cache is loaded (rebuilt from the batches if missing or malformed) and
//     trimmed to the log end; the log start offset is loaded and clamped.
//  5. What recovery touched is fsynced and the recovery point advanced.
//
// Open never refuses to start over a torn or corrupt tail: it logs what it dropped.
func Open(opts Options) (*Log, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	l := &Log{
		opts:        opts,
		fs:          opts.FS,
		dir:         opts.Dir,
		logger:      opts.Logger,
		segmentOpts: segment.Options{IndexIntervalBytes: opts.IndexIntervalBytes},
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, err
	}
	segments, err := l.recoverSegments()
	if err != nil {
		for _, s := range segments {
			s.Close()
		}
		return nil, err
	}
	l.active = segments[len(segments)-1]
	l.publish(segments)
	l.endOffset.Store(l.active.NextOffset())
	if l.active.Size() > 0 {
		// The first append time is not stored; counting the age from the open is conservative.
		l.activeFirstAppend = l.opts.Now()
	}

	start := segments[0].BaseOffset()
	if cp, ok, err := readOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint); err != nil {
		l.closeSegments()
		return nil, err
	} else if ok && cp > start {
		start = min(cp, l.active.NextOffset())
	}
	l.startOffset.Store(start)

	if err := l.loadEpochs(segments); err != nil {
		l.closeSegments()
		return nil, err
	}
	if err := l.Sync(); err != nil {
		l.closeSegments()
		return nil, err
	}
	return l, nil
}

func (l *Log) closeSegments() {
	for _, s := range l.snapshot().segments {
		s.Close()
	}
}

func (l *Log) recoverSegments() ([]*segment.Segment, error) {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix {
			logs[base] = true
		}
	}
	for _, name := range names {
		base, suffix, ok := segment.ParseFileName(name)
		stray := strings.HasSuffix(name, tmpSuffix) ||
			(ok && (suffix == segment.IndexSuffix || suffix == segment.TimeIndexSuffix) && !logs[base])
		if stray {
			l.logger.Warn("removing stray file", zap.String("dir", l.dir), zap.String("file", name))
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			l.dirUnsynced = true
		}
	}
	bases := make([]int64, 0, len(logs))
	for b := range logs {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	recoveryPoint, ok, err := readOffsetCheckpoint(l.fs, l.dir, recoveryPointCheckpoint)
	if err != nil {
		return nil, err
	}
	if !ok {
		recoveryPoint = 0 // unknown: validate everything
	}
	l.recoveryPoint = recoveryPoint

	var segments []*segment.Segment
	for i, base := range bases {
		// A segment is trusted only if the next one starts at or below the recovery point,
		// i.e. every offset it holds is below it.
		trusted := i+1 < len(bases) && bases[i+1] <= recoveryPoint
		var (
			seg *segment.Segment
			rep segment.Report
		)
		if trusted {
			seg, rep, err = segment.Open(l.fs, l.dir, base, l.segmentOpts)
		} else {
			seg, rep, err = segment.Recover(l.fs, l.dir, base, l.segmentOpts)
			if err == nil {
				l.rolledUnsynced = append(l.rolledUnsynced, seg) // validated, now make it durable
			}
		}
		if err != nil {
			return segments, err
		}
		segName := filepath.Base(seg.Path())
		if rep.IndexRebuilt || rep.TimeIndexRebuilt {
			l.logger.Warn("rebuilt segment indexes", zap.String("dir", l.dir), zap.String("segment", segName),
				zap.Bool("index", rep.IndexRebuilt), zap.Bool("timeindex", rep.TimeIndexRebuilt), zap.NamedError("reason", rep.IndexError))
		}
		if n := len(segments); n > 0 && segments[n-1].NextOffset() != base {
			// The previous segment lost its tail (or this one is misplaced): offsets must be
			// contiguous, so this segment and the rest go.
			l.logger.Warn("deleting segment after a gap", zap.String("dir", l.dir), zap.String("segment", segName),
				zap.Int64("expected_base_offset", segments[n-1].NextOffset()))
			if err := l.deleteFrom(seg, bases[i+1:]); err != nil {
				return segments, err
			}
			break
		}
		segments = append(segments, seg)
		if rep.BytesDropped > 0 {
			l.logger.Warn("recovered segment, truncated torn tail", zap.String("dir", l.dir), zap.String("segment", segName),
				zap.Int64("bytes_dropped", rep.BytesDropped), zap.Int64("valid_end_offset", seg.NextOffset()),
				zap.NamedError("reason", rep.Reason))
			if i+1 < len(bases) {
				if err := l.deleteFrom(nil, bases[i+1:]); err != nil {
					return segments, err
				}
			}
			break
		}
	}
	if len(segments) == 0 {
		base := int64(0)
		if cp, ok, err := readOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint); err != nil {
			return nil, err
		} else if ok {
			base = cp
		}
		seg, err := segment.Create(l.fs, l.dir, base, l.segmentOpts)
		if err != nil {
			return nil, err
		}
		l.dirUnsynced = true
		segments = append(segments, seg)
	}
	// Drop the last segment from rolledUnsynced: Sync handles the active one separately.
	if n := len(l.rolledUnsynced); n > 0 && l.rolledUnsynced[n-1] == segments[len(segments)-1] {
		l.rolledUnsynced = l.rolledUnsynced[:n-1]
		l.activeUnsynced = true
	}
	// A segment deleted after a gap may still be in rolledUnsynced.
	kept := l.rolledUnsynced[:0]
	for _, s := range l.rolledUnsynced {
		for _, t := range segments {
			if s == t {
				kept = append(kept, s)
			}
		}
	}
	l.rolledUnsynced = kept
	return segments, nil
}

// deleteFrom deletes seg (if not nil, already open) and the segments with the given base offsets.
func (l *Log) deleteFrom(seg *segment.Segment, bases []int64) error {
	if seg != nil {
		if err := seg.Delete(); err != nil {
			return err
		}
	}
	for _, base := range bases {
		l.logger.Warn("deleting segment after the truncated point", zap.String("dir", l.dir),
			zap.String("segment", filepath.Base(segment.FileName(l.dir, base, segment.LogSuffix))))
		for _, suffix := range []string{segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix} {
			if err := l.fs.Remove(segment.FileName(l.dir, base, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	l.dirUnsynced = true
	return nil
}

// loadEpochs loads the leader epoch checkpoint, or rebuilds it from the batch headers when it is
// missing or malformed, then trims it to the recovered log.
func (l *Log) loadEpochs(segments []*segment.Segment) error {
	lines, err := readCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, 2)
	loaded := err == nil && l.epochCache.fromLines(lines)
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errBadCheckpoint) {
		return err
	}
	changed := false
	if !loaded {
		l.epochCache.entries = nil
		for _, s := range segments {
			err := segment.Scan(l.fs, s.Path(), func(pos int64, h batch.Header, err error) error {
				if err != nil {
					return nil // cannot happen after recovery; ignore the tail
				}
				l.epochCache.assign(h.PartitionLeaderEpoch, h.BaseOffset)
				return nil
			})
			if err != nil {
				return err
			}
		}
		changed = true
		// A new, empty log has no checkpoint yet: nothing to report.
		if len(l.epochCache.entries) > 0 {
			l.logger.Warn("rebuilt leader epoch cache", zap.String("dir", l.dir), zap.Int("entries", len(l.epochCache.entries)))
		}
	}
	if l.epochCache.truncateFromEnd(l.active.NextOffset()) {
		changed = true
	}
	if l.epochCache.truncateFromStart(l.startOffset.Load()) {
		changed = true
	}
	l.publishEpochs()
	if changed {
		return writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, l.epochCache.lines())
	}
	return nil
}
