package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// Options configure a segment.
type Options struct {
	// IndexIntervalBytes is the log bytes between two index entries (default 4096).
	IndexIntervalBytes int
	// Files bounds the sealed segments' open .log files (default DefaultFileCache).
	Files *FileCache
	// Gaps says the segment may skip offsets between batches: the log cleaner removed the
	// batches in between (a compacted segment). Offsets must still increase. Without it the
	// batches of a segment must be contiguous, which recovery checks: a base offset is not
	// covered by the batch CRC.
	Gaps bool
}

func (o Options) interval() int64 {
	if o.IndexIntervalBytes <= 0 {
		return DefaultIndexIntervalBytes
	}
	return int64(o.IndexIntervalBytes)
}

// Segment is one open segment.
//
// Concurrency: one writer (Append, TruncateTo, Sync, Close, Delete) and any number of readers
// (Read, Find, FindTimestamp and the accessors). Readers only look at bytes below Size, which the
// writer raises after a write completed, so they never see a torn batch.
type Segment struct {
	fs         vfs.FS
	dir        string
	baseOffset int64
	suffix     string // appended to the file names: "" or CleanedSuffix
	gaps       bool   // Options.Gaps

	// The writer's files, open while the segment is active (not sealed). Readers go through
	// handle, which shares logFile while the segment is active and opens the .log on demand once
	// it is sealed.
	logFile       vfs.File
	indexFile     vfs.File
	timeIndexFile vfs.File
	handle        *logHandle
	sealed        bool // writer-only: Seal closed the writer's files
	logDirty      bool // writer-only, sealed segments: the .log may hold unsynced writes

	size         atomic.Int64 // bytes of .log readers may read
	nextOffset   atomic.Int64 // offset after the last batch
	maxTimestamp atomic.Int64 // largest batch maxTimestamp, -1 when empty
	deleted      atomic.Bool  // set by Delete, so a reader failing on a closed file can say why

	mu        sync.RWMutex // guards index and timeIndex (appended by the writer, searched by readers)
	index     []IndexEntry
	timeIndex []TimeIndexEntry

	// Writer-only state.
	indexer       indexer
	indexFileSize int64
	timeIndexSize int64
	indexScratch  []byte // encoded entries of one Append, reused
	timeScratch   []byte
	newIndex      []IndexEntry // entries of one Append, reused
	newTimeIndex  []TimeIndexEntry
	indexesDirty  bool // index files written since the last SyncIndexes
}

// BaseOffset is the offset of the segment's first batch.
func (s *Segment) BaseOffset() int64 { return s.baseOffset }

// Size is the size of the .log in bytes.
func (s *Segment) Size() int64 { return s.size.Load() }

// NextOffset is the offset after the segment's last batch (BaseOffset when empty).
func (s *Segment) NextOffset() int64 { return s.nextOffset.Load() }

// MaxTimestamp is the largest batch maxTimestamp in the segment, -1 when it is empty.
func (s *Segment) MaxTimestamp() int64 { return s.maxTimestamp.Load() }

// Path is the path of the .log file.
func (s *Segment) Path() string { return s.fileName(LogSuffix) }

func (s *Segment) fileName(suffix string) string {
	return FileName(s.dir, s.baseOffset, suffix) + s.suffix
}

// IndexEntries returns a copy of the in-memory offset index.
func (s *Segment) IndexEntries() []IndexEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]IndexEntry(nil), s.index...)
}

// TimeIndexEntries returns a copy of the in-memory time index.
func (s *Segment) TimeIndexEntries() []TimeIndexEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]TimeIndexEntry(nil), s.timeIndex...)
}

func newSegment(fs vfs.FS, dir string, baseOffset int64, opts Options) *Segment {
	return newSegmentNamed(fs, dir, baseOffset, "", opts)
}

func newSegmentNamed(fs vfs.FS, dir string, baseOffset int64, suffix string, opts Options) *Segment {
	s := &Segment{fs: fs, dir: dir, baseOffset: baseOffset, suffix: suffix, gaps: opts.Gaps}
	files := opts.Files
	if files == nil {
		files = DefaultFileCache
	}
	s.handle = &logHandle{cache: files, fs: fs, path: s.fileName(LogSuffix)}
	s.indexer = indexer{baseOffset: baseOffset, interval: opts.interval(), maxTimestamp: -1, lastTimeIndexTs: -1}
	s.nextOffset.Store(baseOffset)
	s.maxTimestamp.Store(-1)
	return s
}

func (s *Segment) openFiles(flag int) error {
	var err error
	open := func(suffix string) vfs.File {
		if err != nil {
			return nil
		}
		var f vfs.File
		f, err = s.fs.OpenFile(s.fileName(suffix), flag, 0o644)
		return f
	}
	s.logFile = open(LogSuffix)
	s.indexFile = open(IndexSuffix)
	s.timeIndexFile = open(TimeIndexSuffix)
	if err != nil {
		s.closeFiles()
		return err
	}
	s.handle.pin(s.logFile)
	return nil
}

func (s *Segment) closeFiles() error {
	var first error
	if s.logFile != nil && s.handle.f != s.logFile {
		first = s.logFile.Close() // not pinned yet (a failed open)
	}
	if err := s.handle.close(); err != nil && first == nil {
		first = err
	}
	for _, f := range []vfs.File{s.indexFile, s.timeIndexFile} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	s.logFile, s.indexFile, s.timeIndexFile = nil, nil, nil
	return first
}

// Seal tells the segment it will not be written again (it was rolled): the index files are
// closed, and the .log is handed to the FileCache, which closes it while no reader needs it.
// Sync and SyncIndexes still make what was written durable, through descriptors of their own.
// Writer-only; a later Append or TruncateTo unseals it.
func (s *Segment) Seal() error {
	if s.sealed {
		return nil
	}
	s.logDirty = true // unknown: the owner syncs before it counts on it
	var first error
	for _, f := range []vfs.File{s.indexFile, s.timeIndexFile} {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.indexFile, s.timeIndexFile, s.logFile = nil, nil, nil
	s.handle.unpin()
	s.sealed = true
	return first
}

// Sealed reports whether Seal was called since the segment was last written to.
func (s *Segment) Sealed() bool { return s.sealed }

// Unseal reopens the writer's files of a sealed segment (a truncation makes it active again).
func (s *Segment) Unseal() error {
	if !s.sealed {
		return nil
	}
	if err := s.openFiles(os.O_RDWR); err != nil {
		return err
	}
	s.sealed = false
	return nil
}

// Create creates a new empty segment, replacing any files of the same name.
func Create(fs vfs.FS, dir string, baseOffset int64, opts Options) (*Segment, error) {
	s := newSegment(fs, dir, baseOffset, opts)
	if err := s.openFiles(os.O_RDWR | os.O_CREATE | os.O_TRUNC); err != nil {
		return nil, err
	}
	s.indexesDirty = true
	return s, nil
}

// Report says what opening a segment found and repaired.
type Report struct {
	BytesDropped     int64  // bytes truncated from the end of the .log
	DroppedPath      string // where those bytes were kept (see DroppedName), "" if none
	Reason           error  // why they were dropped (wraps ErrTorn or ErrCorrupt), nil if none
	IndexRebuilt     bool   // .index was missing, short or inconsistent and was rewritten
	TimeIndexRebuilt bool   // same for .timeindex
	IndexError       error  // what was wrong with the indexes, if anything
}

// Open opens an existing segment whose .log is trusted (it was fsynced: it lies below the
// partition's recovery point). It loads both indexes and checks them cheaply: entries in range and
// increasing, and a replay of the headers after the last .index entry that must not call for a new
// entry (which would mean the index is short). When a check fails it falls back to Recover, which
// validates every batch and rebuilds the indexes; so does a header that does not parse.
func Open(fs vfs.FS, dir string, baseOffset int64, opts Options) (*Segment, Report, error) {
	s := newSegment(fs, dir, baseOffset, opts)
	if err := s.openFiles(os.O_RDWR | os.O_CREATE); err != nil {
		return nil, Report{}, err
	}
	ok, err := s.loadTrusted()
	if err != nil {
		s.closeFiles()
		return nil, Report{}, err
	}
	if ok {
		return s, Report{}, nil
	}
	s.closeFiles()
	return Recover(fs, dir, baseOffset, opts)
}

func readAll(f vfs.File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := readFull(f, b, 0); err != nil && size > 0 {
		return nil, err
	}
	return b, nil
}

// loadTrusted loads the indexes and replays the tail. ok=false means "run Recover instead".
func (s *Segment) loadTrusted() (ok bool, err error) {
	logSize, err := s.logFile.Size()
	if err != nil {
		return false, err
	}
	if logSize > MaxSize {
		return false, fmt.Errorf("log/segment: %s: %d bytes, more than a segment can index", s.Path(), logSize)
	}
	raw, err := readAll(s.indexFile)
	if err != nil {
		return false, err
	}
	index, err := DecodeIndex(raw, logSize)
	if err != nil {
		return false, nil
	}
	raw, err = readAll(s.timeIndexFile)
	if err != nil {
		return false, nil
	}
	// Time entries are added at .index points and name a batch at or before that point.
	maxRel := int64(0)
	if len(index) > 0 {
		maxRel = int64(index[len(index)-1].RelativeOffset) + 1
	}
	timeIndex, err := DecodeTimeIndex(raw, maxRel)
	if err != nil || len(timeIndex) > len(index) {
		return false, nil
	}

	ix := &s.indexer
	pos, expected := int64(0), s.baseOffset
	if n := len(index); n > 0 {
		pos = int64(index[n-1].Position)
		expected = s.baseOffset + int64(index[n-1].RelativeOffset)
	}
	if n := len(timeIndex); n > 0 {
		ix.maxTimestamp = timeIndex[n-1].Timestamp
		ix.offsetOfMaxTimestamp = s.baseOffset + int64(timeIndex[n-1].RelativeOffset)
		ix.lastTimeIndexTs = ix.maxTimestamp
	}
	w := walker{file: s.logFile, size: logSize, gaps: s.gaps}
	first := len(index) > 0 // the batch at the last entry was indexed already
	for pos < logSize {
		h, err := w.next(pos, expected)
		if err != nil {
			if isDataError(err) {
				return false, nil
			}
			return false, err
		}
		if first {
			if h.MaxTimestamp > ix.maxTimestamp {
				ix.maxTimestamp, ix.offsetOfMaxTimestamp = h.MaxTimestamp, h.BaseOffset
			}
			ix.bytesSinceIndexEntry = int64(h.Size())
			first = false
		} else if _, addIndex, _, _ := ix.add(pos, h.BaseOffset, h.MaxTimestamp, int64(h.Size())); addIndex {
			return false, nil // the index is short
		}
		if h.LastOffset()-s.baseOffset > MaxRelativeOffset {
			return false, nil
		}
		pos += int64(h.Size())
		expected = h.NextOffset()
	}
	s.index, s.timeIndex = index, timeIndex
	s.indexFileSize = int64(len(index)) * IndexEntrySize
	s.timeIndexSize = int64(len(timeIndex)) * TimeIndexEntrySize
	s.size.Store(logSize)
	s.nextOffset.Store(expected)
	s.maxTimestamp.Store(ix.maxTimestamp)
	return true, nil
}

// rewriteIfDifferent makes f hold exactly want.
func rewriteIfDifferent(f vfs.File, want []byte) (rewritten bool, why error, err error) {
	have, err := readAll(f)
	if err != nil {
		return false, nil, err
	}
	if bytes.Equal(have, want) {
		return false, nil, nil
	}
	why = fmt.Errorf("%w: %s has %d bytes, rebuilt %d", ErrBadIndex, f.Name(), len(have), len(want))
	if err := f.Truncate(0); err != nil {
		return true, why, err
	}
	if len(want) > 0 {
		if _, err := f.WriteAt(want, 0); err != nil {
			return true, why, err
		}
	}
	return true, why, nil
}

// Append writes batches (each exactly one valid batch, offsets contiguous from NextOffset; the
// caller checked) with one Writev, then appends index entries. It does not fsync. On a write
// error it tries to truncate the .log back to its previous size and returns the error; the
// segment's visible state is unchanged. Steady state allocates nothing.
func (s *Segment) Append(batches [][]byte) error {
	if err := s.Unseal(); err != nil {
		return err
	}
	pos := s.size.Load()
	n, err := s.logFile.Writev(batches, pos)
	if err != nil {
		if n > 0 {
			if terr := s.logFile.Truncate(pos); terr != nil {
				err = errors.Join(err, fmt.Errorf("log/segment: truncating back to %d: %w", pos, terr))
			}
		}
		return err
	}
	s.indexScratch, s.timeScratch = s.indexScratch[:0], s.timeScratch[:0]
	s.newIndex, s.newTimeIndex = s.newIndex[:0], s.newTimeIndex[:0]
	next := s.nextOffset.Load()
	at := pos
	for _, b := range batches {
		base := batch.BaseOffset(b)
		h, _ := batch.ParseHeader(b) // validated by the caller
		ie, addIndex, te, addTime := s.indexer.add(at, base, h.MaxTimestamp, int64(len(b)))
		if addIndex {
			s.newIndex = append(s.newIndex, ie)
			s.indexScratch = AppendIndexEntry(s.indexScratch, ie)
		}
		if addTime {
			s.newTimeIndex = append(s.newTimeIndex, te)
			s.timeScratch = AppendTimeIndexEntry(s.timeScratch, te)
		}
		at += int64(len(b))
		next = h.NextOffset()
	}
	// Publish the size first: a reader that sees the new size but not yet the new entries only
	// scans a little further; the opposite order could hand it a position past the size.
	s.size.Store(at)
	s.nextOffset.Store(next)
	if s.indexer.maxTimestamp > s.maxTimestamp.Load() {
		s.maxTimestamp.Store(s.indexer.maxTimestamp)
	}
	if len(s.newIndex) > 0 || len(s.newTimeIndex) > 0 {
		s.mu.Lock()
		s.index = append(s.index, s.newIndex...)
		s.timeIndex = append(s.timeIndex, s.newTimeIndex...)
		s.mu.Unlock()
	}
	if len(s.indexScratch) > 0 {
		if _, err := s.indexFile.WriteAt(s.indexScratch, s.indexFileSize); err != nil {
			return err
		}
		s.indexFileSize += int64(len(s.indexScratch))
		s.indexesDirty = true
	}
	if len(s.timeScratch) > 0 {
		if _, err := s.timeIndexFile.WriteAt(s.timeScratch, s.timeIndexSize); err != nil {
			return err
		}
		s.timeIndexSize += int64(len(s.timeScratch))
		s.indexesDirty = true
	}
	return nil
}

// Sync fdatasyncs the .log.
func (s *Segment) Sync() error {
	if s.sealed {
		if !s.logDirty {
			return nil
		}
		if err := syncPath(s.fs, s.Path()); err != nil {
			return err
		}
		s.logDirty = false
		return nil
	}
	return s.logFile.Sync()
}

// syncPath fdatasyncs a file through a descriptor of its own: a sync makes the file's data
// durable whichever descriptor wrote it.
func syncPath(fs vfs.FS, path string) error {
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SyncIndexes fdatasyncs both index files if they were written since the last call. The
// partition does it when it seals a segment, so a segment below the recovery point opens with
// complete indexes.
func (s *Segment) SyncIndexes() error {
	if !s.indexesDirty {
		return nil
	}
	if s.sealed {
		for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
			if err := syncPath(s.fs, s.fileName(suffix)); err != nil {
				return err
			}
		}
		s.indexesDirty = false
		return nil
	}
	if err := s.indexFile.Sync(); err != nil {
		return err
	}
	if err := s.timeIndexFile.Sync(); err != nil {
		return err
	}
	s.indexesDirty = false
	return nil
}

// Close closes the files (without syncing).
func (s *Segment) Close() error { return s.closeFiles() }

// Delete closes and removes the segment's files. Readers holding the segment get ErrDeleted.
func (s *Segment) Delete() error {
	s.deleted.Store(true)
	s.closeFiles()
	var first error
	for _, suffix := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		if err := s.fs.Remove(s.fileName(suffix)); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	return first
}

// readErr turns a read failure on a deleted segment into ErrDeleted.
func (s *Segment) readErr(err error) error {
	if s.deleted.Load() {
		return ErrDeleted
	}
	return err
}

// headerPrefix is how much of a header the forward scans read: up to maxTimestamp.
const headerPrefix = 43

type headerPeek struct {
	baseOffset   int64
	size         int64
	lastOffset   int64
	maxTimestamp int64
}

func (s *Segment) peek(f vfs.File, pos, size int64, buf []byte) (headerPeek, error) {
	var p headerPeek
	if size-pos < batch.HeaderSize {
		return p, fmt.Errorf("%w: header at %d past size %d", ErrCorrupt, pos, size)
	}
	if _, err := readFull(f, buf[:headerPrefix], pos); err != nil {
		return p, s.readErr(err)
	}
	n, err := batch.Size(buf[:headerPrefix])
	if err != nil {
		return p, fmt.Errorf("%w at %d: %w", ErrCorrupt, pos, err)
	}
	p.baseOffset = batch.BaseOffset(buf)
	p.size = int64(n)
	p.lastOffset = p.baseOffset + int64(beUint32(buf[23:]))
	p.maxTimestamp = int64(beUint64(buf[35:]))
	return p, nil
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func beUint64(b []byte) uint64 { return uint64(beUint32(b))<<32 | uint64(beUint32(b[4:])) }

// startFor is the position and base offset of the last indexed batch at or before offset.
func (s *Segment) startFor(offset int64) (pos, baseOffset int64) {
	rel := offset - s.baseOffset
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].RelativeOffset) > rel })
	if i == 0 {
		return 0, s.baseOffset
	}
	return int64(s.index[i-1].Position), s.baseOffset + int64(s.index[i-1].RelativeOffset)
}

// Find returns the position and header of the batch that contains offset, searching the index and
// then reading headers forward. ErrNotInSegment if offset is outside [BaseOffset, NextOffset).
func (s *Segment) Find(offset int64) (pos int64, baseOffset int64, err error) {
	f, err := s.handle.acquire()
	if err != nil {
		return 0, 0, s.readErr(err)
	}
	defer s.handle.release()
	var buf [headerPrefix]byte
	p, at, err := s.find(f, offset, buf[:])
	return at, p.baseOffset, err
}

func (s *Segment) find(f vfs.File, offset int64, buf []byte) (headerPeek, int64, error) {
	size := s.size.Load()
	if offset < s.baseOffset || offset >= s.nextOffset.Load() {
		return headerPeek{}, 0, ErrNotInSegment
	}
	pos, indexedBase := s.startFor(offset)
	checkEntry := pos > 0
	for pos < size {
		p, err := s.peek(f, pos, size, buf)
		if checkEntry {
			checkEntry = false
			if err != nil || p.baseOffset != indexedBase {
				// The entry does not point at the batch it names: an index damaged on disk
				// (segments below the recovery point are loaded with cheap checks only).
				// Scanning from the start is slow but right.
				pos = 0
				continue
			}
		}
		if err != nil {
			return p, pos, err
		}
		if p.lastOffset >= offset {
			return p, pos, nil
		}
		pos += p.size
	}
	// nextOffset is published after size, so a reader can see an offset below nextOffset whose
	// batch is past the size it loaded first; treat it as not (yet) here.
	return headerPeek{}, 0, ErrNotInSegment
}

// Read appends to dst whole batches starting with the one that contains offset, stopping before a
// batch whose base offset is >= maxOffset or that would take the bytes appended past maxBytes;
// but with minOne a first batch larger than maxBytes is returned whole. ErrNotInSegment if offset
// is outside the segment.
func (s *Segment) Read(dst []byte, offset int64, maxBytes int, maxOffset int64, minOne bool) ([]byte, error) {
	f, err := s.handle.acquire()
	if err != nil {
		return dst, s.readErr(err)
	}
	defer s.handle.release()
	var buf [headerPrefix]byte
	first, pos, err := s.find(f, offset, buf[:])
	if err != nil {
		return dst, err
	}
	if first.baseOffset >= maxOffset {
		return dst, nil
	}
	size := s.size.Load()
	want := min(int64(max(maxBytes, 0)), size-pos)
	if want < first.size {
		if !minOne {
			return dst, nil
		}
		want = first.size
	}
	start := len(dst)
	dst = grow(dst, int(want))
	chunk := dst[start : start+int(want)]
	if _, err := readFull(f, chunk, pos); err != nil {
		return dst[:start], s.readErr(err)
	}
	// Keep the whole batches below maxOffset that the chunk holds.
	keep := 0
	for keep+batch.LengthPrefix <= len(chunk) {
		n, err := batch.Size(chunk[keep:])
		if err != nil {
			return dst[:start], fmt.Errorf("%w at %d: %w", ErrCorrupt, pos+int64(keep), err)
		}
		if keep+n > len(chunk) || batch.BaseOffset(chunk[keep:]) >= maxOffset {
			break
		}
		keep += n
	}
	return dst[:start+keep], nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// FindTimestamp returns the base offset and max timestamp of the first batch whose maxTimestamp
// is >= ts; found=false if there is none in this segment.
func (s *Segment) FindTimestamp(ts int64) (baseOffset, maxTimestamp int64, found bool, err error) {
	if s.maxTimestamp.Load() < ts {
		return 0, 0, false, nil
	}
	// Every batch before the one holding the last time entry below ts has a smaller timestamp
	// (entries are added when the maximum grows), so the answer lies at or after that batch.
	start := s.baseOffset
	s.mu.RLock()
	i := sort.Search(len(s.timeIndex), func(i int) bool { return s.timeIndex[i].Timestamp >= ts })
	if i > 0 {
		start = s.baseOffset + int64(s.timeIndex[i-1].RelativeOffset)
	}
	s.mu.RUnlock()
	f, err := s.handle.acquire()
	if err != nil {
		return 0, 0, false, s.readErr(err)
	}
	defer s.handle.release()
	var buf [headerPrefix]byte
	p, pos, err := s.find(f, start, buf[:])
	if err != nil {
		if errors.Is(err, ErrNotInSegment) {
			return 0, 0, false, nil
		}
		return 0, 0, false, err
	}
	size := s.size.Load()
	for {
		if p.maxTimestamp >= ts {
			return p.baseOffset, p.maxTimestamp, true, nil
		}
		pos += p.size
		if pos >= size {
			return 0, 0, false, nil
		}
		if p, err = s.peek(f, pos, size, buf[:]); err != nil {
			return 0, 0, false, err
		}
	}
}

// TruncateTo drops every batch at and after offset, which must be a batch boundary in
// [BaseOffset, NextOffset]. Indexes are trimmed in memory and on disk. Not durable until Sync.
func (s *Segment) TruncateTo(offset int64) error {
	if offset == s.nextOffset.Load() {
		return nil
	}
	if err := s.Unseal(); err != nil {
		return err
	}
	pos, base, err := s.Find(offset)
	if err != nil {
		return err
	}
	if base != offset {
		return fmt.Errorf("%w: %d is inside the batch at %d", ErrNotBoundary, offset, base)
	}
	rel := offset - s.baseOffset
	s.mu.Lock()
	ni := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].RelativeOffset) >= rel })
	nt := sort.Search(len(s.timeIndex), func(i int) bool { return int64(s.timeIndex[i].RelativeOffset) >= rel })
	s.index, s.timeIndex = s.index[:ni], s.timeIndex[:nt]
	index, timeIndex := s.index, s.timeIndex
	s.mu.Unlock()
	s.size.Store(pos)
	s.nextOffset.Store(offset)
	if err := s.logFile.Truncate(pos); err != nil {
		return err
	}
	s.indexFileSize = int64(len(index)) * IndexEntrySize
	s.timeIndexSize = int64(len(timeIndex)) * TimeIndexEntrySize
	s.indexesDirty = true
	if err := s.indexFile.Truncate(s.indexFileSize); err != nil {
		return err
	}
	if err := s.timeIndexFile.Truncate(s.timeIndexSize); err != nil {
		return err
	}
	return s.replayIndexer(index, timeIndex)
}

// replayIndexer recomputes the indexer state (bytes since the last entry, max timestamp) by
// reading the headers after the last index entry.
func (s *Segment) replayIndexer(index []IndexEntry, timeIndex []TimeIndexEntry) error {
	ix := &s.indexer
	*ix = indexer{baseOffset: s.baseOffset, interval: ix.interval, maxTimestamp: -1, lastTimeIndexTs: -1}
	if n := len(timeIndex); n > 0 {
		ix.maxTimestamp = timeIndex[n-1].Timestamp
		ix.offsetOfMaxTimestamp = s.baseOffset + int64(timeIndex[n-1].RelativeOffset)
		ix.lastTimeIndexTs = ix.maxTimestamp
	}
	pos := int64(0)
	if n := len(index); n > 0 {
		pos = int64(index[n-1].Position)
	}
	size := s.size.Load()
	var buf [headerPrefix]byte
	for pos < size {
		p, err := s.peek(s.logFile, pos, size, buf[:])
		if err != nil {
			return err
		}
		if p.maxTimestamp > ix.maxTimestamp {
			ix.maxTimestamp, ix.offsetOfMaxTimestamp = p.maxTimestamp, p.baseOffset
		}
		ix.bytesSinceIndexEntry += p.size
		pos += p.size
	}
	s.maxTimestamp.Store(ix.maxTimestamp)
	return nil
}
