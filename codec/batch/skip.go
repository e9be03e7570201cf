package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Per-batch limits. They are what a valid batch can hold anyway, or far above what clients send;
// they exist so a small hostile batch cannot claim an unbounded amount of work.
const (
	// MinRecordSize is the smallest encoding of one record: its length, attributes, timestamp
	// delta, offset delta, key length, value length and header count, one byte each. A batch can
	// hold at most (records section bytes) / MinRecordSize records.
	MinRecordSize = 7
	// MaxRecordHeaders bounds the headers of one record. Kafka sets no limit; clients send a
	// handful.
	MaxRecordHeaders = 10_000
)

// Errors of the record walk, wrapped with detail. A malformed record gives ErrBadRecord.
var (
	ErrTooManyRecords = errors.New("codec/batch: record count exceeds what the batch can hold")
	ErrTooManyHeaders = errors.New("codec/batch: record has too many headers")
	ErrRecordCount    = errors.New("codec/batch: records present disagree with the record count")
)

// skipBufferSize is the buffer a RecordSkipper reads a stream through.
const skipBufferSize = 32 << 10

// RecordSkipper walks the records of one batch the way Kafka's skip-key-value iterator does:
// it checks every record's structure (varint lengths bounded and in range, every field inside
// the record's declared length, the header count within MaxRecordHeaders, exactly the declared
// number of records and nothing after them) and yields each record's offset and timestamp,
// skipping keys, values and headers without copying them.
//
// It reads either a records section in memory (ResetBytes) or a stream such as a decompressing
// reader (ResetReader), which it reads through a fixed 32 KiB buffer whatever the records' sizes.
// The zero value is ready for Reset. A RecordSkipper is reused: it allocates its buffer once.
//
//	s.ResetBytes(&h, section)
//	for s.Next() {
//		_ = s.Offset()
//	}
//	err := s.Err()
type RecordSkipper struct {
	r   io.Reader // nil in memory
	buf []byte    // the stream's buffer (skipBufferSize), kept across Resets
	p   []byte    // unread bytes: the rest of the section, or a window of buf

	baseOffset, baseTimestamp, maxTimestamp int64
	logAppendTime                           bool

	count, read int32
	offsetDelta int32
	tsDelta     int64
	keyNull     bool
	err         error
	done        bool
	eof         bool // the stream returned io.EOF
}

// ResetBytes starts a walk of the uncompressed records section p of the batch whose header is h.
func (s *RecordSkipper) ResetBytes(h *Header, p []byte) {
	s.reset(h, nil)
	s.p = p
	if int64(h.RecordCount)*MinRecordSize > int64(len(p)) {
		s.fail(fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrTooManyRecords, h.RecordCount, len(p)))
	}
}

// ResetReader starts a walk of the records section of the batch whose header is h, read from r
// (a decompressing reader: errors it returns end the walk and are wrapped by Err). maxSize is
// the most r may produce, which bounds the records the batch can hold.
func (s *RecordSkipper) ResetReader(h *Header, r io.Reader, maxSize int) {
	s.reset(h, r)
	if cap(s.buf) < skipBufferSize {
		s.buf = make([]byte, skipBufferSize)
	}
	s.buf = s.buf[:skipBufferSize]
	s.p = s.buf[:0]
	if int64(h.RecordCount)*MinRecordSize > int64(maxSize) {
		s.fail(fmt.Errorf("%w: %d records cannot fit in %d decompressed bytes", ErrTooManyRecords, h.RecordCount, maxSize))
	}
}

func (s *RecordSkipper) reset(h *Header, r io.Reader) {
	s.r = r
	s.baseOffset, s.baseTimestamp, s.maxTimestamp = h.BaseOffset, h.BaseTimestamp, h.MaxTimestamp
	s.logAppendTime = h.LogAppendTime()
	s.count, s.read = h.RecordCount, 0
	s.err, s.done, s.eof = nil, false, false
	if h.RecordCount < 0 {
		s.fail(fmt.Errorf("%w: negative record count %d", ErrRecordCount, h.RecordCount))
	}
}

// Release drops the references to the section or reader, keeping the buffer.
func (s *RecordSkipper) Release() {
	s.r = nil
	s.p = nil
}

// Err is the error that ended the walk, or nil once every record was walked.
func (s *RecordSkipper) Err() error { return s.err }

// Offset is the current record's offset (the batch's base offset plus its offset delta).
func (s *RecordSkipper) Offset() int64 { return s.baseOffset + int64(s.offsetDelta) }

// KeyNull reports whether the current record's key is null (a compacted topic refuses such
// records).
func (s *RecordSkipper) KeyNull() bool { return s.keyNull }

// OffsetDelta is the current record's offset delta as encoded.
func (s *RecordSkipper) OffsetDelta() int32 { return s.offsetDelta }

// Timestamp is the current record's timestamp (the batch's max timestamp for LogAppendTime).
func (s *RecordSkipper) Timestamp() int64 {
	if s.logAppendTime {
		return s.maxTimestamp
	}
	return s.baseTimestamp + s.tsDelta
}

// Index is the number of records walked so far (the current record's index plus one).
func (s *RecordSkipper) Index() int32 { return s.read }

func (s *RecordSkipper) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	s.done = true
}

// Next walks one record. It returns false after the last record (then Err is nil) or at the
// first problem (Err says which).
func (s *RecordSkipper) Next() bool {
	if s.done {
		return false
	}
	if s.read == s.count {
		s.done = true
		if s.fill(1) > 0 {
			s.fail(fmt.Errorf("%w: records continue after the %d declared", ErrRecordCount, s.count))
		}
		return false
	}
	i := s.read
	if s.fill(1) == 0 {
		if s.err == nil {
			s.fail(fmt.Errorf("%w: the batch declares %d records but holds %d", ErrRecordCount, s.count, i))
		}
		return false
	}
	length, ok := s.varint32()
	if !ok || length < 0 {
		s.fail(fmt.Errorf("%w: record %d length", ErrBadRecord, i))
		return false
	}
	n := int(length)
	if s.r != nil && n > len(s.p) && n <= len(s.buf) {
		s.fill(n)
	}
	var err error
	if n <= len(s.p) {
		// The whole record is at hand (always, in memory): walk it in place.
		s.tsDelta, s.offsetDelta, s.keyNull, err = skipRecordBody(s.p[:n])
		s.p = s.p[n:]
	} else {
		err = s.record(n)
	}
	if err != nil {
		s.fail(fmt.Errorf("%w: record %d: %w", ErrBadRecord, i, err))
		return false
	}
	s.read++
	return true
}

// skipRecordBody walks one whole record body in memory.
func skipRecordBody(p []byte) (tsDelta int64, offDelta int32, keyNull bool, err error) {
	if len(p) < 1 {
		return 0, 0, false, errTruncated
	}
	p = p[1:] // attributes
	tsDelta, n := binary.Varint(p)
	if n <= 0 {
		return 0, 0, false, errBadField
	}
	p = p[n:]
	if offDelta, n = varint32(p); n <= 0 {
		return 0, 0, false, errBadField
	}
	p = p[n:]
	var ok bool
	if l, n := varint32(p); n > 0 && l < 0 {
		keyNull = true
	}
	if p, ok = skipVarBytes(p, true); !ok {
		return 0, 0, false, errBadField
	}
	if p, ok = skipVarBytes(p, true); !ok {
		return 0, 0, false, errBadField
	}
	count, n := varint32(p)
	if n <= 0 || count < 0 {
		return 0, 0, false, errBadField
	}
	if count > MaxRecordHeaders {
		return 0, 0, false, fmt.Errorf("%w: %d, limit %d", ErrTooManyHeaders, count, MaxRecordHeaders)
	}
	p = p[n:]
	if int(count) > len(p)/2 { // a header takes at least two bytes
		return 0, 0, false, fmt.Errorf("%w: %d headers in %d bytes", errOverrun, count, len(p))
	}
	for range count {
		if p, ok = skipVarBytes(p, false); !ok {
			return 0, 0, false, errBadField
		}
		if p, ok = skipVarBytes(p, true); !ok {
			return 0, 0, false, errBadField
		}
	}
	if len(p) != 0 {
		return 0, 0, false, errUnderrun
	}
	return tsDelta, offDelta, keyNull, nil
}

// skipVarBytes skips a varint-length-prefixed byte string; a negative length is null where
// nullOK.
func skipVarBytes(p []byte, nullOK bool) ([]byte, bool) {
	l, n := varint32(p)
	if n <= 0 {
		return p, false
	}
	p = p[n:]
	if l < 0 {
		return p, nullOK
	}
	if len(p) < int(l) {
		return p, false
	}
	return p[l:], true
}

var (
	errTruncated  = errors.New("ends before its declared length")
	errOverrun    = errors.New("fields run past its declared length")
	errUnderrun   = errors.New("declared length exceeds its fields")
	errBadField   = errors.New("malformed field")
	errNullHeader = errors.New("header key is null")
)

// record walks one record body of n bytes.
func (s *RecordSkipper) record(n int) error {
	if s.r == nil && n > len(s.p) {
		return errTruncated
	}
	rem := n // bytes of the record not consumed yet
	// attributes
	if err := s.skipIn(&rem, 1); err != nil {
		return err
	}
	// timestampDelta: a varlong of at most 10 bytes
	s.fill(min(binary.MaxVarintLen64, rem))
	ts, k := binary.Varint(s.p[:min(len(s.p), rem)])
	if k <= 0 {
		return s.fieldError(rem)
	}
	s.tsDelta = ts
	s.p = s.p[k:]
	rem -= k
	off, err := s.varint32In(&rem)
	if err != nil {
		return err
	}
	s.offsetDelta = off
	// key, value
	l, err := s.varint32In(&rem)
	if err != nil {
		return err
	}
	s.keyNull = l < 0
	if l > 0 {
		if err := s.skipIn(&rem, int(l)); err != nil {
			return err
		}
	}
	if err := s.skipBytesIn(&rem, true); err != nil {
		return err
	}
	headers, err := s.varint32In(&rem)
	if err != nil {
		return err
	}
	if headers < 0 {
		return fmt.Errorf("%w: header count %d", errBadField, headers)
	}
	if headers > MaxRecordHeaders {
		return fmt.Errorf("%w: %d, limit %d", ErrTooManyHeaders, headers, MaxRecordHeaders)
	}
	if int(headers) > rem/2 { // a header takes at least two bytes
		return fmt.Errorf("%w: %d headers in %d bytes", errOverrun, headers, rem)
	}
	for range headers {
		if err := s.skipBytesIn(&rem, false); err != nil {
			return err
		}
		if err := s.skipBytesIn(&rem, true); err != nil {
			return err
		}
	}
	if rem != 0 {
		return errUnderrun
	}
	return nil
}

// fieldError says why a field could not be read with rem bytes left in the record.
func (s *RecordSkipper) fieldError(rem int) error {
	if s.err != nil {
		return s.err
	}
	if rem == 0 || len(s.p) == 0 {
		if rem > 0 {
			return errTruncated
		}
		return errOverrun
	}
	return errBadField
}

// varint32In reads a Kafka varint inside the record.
func (s *RecordSkipper) varint32In(rem *int) (int32, error) {
	s.fill(min(5, *rem))
	v, k := varint32(s.p[:min(len(s.p), *rem)])
	if k <= 0 {
		return 0, s.fieldError(*rem)
	}
	s.p = s.p[k:]
	*rem -= k
	return v, nil
}

// varint32 reads a Kafka varint outside any record (a record's length).
func (s *RecordSkipper) varint32() (int32, bool) {
	s.fill(5)
	v, k := varint32(s.p)
	if k <= 0 {
		return 0, false
	}
	s.p = s.p[k:]
	return v, true
}

// skipBytesIn skips a varint-length-prefixed byte string inside the record. A negative length
// is null where nullOK (keys, values, header values); header keys must not be null.
func (s *RecordSkipper) skipBytesIn(rem *int, nullOK bool) error {
	l, err := s.varint32In(rem)
	if err != nil {
		return err
	}
	if l < 0 {
		if !nullOK {
			return errNullHeader
		}
		return nil
	}
	return s.skipIn(rem, int(l))
}

// skipIn consumes n bytes of the record.
func (s *RecordSkipper) skipIn(rem *int, n int) error {
	if n > *rem {
		return errOverrun
	}
	for n > 0 {
		if len(s.p) == 0 && s.fill(1) == 0 {
			if s.err != nil {
				return s.err
			}
			return errTruncated
		}
		k := min(n, len(s.p))
		s.p = s.p[k:]
		n -= k
		*rem -= k
	}
	return nil
}

// fill makes at least n bytes available in p when the stream has them (n at most the buffer),
// and returns len(p). In memory it only reports what is left. A stream error is kept in err.
func (s *RecordSkipper) fill(n int) int {
	if len(s.p) >= n || s.r == nil || s.eof || s.err != nil {
		return len(s.p)
	}
	// Move the unread tail to the front, then read after it.
	k := copy(s.buf, s.p)
	for empty := 0; k < n; {
		m, err := s.r.Read(s.buf[k:])
		k += m
		if err == io.EOF {
			s.eof = true
			break
		}
		if err == nil && m == 0 {
			if empty++; empty < 100 { // as io.ReadAtLeast's callers tolerate a few empty reads
				continue
			}
			err = io.ErrNoProgress
		}
		if err != nil {
			s.err = fmt.Errorf("codec/batch: reading records: %w", err)
			s.done = true
			break
		}
	}
	s.p = s.buf[:k]
	return len(s.p)
}
