package partition

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/log/segment"
)

// DivergedInfix marks a file holding the batches a divergence truncation (TruncateTo) cut off:
// <20-digit first offset cut>.log.diverged-<unix ms>, with -<n> appended when that name is
// taken. The file is the cut batches back to back, as they were in the segments (from the
// truncation offset to the old log end, across segments), so `thorctl segment dump` lists them.
// Nothing else reads these files; they are bounded together with recovery's files of cut-off
// bytes by Options.MaxDroppedFiles and MaxDroppedBytes.
const DivergedInfix = ".diverged-"

// divergedName is the path for the batches cut from offset at time now.
func divergedName(l *Log, offset int64, now time.Time) string {
	name := segment.FileName(l.dir, offset, segment.LogSuffix) + DivergedInfix + strconv.FormatInt(now.UnixMilli(), 10)
	candidate := name
	for i := 1; ; i++ {
		if _, err := l.fs.Stat(candidate); errors.Is(err, os.ErrNotExist) {
			return candidate
		}
		candidate = name + "-" + strconv.Itoa(i)
	}
}

// IsDivergedFile reports whether name (without directory) is a file of batches a divergence
// truncation cut off, and the unix milliseconds it was written at.
func IsDivergedFile(name string) (unixMilli int64, ok bool) {
	i := strings.Index(name, segment.LogSuffix+DivergedInfix)
	if i < 0 {
		return 0, false
	}
	rest := name[i+len(segment.LogSuffix)+len(DivergedInfix):]
	if j := strings.IndexByte(rest, '-'); j >= 0 {
		rest = rest[:j]
	}
	ms, err := strconv.ParseInt(rest, 10, 64)
	return ms, err == nil
}

// cutFileTime recognises both kinds of files of cut-off bytes a partition directory keeps
// (recovery's .dropped- and divergence's .diverged-), with the time each was written.
func cutFileTime(name string) (unixMilli int64, ok bool) {
	if ms, ok := segment.IsDroppedFile(name); ok {
		return ms, true
	}
	return IsDivergedFile(name)
}

// DivergedBytes is how many bytes TruncateTo cut off this log since Open, kept in a file or not.
// Any goroutine.
func (l *Log) DivergedBytes() int64 { return l.divergedBytes.Load() }

// keepDiverged copies the bytes TruncateTo(offset) is about to cut — from position pos of target
// to its end, then every segment of dropped whole — into a new .diverged- file, fsyncs it and the
// directory, and prunes older files of cut-off bytes to the budget (the new file is kept). Cuts
// larger than MaxDroppedBytes are not kept. Keeping is best effort: a failure is logged and the
// truncation goes on (a follower that cannot truncate cannot follow), and an I/O error that
// matters to the log itself shows in the truncation's own writes.
func (l *Log) keepDiverged(offset int64, target *segment.Segment, pos int64, dropped []*segment.Segment) {
	type part struct {
		path     string
		from, to int64
	}
	parts := []part{{target.Path(), pos, target.Size()}}
	total := target.Size() - pos
	for _, s := range dropped {
		parts = append(parts, part{s.Path(), 0, s.Size()})
		total += s.Size()
	}
	end := l.active.NextOffset()
	l.divergedBytes.Add(total)
	if total == 0 {
		return
	}
	fields := []zap.Field{zap.String("dir", l.dir), zap.Int64("from_offset", offset), zap.Int64("to_offset_exclusive", end),
		zap.Int64("bytes", total)}
	if total > l.opts.MaxDroppedBytes {
		l.logger.Warn("truncating diverging batches; not kept: they are more than MaxDroppedBytes",
			append(fields, zap.Int64("max_dropped_bytes", l.opts.MaxDroppedBytes))...)
		return
	}
	path := divergedName(l, offset, l.opts.Now())
	err := func() error {
		out, err := l.fs.Create(path)
		if err != nil {
			return err
		}
		buf := make([]byte, min(total, 1<<20))
		at := int64(0)
		for _, p := range parts {
			if p.to <= p.from {
				continue
			}
			in, err := l.fs.Open(p.path)
			if err != nil {
				out.Close()
				return err
			}
			for from := p.from; from < p.to; {
				n := min(int64(len(buf)), p.to-from)
				if k, err := in.ReadAt(buf[:n], from); int64(k) != n {
					if err == nil {
						err = io.ErrUnexpectedEOF
					}
					in.Close()
					out.Close()
					return err
				}
				if _, err := out.WriteAt(buf[:n], at); err != nil {
					in.Close()
					out.Close()
					return err
				}
				from += n
				at += n
			}
			if err := in.Close(); err != nil {
				out.Close()
				return err
			}
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return l.fs.SyncDir(l.dir)
	}()
	if err != nil {
		l.logger.Error("truncating diverging batches; could not keep them", append(fields, zap.String("file", path), zap.Error(err))...)
		if rerr := l.fs.Remove(path); rerr == nil {
			l.dirUnsynced = true
		}
		return
	}
	l.logger.Warn("truncating diverging batches; kept in a file", append(fields, zap.String("kept_in", path))...)
	if err := l.pruneDropped(filepath.Base(path)); err != nil {
		l.logger.Warn("could not prune old files of cut-off bytes", zap.String("dir", l.dir), zap.Error(err))
	}
}
