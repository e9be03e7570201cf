package segment

import (
	"errors"
	"os"

	"github.com/thorstream/thorstream/log/vfs"
)

// CleanedSuffix ends the names of the files of a segment the log cleaner is writing
// (<base>.log.cleaned, <base>.index.cleaned, <base>.timeindex.cleaned). Such files are never
// read by recovery as a segment: the partition either installs them (the swap was decided) or
// removes them.
const CleanedSuffix = ".cleaned"

// CreateCleaned creates the empty files of a segment the log cleaner writes beside the live ones,
// replacing any left by an earlier attempt. Batches are added with Append in increasing offset
// order, gaps allowed; Sync and SyncIndexes make them durable, Seal closes the writer's files,
// and Install gives the files their live names.
func CreateCleaned(fs vfs.FS, dir string, baseOffset int64, opts Options) (*Segment, error) {
	opts.Gaps = true
	s := newSegmentNamed(fs, dir, baseOffset, CleanedSuffix, opts)
	if err := s.openFiles(os.O_RDWR | os.O_CREATE | os.O_TRUNC); err != nil {
		return nil, err
	}
	s.indexesDirty = true
	return s, nil
}

// Install renames the files of a sealed cleaned segment to the live names of its base offset,
// replacing the files there: the two indexes first, the .log last, so a <base>.log.cleaned still
// present after a crash says the install did not finish. The directory is not synced. Call it
// before the segment is published to readers.
func (s *Segment) Install() error {
	if s.suffix != CleanedSuffix {
		return errors.New("log/segment: Install of a segment that is not a cleaned one")
	}
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix, LogSuffix} {
		from := s.fileName(suffix)
		if err := s.fs.Rename(from, FileName(s.dir, s.baseOffset, suffix)); err != nil {
			return err
		}
	}
	s.suffix = ""
	s.handle.rename(s.Path())
	return nil
}

// CleanedFiles are the names Install renames, for a partition completing an install at start-up:
// pairs of (cleaned name, live name), indexes first.
func CleanedFiles(dir string, baseOffset int64) [][2]string {
	var out [][2]string
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix, LogSuffix} {
		live := FileName(dir, baseOffset, suffix)
		out = append(out, [2]string{live + CleanedSuffix, live})
	}
	return out
}

// Retire keeps the segment readable through an open descriptor whatever then happens to its
// files (the cleaner is about to replace or remove them): a reader that loaded the segment before
// it was replaced goes on reading what it held. Discard ends that.
func (s *Segment) Retire() error { return s.handle.hold() }

// Discard closes a retired segment without touching any file: later reads get ErrDeleted, and a
// reader retries on the partition's newer segment list.
func (s *Segment) Discard() {
	s.deleted.Store(true)
	s.closeFiles()
}
