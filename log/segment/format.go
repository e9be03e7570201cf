package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// File name suffixes.
const (
	LogSuffix       = ".log"
	IndexSuffix     = ".index"
	TimeIndexSuffix = ".timeindex"
)

// Sizes of the index entries, in bytes.
const (
	IndexEntrySize     = 8
	TimeIndexEntrySize = 12
)

// DefaultIndexIntervalBytes is the log bytes between two index entries when Options leaves it 0.
const DefaultIndexIntervalBytes = 4096

// MaxRelativeOffset is the largest offset distance from the base offset a segment can hold: the
// indexes store it in 32 bits. The partition rolls before reaching it.
const MaxRelativeOffset = 1<<32 - 1

// MaxSize is the largest .log a segment can hold: index positions are 32 bits.
const MaxSize = 1<<32 - 1

// Errors.
var (
	ErrCorrupt       = errors.New("log/segment: corrupt batch")
	ErrTorn          = errors.New("log/segment: torn batch")
	ErrBadIndex      = errors.New("log/segment: inconsistent index")
	ErrNotInSegment  = errors.New("log/segment: offset not in segment")
	ErrNotBoundary   = errors.New("log/segment: offset is not a batch boundary")
	ErrDeleted       = errors.New("log/segment: segment deleted")
	ErrOffsetsTooFar = errors.New("log/segment: offset too far from the segment base")
)

// FileName is the path of a segment file: dir/<20-digit base offset><suffix>.
func FileName(dir string, baseOffset int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", baseOffset, suffix))
}

// ParseFileName splits a segment file name (without directory) into its base offset and suffix.
func ParseFileName(name string) (baseOffset int64, suffix string, ok bool) {
	dot := strings.IndexByte(name, '.')
	if dot != 20 {
		return 0, "", false
	}
	base, err := strconv.ParseInt(name[:dot], 10, 64)
	if err != nil || base < 0 {
		return 0, "", false
	}
	return base, name[dot:], true
}

// IndexEntry is one .index entry.
type IndexEntry struct {
	RelativeOffset uint32
	Position       uint32
}

// TimeIndexEntry is one .timeindex entry.
type TimeIndexEntry struct {
	Timestamp      int64
	RelativeOffset uint32
}

// AppendIndexEntry appends e's encoding to dst.
func AppendIndexEntry(dst []byte, e IndexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.RelativeOffset)
	return binary.BigEndian.AppendUint32(dst, e.Position)
}

// AppendTimeIndexEntry appends e's encoding to dst.
func AppendTimeIndexEntry(dst []byte, e TimeIndexEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Timestamp))
	return binary.BigEndian.AppendUint32(dst, e.RelativeOffset)
}

// DecodeIndex decodes a .index file. It returns the entries of the longest consistent prefix and
// an error wrapping ErrBadIndex if the rest is not: a torn entry, offsets or positions that do not
// increase, or a position at or past logSize.
func DecodeIndex(b []byte, logSize int64) ([]IndexEntry, error) {
	entries := make([]IndexEntry, 0, len(b)/IndexEntrySize)
	for i := 0; i+IndexEntrySize <= len(b); i += IndexEntrySize {
		e := IndexEntry{
			RelativeOffset: binary.BigEndian.Uint32(b[i:]),
			Position:       binary.BigEndian.Uint32(b[i+4:]),
		}
		if int64(e.Position) >= logSize {
			return entries, fmt.Errorf("%w: entry %d position %d past log size %d", ErrBadIndex, i/IndexEntrySize, e.Position, logSize)
		}
		if n := len(entries); n > 0 && (e.RelativeOffset <= entries[n-1].RelativeOffset || e.Position <= entries[n-1].Position) {
			return entries, fmt.Errorf("%w: entry %d does not increase", ErrBadIndex, i/IndexEntrySize)
		}
		if e.Position == 0 || e.RelativeOffset == 0 {
			return entries, fmt.Errorf("%w: entry %d points at the segment start", ErrBadIndex, i/IndexEntrySize)
		}
		entries = append(entries, e)
	}
	if len(b)%IndexEntrySize != 0 {
		return entries, fmt.Errorf("%w: %d trailing bytes", ErrBadIndex, len(b)%IndexEntrySize)
	}
	return entries, nil
}

// DecodeTimeIndex decodes a .timeindex file like DecodeIndex: timestamps must strictly increase,
// relative offsets must not decrease and must stay below maxRelativeOffset (exclusive).
func DecodeTimeIndex(b []byte, maxRelativeOffset int64) ([]TimeIndexEntry, error) {
	entries := make([]TimeIndexEntry, 0, len(b)/TimeIndexEntrySize)
	for i := 0; i+TimeIndexEntrySize <= len(b); i += TimeIndexEntrySize {
		e := TimeIndexEntry{
			Timestamp:      int64(binary.BigEndian.Uint64(b[i:])),
			RelativeOffset: binary.BigEndian.Uint32(b[i+8:]),
		}
		if int64(e.RelativeOffset) >= maxRelativeOffset {
			return entries, fmt.Errorf("%w: time entry %d offset past the log end", ErrBadIndex, i/TimeIndexEntrySize)
		}
		if n := len(entries); n > 0 && (e.Timestamp <= entries[n-1].Timestamp || e.RelativeOffset < entries[n-1].RelativeOffset) {
			return entries, fmt.Errorf("%w: time entry %d does not increase", ErrBadIndex, i/TimeIndexEntrySize)
		}
		entries = append(entries, e)
	}
	if len(b)%TimeIndexEntrySize != 0 {
		return entries, fmt.Errorf("%w: %d trailing bytes", ErrBadIndex, len(b)%TimeIndexEntrySize)
	}
	return entries, nil
}

// indexer applies the sparse-index rule batch by batch. Append, Recover and the tail check of Open
// all use it, so the three always agree on where entries go.
type indexer struct {
	baseOffset           int64
	interval             int64
	bytesSinceIndexEntry int64
	maxTimestamp         int64 // largest batch maxTimestamp so far, -1 when none
	offsetOfMaxTimestamp int64
	lastTimeIndexTs      int64 // timestamp of the last .timeindex entry, -1 when none
}

// add accounts for the batch of size bytes at position pos and reports which entries it adds.
func (ix *indexer) add(pos int64, baseOffset, maxTimestamp int64, size int64) (ie IndexEntry, addIndex bool, te TimeIndexEntry, addTime bool) {
	if maxTimestamp > ix.maxTimestamp {
		ix.maxTimestamp = maxTimestamp
		ix.offsetOfMaxTimestamp = baseOffset
	}
	if ix.bytesSinceIndexEntry >= ix.interval {
		ie = IndexEntry{RelativeOffset: uint32(baseOffset - ix.baseOffset), Position: uint32(pos)}
		addIndex = true
		if ix.maxTimestamp > ix.lastTimeIndexTs {
			te = TimeIndexEntry{Timestamp: ix.maxTimestamp, RelativeOffset: uint32(ix.offsetOfMaxTimestamp - ix.baseOffset)}
			addTime = true
			ix.lastTimeIndexTs = ix.maxTimestamp
		}
		ix.bytesSinceIndexEntry = 0
	}
	ix.bytesSinceIndexEntry += size
	return ie, addIndex, te, addTime
}
