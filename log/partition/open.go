package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
//  3. The segment holding the recovery point is validated from the recovery point on (its index
//     locates the last batch at or below it), every later one batch by batch. A torn or corrupt
//     tail is cut off, and the segments after it are moved aside: what survives a crash is a
//     prefix of what was written. Nothing is destroyed: cut bytes are kept in
//     <segment>.log.dropped-<unix ms> files beside the segments (bounded by MaxDroppedFiles and
//     MaxDroppedBytes) and logged with their path.
//     3b. Below the recovery point a segment that is missing, unreadable or corrupt costs only its
//     own offsets: every other segment is kept and served, and the missing offsets are logged.
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
		opts:         opts,
		fs:           opts.FS,
		dir:          opts.Dir,
		logger:       opts.Logger,
		segmentOpts:  segment.Options{IndexIntervalBytes: opts.IndexIntervalBytes, Files: opts.Files},
		validateFrom: -1,
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, err
	}
	if err := l.finishReset(); err != nil {
		return nil, err
	}
	if err := l.loadCleanerState(); err != nil {
		return nil, err
	}
	segments, err := l.recoverSegments()
	if err != nil {
		for _, s := range segments {
			s.Close()
		}
		return nil, err
	}
	if err := l.pruneDropped(); err != nil {
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
	// Sealed segments keep no file open until they are read (Options.Files).
	for _, s := range segments[:len(segments)-1] {
		if err := s.Seal(); err != nil {
			l.closeSegments()
			return nil, err
		}
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
	firstDirty := l.cleanState.Load().firstDirty

	var segments []*segment.Segment
	// Once a segment at or after the recovery point lost bytes, or a hole opens there, what
	// follows was never durable as a whole, and keeping it would leave a log that is not a prefix
	// of what was written: it is moved aside, never deleted. Below the recovery point a hole is
	// kept and served around.
	for i, base := range bases {
		// A segment is trusted only if the next one starts at or below the recovery point,
		// i.e. every offset it holds is below it (it was fsynced, indexes included).
		trusted := i+1 < len(bases) && bases[i+1] <= recoveryPoint && base != l.validateFrom
		// Segments the cleaner rewrote skip the offsets of removed batches; they all lie below
		// the first dirty offset, and below the recovery point (only durable data is cleaned).
		opts := l.segmentOpts
		opts.Gaps = base < firstDirty || trusted
		var (
			seg *segment.Segment
			rep segment.Report
		)
		switch {
		case trusted:
			seg, rep, err = segment.Open(l.fs, l.dir, base, opts)
		case base < recoveryPoint && base != l.validateFrom:
			seg, rep, err = segment.RecoverFrom(l.fs, l.dir, base, recoveryPoint, opts)
		default:
			seg, rep, err = segment.Recover(l.fs, l.dir, base, opts)
		}
		segName := filepath.Base(segment.FileName(l.dir, base, segment.LogSuffix))
		if err != nil {
			if trusted && !errors.Is(err, segment.ErrKeepDropped) {
				// An fsynced segment that cannot be read: its files stay as they are, the
				// partition serves every other segment, and the operator is told.
				l.logger.Error("segment unreadable: its offsets are not served until it is repaired (docs/OPERATIONS.md, Inspecting and repairing data)",
					zap.String("dir", l.dir), zap.String("segment", segName), zap.Error(err))
				continue
			}
			return segments, fmt.Errorf("log/partition: %s/%s: %w", l.dir, segName, err)
		}
		if !trusted {
			l.rolledUnsynced = append(l.rolledUnsynced, seg) // validated, now make it durable
		}
		if rep.IndexRebuilt || rep.TimeIndexRebuilt {
			l.logger.Warn("rebuilt segment indexes", zap.String("dir", l.dir), zap.String("segment", segName),
				zap.Bool("index", rep.IndexRebuilt), zap.Bool("timeindex", rep.TimeIndexRebuilt), zap.NamedError("reason", rep.IndexError))
		}
		if n := len(segments); n > 0 && segments[n-1].NextOffset() != base && segments[n-1].BaseOffset() >= firstDirty {
			missingFrom := segments[n-1].NextOffset()
			if base > recoveryPoint {
				// After the recovery point: unacknowledged data beyond a hole. Keep a prefix.
				if err := l.moveAside(bases[i:], seg, "offsets do not follow the previous segment"); err != nil {
					return segments, err
				}
				break
			}
			l.logger.Error("offsets missing from the log: a segment in the middle is missing or was cut; every other segment is served",
				zap.String("dir", l.dir), zap.Int64("missing_from", missingFrom), zap.Int64("missing_to_exclusive", base),
				zap.String("next_segment", segName))
		}
		segments = append(segments, seg)
		if rep.BytesDropped > 0 {
			l.logger.Warn("recovered segment, truncated torn tail", zap.String("dir", l.dir), zap.String("segment", segName),
				zap.Int64("bytes_dropped", rep.BytesDropped), zap.Int64("valid_end_offset", seg.NextOffset()),
				zap.String("kept_in", rep.DroppedPath), zap.NamedError("reason", rep.Reason))
			l.droppedThisOpen = append(l.droppedThisOpen, filepath.Base(rep.DroppedPath))
			if !trusted && i+1 < len(bases) {
				if err := l.moveAside(bases[i+1:], nil, "after a truncated segment"); err != nil {
					return segments, err
				}
				break
			}
		}
	}
	if n := len(segments); n > 0 {
		if cp, ok, err := readOffsetCheckpoint(l.fs, l.dir, logStartCheckpoint); err == nil && ok && cp < segments[0].BaseOffset() {
			l.logger.Error("offsets missing from the log: the first segment starts after the log start offset",
				zap.String("dir", l.dir), zap.Int64("missing_from", cp), zap.Int64("missing_to_exclusive", segments[0].BaseOffset()))
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

// moveAside takes the segments with the given base offsets out of the log without destroying
// them: each .log is renamed to a file of cut-off bytes (segment.DroppedName) and its indexes,
// which are derived data, are removed. open is the first of them if it is already open.
func (l *Log) moveAside(bases []int64, open *segment.Segment, why string) error {
	if open != nil {
		open.Close()
		for i, s := range l.rolledUnsynced {
			if s == open {
				l.rolledUnsynced = append(l.rolledUnsynced[:i], l.rolledUnsynced[i+1:]...)
				break
			}
		}
	}
	now := l.opts.Now()
	for _, base := range bases {
		path := segment.FileName(l.dir, base, segment.LogSuffix)
		kept := segment.DroppedName(l.fs, path, now)
		size := int64(-1)
		if fi, err := l.fs.Stat(path); err == nil {
			size = fi.Size()
		}
		if err := l.fs.Rename(path, kept); err != nil {
			return fmt.Errorf("log/partition: moving %s aside: %w", path, err)
		}
		l.droppedThisOpen = append(l.droppedThisOpen, filepath.Base(kept))
		l.logger.Warn("segment moved aside: it follows a point recovery cut, so it was never durable as a whole",
			zap.String("dir", l.dir), zap.String("segment", filepath.Base(path)), zap.Int64("base_offset", base),
			zap.Int64("bytes", size), zap.String("kept_in", kept), zap.String("why", why))
		for _, suffix := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
			if err := l.fs.Remove(segment.FileName(l.dir, base, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	l.dirUnsynced = true
	return nil
}

// pruneDropped bounds the files of cut-off bytes in the directory (recovery's and TruncateTo's):
// the oldest go while there are more than MaxDroppedFiles or they hold more than MaxDroppedBytes,
// except those this open's recovery made and the files named in keep.
func (l *Log) pruneDropped(keep ...string) error {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	type dropped struct {
		name string
		ms   int64
		size int64
	}
	var all []dropped
	var total int64
	for _, n := range names {
		ms, ok := cutFileTime(n)
		if !ok {
			continue
		}
		fi, err := l.fs.Stat(filepath.Join(l.dir, n))
		if err != nil {
			continue
		}
		all = append(all, dropped{n, ms, fi.Size()})
		total += fi.Size()
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].ms != all[j].ms {
			return all[i].ms < all[j].ms
		}
		return all[i].name < all[j].name
	})
	count := len(all)
	for _, d := range all {
		if count <= l.opts.MaxDroppedFiles && total <= l.opts.MaxDroppedBytes {
			break
		}
		if slices.Contains(l.droppedThisOpen, d.name) || slices.Contains(keep, d.name) {
			continue
		}
		l.logger.Warn("removing an old file of cut-off bytes: the directory keeps at most MaxDroppedFiles / MaxDroppedBytes",
			zap.String("dir", l.dir), zap.String("file", d.name), zap.Int64("bytes", d.size))
		if err := l.fs.Remove(filepath.Join(l.dir, d.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		l.dirUnsynced = true
		count--
		total -= d.size
	}
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
	if loaded {
		// The checkpoint is written after the batches that change the epoch, so a crash can
		// leave it behind what recovery kept past the recovery point: read those headers.
		for _, s := range segments {
			if s.NextOffset() <= l.recoveryPoint {
				continue
			}
			err := s.Headers(l.recoveryPoint, func(h batch.Header) error {
				if l.epochCache.assign(h.PartitionLeaderEpoch, h.BaseOffset) {
					changed = true
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
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
	// Start first, then end: an entry moved up to a start offset equal to the log end (an empty
	// log) is then dropped on this open as on every later one, so recovery is idempotent.
	if l.epochCache.truncateFromStart(l.startOffset.Load()) {
		changed = true
	}
	if l.epochCache.truncateFromEnd(l.active.NextOffset()) {
		changed = true
	}
	l.publishEpochs()
	if changed {
		return writeCheckpoint(l.fs, l.dir, leaderEpochCheckpoint, l.epochCache.lines())
	}
	return nil
}
