package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thorstream/thorstream/log/vfs"
)

// DroppedInfix marks a file holding bytes that recovery cut off a segment:
// <base offset>.log.dropped-<unix ms>. Nothing reads these files but `thorctl segment dump`;
// they exist so that recovery never destroys bytes an operator may want back.
const DroppedInfix = ".dropped-"

// ErrKeepDropped is a recovery that could not keep the bytes it has to cut (the disk is full, say):
// it truncates nothing and fails, so that the operator, not the broker, decides.
var ErrKeepDropped = errors.New("log/segment: cannot keep the bytes recovery cuts off")

// DroppedName is the name for bytes cut from the .log at path at time now: path + ".dropped-<ms>",
// with a counter appended if that name is taken.
func DroppedName(fs vfs.FS, path string, now time.Time) string {
	name := path + DroppedInfix + strconv.FormatInt(now.UnixMilli(), 10)
	candidate := name
	for i := 1; ; i++ {
		if _, err := fs.Stat(candidate); errors.Is(err, os.ErrNotExist) {
			return candidate
		}
		candidate = name + "-" + strconv.Itoa(i)
	}
}

// IsDroppedFile reports whether name (without directory) is a file of cut-off bytes, and the
// unix milliseconds it was written at.
func IsDroppedFile(name string) (unixMilli int64, ok bool) {
	i := strings.Index(name, LogSuffix+DroppedInfix)
	if i < 0 {
		return 0, false
	}
	rest := name[i+len(LogSuffix)+len(DroppedInfix):]
	if j := strings.IndexByte(rest, '-'); j >= 0 {
		rest = rest[:j]
	}
	ms, err := strconv.ParseInt(rest, 10, 64)
	return ms, err == nil
}

// Recover opens a segment and validates every batch of its .log (see the package doc). The bytes
// after the valid prefix are first copied, durably, into a file beside the segment (see
// DroppedName; Report.DroppedPath), then the .log is truncated. Both indexes are recomputed from
// the log and rewritten if their files differ. Only I/O errors fail it, including a failure to
// keep the cut bytes: then nothing is truncated.
func Recover(fs vfs.FS, dir string, baseOffset int64, opts Options) (*Segment, Report, error) {
	return recoverSegment(fs, dir, baseOffset, opts, -1)
}

// RecoverFrom is Recover for a segment whose batches below trustedEnd were fsynced (the
// partition's recovery point lies inside it): the .index locates the last indexed batch at or
// below trustedEnd, that batch and everything after it are validated, and what comes before is
// trusted as Open trusts a sealed segment. When the index cannot vouch for such a batch (missing,
// short, inconsistent, or pointing at the wrong batch) it validates the whole segment.
func RecoverFrom(fs vfs.FS, dir string, baseOffset, trustedEnd int64, opts Options) (*Segment, Report, error) {
	return recoverSegment(fs, dir, baseOffset, opts, trustedEnd)
}

// recoveryStart is where validation begins: the batch at pos, with the index entries before it and
// the indexer state after accounting for it (when indexed is true) or before it.
type recoveryStart struct {
	pos, offset int64
	index       []IndexEntry
	timeIndex   []TimeIndexEntry
	indexed     bool // the batch at pos has its index entry already; the indexer counted it
}

func recoverSegment(fs vfs.FS, dir string, baseOffset int64, opts Options, trustedEnd int64) (*Segment, Report, error) {
	var rep Report
	s := newSegment(fs, dir, baseOffset, opts)
	if err := s.openFiles(os.O_RDWR | os.O_CREATE); err != nil {
		return nil, rep, err
	}
	fail := func(err error) (*Segment, Report, error) {
		s.closeFiles()
		return nil, rep, err
	}
	logSize, err := s.logFile.Size()
	if err != nil {
		return fail(err)
	}
	limit := min(logSize, int64(MaxSize))
	w := walker{file: s.logFile, size: limit, validate: true, gaps: s.gaps}

	start := recoveryStart{offset: baseOffset}
	if trustedEnd > baseOffset {
		if st, ok, err := s.trustedStart(&w, logSize, trustedEnd); err != nil {
			return fail(err)
		} else if ok {
			start = st
		}
	}
	s.index, s.timeIndex = start.index, start.timeIndex
	var indexBytes, timeBytes []byte
	for _, e := range s.index {
		indexBytes = AppendIndexEntry(indexBytes, e)
	}
	for _, e := range s.timeIndex {
		timeBytes = AppendTimeIndexEntry(timeBytes, e)
	}
	pos, expected := start.pos, start.offset
	indexed := start.indexed
	for pos < limit {
		h, err := w.next(pos, expected)
		if err == nil && h.LastOffset()-baseOffset > MaxRelativeOffset {
			err = fmt.Errorf("%w at position %d: %w", ErrCorrupt, pos, ErrOffsetsTooFar)
		}
		if err != nil {
			if !isDataError(err) {
				return fail(err)
			}
			if indexed {
				// The batch the index vouched for is bad after all: validate from the start.
				s.closeFiles()
				return Recover(fs, dir, baseOffset, opts)
			}
			rep.Reason = err
			break
		}
		if indexed {
			indexed = false
			s.indexer.bytesSinceIndexEntry = int64(h.Size())
		} else {
			ie, addIndex, te, addTime := s.indexer.add(pos, h.BaseOffset, h.MaxTimestamp, int64(h.Size()))
			if addIndex {
				s.index = append(s.index, ie)
				indexBytes = AppendIndexEntry(indexBytes, ie)
			}
			if addTime {
				s.timeIndex = append(s.timeIndex, te)
				timeBytes = AppendTimeIndexEntry(timeBytes, te)
			}
		}
		pos += int64(h.Size())
		expected = h.NextOffset()
	}
	if pos < logSize {
		if rep.Reason == nil {
			rep.Reason = fmt.Errorf("%w: segment larger than %d bytes", ErrCorrupt, int64(MaxSize))
		}
		kept, err := keepDropped(fs, s.logFile, s.Path(), pos, logSize)
		if err != nil {
			return fail(fmt.Errorf("%w: %d bytes from %s: %w", ErrKeepDropped, logSize-pos, s.Path(), err))
		}
		rep.DroppedPath = kept
		if err := s.logFile.Truncate(pos); err != nil {
			return fail(err)
		}
		rep.BytesDropped = logSize - pos
	}
	if rep.IndexRebuilt, rep.IndexError, err = rewriteIfDifferent(s.indexFile, indexBytes); err != nil {
		return fail(err)
	}
	var timeErr error
	if rep.TimeIndexRebuilt, timeErr, err = rewriteIfDifferent(s.timeIndexFile, timeBytes); err != nil {
		return fail(err)
	}
	rep.IndexError = errors.Join(rep.IndexError, timeErr)
	s.indexesDirty = rep.BytesDropped > 0 || rep.IndexRebuilt || rep.TimeIndexRebuilt
	s.indexFileSize = int64(len(indexBytes))
	s.timeIndexSize = int64(len(timeBytes))
	s.size.Store(pos)
	s.nextOffset.Store(expected)
	s.maxTimestamp.Store(s.indexer.maxTimestamp)
	return s, rep, nil
}

// trustedStart finds, from the index files, the last indexed batch that starts at or below
// trustedEnd, and the indexer state right after it. ok=false: no usable entry (validate all).
// The partition syncs the active segment's indexes before it checkpoints a recovery point inside
// it, so every entry at or below trustedEnd is on disk.
//
// Why the state is exact: an .index entry is added at the batch that starts it, after that batch
// updated the running maximum timestamp, and a .timeindex entry is added at the same moment
// whenever that maximum grew. So the time entries added at or before index entry k are exactly
// those whose offset is at or below entry k's, and the running maximum after entry k's batch is
// the last of them.
func (s *Segment) trustedStart(w *walker, logSize, trustedEnd int64) (recoveryStart, bool, error) {
	var st recoveryStart
	raw, err := readAll(s.indexFile)
	if err != nil {
		return st, false, err
	}
	index, _ := DecodeIndex(raw, logSize) // a torn or stale tail: use the consistent prefix
	k := -1
	for i, e := range index {
		if s.baseOffset+int64(e.RelativeOffset) > trustedEnd {
			break
		}
		k = i
	}
	if k < 0 {
		return st, false, nil
	}
	entry := index[k]
	raw, err = readAll(s.timeIndexFile)
	if err != nil {
		return st, false, err
	}
	timeIndex, _ := DecodeTimeIndex(raw, int64(entry.RelativeOffset)+1)
	// Check the entry names the batch it points at (its header only; the batch itself is
	// validated by the walk).
	hw := walker{file: w.file, size: w.size}
	if _, err := hw.next(int64(entry.Position), s.baseOffset+int64(entry.RelativeOffset)); err != nil {
		if isDataError(err) {
			return st, false, nil
		}
		return st, false, err
	}
	ix := &s.indexer
	ix.maxTimestamp, ix.offsetOfMaxTimestamp, ix.lastTimeIndexTs = -1, 0, -1
	if n := len(timeIndex); n > 0 {
		ix.maxTimestamp = timeIndex[n-1].Timestamp
		ix.offsetOfMaxTimestamp = s.baseOffset + int64(timeIndex[n-1].RelativeOffset)
		ix.lastTimeIndexTs = ix.maxTimestamp
	}
	st = recoveryStart{
		pos:       int64(entry.Position),
		offset:    s.baseOffset + int64(entry.RelativeOffset),
		index:     append([]IndexEntry(nil), index[:k+1]...),
		timeIndex: append([]TimeIndexEntry(nil), timeIndex...),
		indexed:   true,
	}
	return st, true, nil
}

// keepDropped copies the bytes [from, to) of f (the .log at path) into a new file beside it,
// fsyncs it and its directory, and returns its path.
func keepDropped(fs vfs.FS, f vfs.File, path string, from, to int64) (string, error) {
	name := DroppedName(fs, path, time.Now())
	out, err := fs.Create(name)
	if err != nil {
		return "", err
	}
	buf := make([]byte, min(to-from, 1<<20))
	for at := from; at < to; {
		n := min(int64(len(buf)), to-at)
		if _, err := readFull(f, buf[:n], at); err != nil {
			out.Close()
			return "", err
		}
		if _, err := out.WriteAt(buf[:n], at-from); err != nil {
			out.Close()
			return "", err
		}
		at += n
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return name, fs.SyncDir(filepath.Dir(path))
}
