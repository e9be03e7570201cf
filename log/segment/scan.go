package segment

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// walker reads a .log file batch by batch. It owns buf, reused for every batch.
type walker struct {
	file     vfs.File
	size     int64 // file size: nothing is read past it
	validate bool  // full batch.Validate (reads whole batches) instead of headers only
	gaps     bool  // the expected base offset is a minimum (a compacted segment)
	buf      []byte
}

// next reads the batch at pos with its expected base offset (-1: do not check). It returns the
// header, or an error wrapping ErrTorn (the batch does not fit in the file: a torn write) or
// ErrCorrupt (it fits but is invalid). Only I/O errors are returned unwrapped.
func (w *walker) next(pos, expectedBase int64) (batch.Header, error) {
	var h batch.Header
	left := w.size - pos
	if left < batch.HeaderSize {
		return h, fmt.Errorf("%w: %d bytes at position %d, less than a header", ErrTorn, left, pos)
	}
	if cap(w.buf) < batch.HeaderSize {
		w.buf = make([]byte, batch.HeaderSize, 64<<10)
	}
	hdr := w.buf[:batch.HeaderSize]
	if _, err := readFull(w.file, hdr, pos); err != nil {
		return h, err
	}
	h, err := batch.ParseHeader(hdr)
	if err != nil {
		return h, fmt.Errorf("%w at position %d: %w", ErrCorrupt, pos, err)
	}
	if int64(h.Size()) > left {
		// A length past the end of the file is what a torn append looks like; it could also be
		// a corrupt length, and either way nothing from here on can be trusted.
		return h, fmt.Errorf("%w: batch at position %d claims %d bytes, %d left", ErrTorn, pos, h.Size(), left)
	}
	if w.validate {
		if cap(w.buf) < h.Size() {
			// The header read above lives in the old buffer: carry it over.
			grown := make([]byte, h.Size())
			copy(grown, hdr)
			w.buf = grown
		}
		whole := w.buf[:h.Size()]
		if _, err := readFull(w.file, whole[batch.HeaderSize:], pos+batch.HeaderSize); err != nil {
			return h, err
		}
		if _, err := batch.ValidateStored(whole); err != nil {
			return h, fmt.Errorf("%w at position %d: %w", ErrCorrupt, pos, err)
		}
	} else if h.Magic != batch.Magic {
		return h, fmt.Errorf("%w at position %d: %w: %d", ErrCorrupt, pos, batch.ErrBadMagic, h.Magic)
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w at position %d: negative lastOffsetDelta %d", ErrCorrupt, pos, h.LastOffsetDelta)
	}
	if expectedBase >= 0 && (h.BaseOffset < expectedBase || !w.gaps && h.BaseOffset != expectedBase) {
		return h, fmt.Errorf("%w at position %d: base offset %d, expected %d", ErrCorrupt, pos, h.BaseOffset, expectedBase)
	}
	return h, nil
}

func readFull(f vfs.File, p []byte, off int64) (int, error) {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// isDataError reports whether err says the log's content is bad, as opposed to an I/O failure.
func isDataError(err error) bool {
	return errors.Is(err, ErrTorn) || errors.Is(err, ErrCorrupt)
}

// Scan validates the .log file at path batch by batch and calls fn with each batch's position and
// header. At the first bad batch it calls fn once more with the error (wrapping ErrTorn or
// ErrCorrupt) and stops. If the name carries a base offset, the first batch must start there and
// offsets must be contiguous. An error returned by fn stops the scan and is returned; so is an
// I/O error. Scan never modifies the file: it is the engine of the `segment dump` tool.
func Scan(fs vfs.FS, path string, fn func(pos int64, h batch.Header, err error) error) error {
	return scanFile(fs, path, false, false, fn)
}

// ScanCompacted is Scan for a segment the log cleaner rewrote: offsets must increase, but may
// skip the offsets of removed batches.
func ScanCompacted(fs vfs.FS, path string, fn func(pos int64, h batch.Header, err error) error) error {
	return scanFile(fs, path, false, true, fn)
}

// scanFile is Scan, or Salvage when salvage is set.
func scanFile(fs vfs.FS, path string, salvage, gaps bool, fn func(pos int64, h batch.Header, err error) error) error {
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	expected := int64(-1)
	if base, suffix, ok := ParseFileName(filepath.Base(path)); ok && suffix == LogSuffix && !salvage {
		expected = base
	}
	w := walker{file: f, size: size, validate: true, gaps: gaps}
	var window []byte
	for pos := int64(0); pos < size; {
		h, err := w.next(pos, expected)
		if err != nil {
			if !isDataError(err) {
				return err
			}
			if err := fn(pos, h, err); err != nil || !salvage {
				return err
			}
			if pos, err = resync(&w, &window, pos+1); err != nil {
				return err
			}
			continue
		}
		if err := fn(pos, h, nil); err != nil {
			return err
		}
		pos += int64(h.Size())
		if !salvage {
			expected = h.NextOffset()
		}
	}
	return nil
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Batches    int   // valid batches
	ValidBytes int64 // length of the valid prefix
	Size       int64 // file size
	NextOffset int64 // offset after the last valid batch (-1 when there is none)
	// BadPosition is the position of the first bad batch, -1 when the whole file is valid.
	BadPosition int64
	Reason      error // why the batch at BadPosition is bad (wraps ErrTorn or ErrCorrupt)
}

// Verify checks the .log file at path without modifying it (`segment verify`).
func Verify(fs vfs.FS, path string) (VerifyResult, error) {
	return verify(fs, path, false)
}

// VerifyCompacted is Verify for a segment the log cleaner rewrote (see ScanCompacted).
func VerifyCompacted(fs vfs.FS, path string) (VerifyResult, error) {
	return verify(fs, path, true)
}

func verify(fs vfs.FS, path string, gaps bool) (VerifyResult, error) {
	res := VerifyResult{BadPosition: -1, NextOffset: -1}
	if fi, err := fs.Stat(path); err == nil {
		res.Size = fi.Size()
	}
	err := scanFile(fs, path, false, gaps, func(pos int64, h batch.Header, err error) error {
		if err != nil {
			res.BadPosition = pos
			res.Reason = err
			return nil
		}
		res.Batches++
		res.ValidBytes = pos + int64(h.Size())
		res.NextOffset = h.NextOffset()
		return nil
	})
	return res, err
}

// Salvage is Scan for a file that may hold damage anywhere, such as a file of bytes recovery cut
// off (see DroppedName): after a bad batch it calls fn with the error, then looks for the next
// position where a whole valid batch starts and goes on from there. Offsets are not checked for
// continuity. It never modifies the file.
func Salvage(fs vfs.FS, path string, fn func(pos int64, h batch.Header, err error) error) error {
	return scanFile(fs, path, true, false, fn)
}

// resync returns the first position at or after from where a valid batch starts, or the file size.
// It reads the file in windows and validates only where the magic byte and the length fit.
func resync(w *walker, window *[]byte, from int64) (int64, error) {
	const windowBytes = 1 << 20
	if cap(*window) < windowBytes {
		*window = make([]byte, windowBytes)
	}
	for start := from; start+batch.HeaderSize <= w.size; {
		n := min(int64(windowBytes), w.size-start)
		buf := (*window)[:n]
		if _, err := readFull(w.file, buf, start); err != nil {
			return 0, err
		}
		for i := 0; i+batch.HeaderSize <= len(buf); i++ {
			if buf[i+16] != batch.Magic {
				continue
			}
			size, err := batch.Size(buf[i:])
			if err != nil || int64(size) > w.size-(start+int64(i)) {
				continue
			}
			if _, err := w.next(start+int64(i), -1); err == nil {
				return start + int64(i), nil
			} else if !isDataError(err) {
				return 0, err
			}
		}
		// Candidates whose header crosses the window's end are looked at in the next window.
		start += n - batch.HeaderSize + 1
	}
	return w.size, nil
}

// Headers calls fn with the header of every batch from the one that holds offset (or the first
// after it) to the end of the segment, reading headers only: the batches were validated when the
// segment was recovered. Safe from any goroutine.
func (s *Segment) Headers(offset int64, fn func(h batch.Header) error) error {
	offset = max(offset, s.baseOffset)
	if offset >= s.NextOffset() {
		return nil
	}
	f, err := s.handle.acquire()
	if err != nil {
		return s.readErr(err)
	}
	defer s.handle.release()
	var buf [headerPrefix]byte
	_, pos, err := s.find(f, offset, buf[:])
	if err != nil {
		return err
	}
	size := s.size.Load()
	w := walker{file: f, size: size}
	for pos < size {
		h, err := w.next(pos, -1)
		if err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}
