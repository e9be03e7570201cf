package batch

import (
	"encoding/binary"
	"fmt"
)

var zeroHeader [HeaderSize]byte

// RecordHeader is one key/value header of a record.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Key, Value and header values alias the batch bytes they were
// decoded from: copy them to keep them past the batch's lifetime.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value (a tombstone)
	Headers   []RecordHeader
}

// Builder appends records to an uncompressed RecordBatch v2. The zero value is not ready: call
// Reset first. A Builder reuses its buffer between batches.
//
//	b.Reset()
//	b.Append(key, value, ts, nil)
//	batch := b.Finish() // valid until the next Reset
type Builder struct {
	buf            []byte
	count          int32
	baseTimestamp  int64
	maxTimestamp   int64
	producerID     int64
	producerEpoch  int16
	baseSequence   int32
	recordScratch  []byte
	attributes     int16
	firstTimestamp bool
}

// Reset starts a new batch whose records carry no producer id (non-idempotent).
func (b *Builder) Reset() {
	b.ResetProducer(NoProducerID, -1, NoSequence)
}

// ResetProducer starts a new batch stamped with a producer id, epoch and base sequence.
func (b *Builder) ResetProducer(producerID int64, epoch int16, baseSequence int32) {
	b.buf = append(b.buf[:0], zeroHeader[:]...)
	b.count = 0
	b.producerID = producerID
	b.producerEpoch = epoch
	b.baseSequence = baseSequence
	b.firstTimestamp = true
	b.attributes = 0
}

// Len is the number of records appended since Reset.
func (b *Builder) Len() int { return int(b.count) }

// Size is the number of bytes the batch would have if finished now.
func (b *Builder) Size() int { return len(b.buf) }

// EstimateRecordSize is an upper bound of the bytes one record adds to a batch.
func EstimateRecordSize(key, value []byte, headers []RecordHeader) int {
	n := 5 + 1 + 10 + 5 + 5 + len(key) + 5 + len(value) + 5
	for _, h := range headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// Append adds one record. timestamp is in milliseconds since the epoch.
func (b *Builder) Append(key, value []byte, timestamp int64, headers []RecordHeader) {
	if b.firstTimestamp {
		b.baseTimestamp = timestamp
		b.maxTimestamp = timestamp
		b.firstTimestamp = false
	}
	if timestamp > b.maxTimestamp {
		b.maxTimestamp = timestamp
	}
	r := b.recordScratch[:0]
	r = append(r, 0) // attributes
	r = binary.AppendVarint(r, timestamp-b.baseTimestamp)
	r = binary.AppendVarint(r, int64(b.count))
	r = appendVarBytes(r, key)
	r = appendVarBytes(r, value)
	r = binary.AppendVarint(r, int64(len(headers)))
	for _, h := range headers {
		r = binary.AppendVarint(r, int64(len(h.Key)))
		r = append(r, h.Key...)
		r = appendVarBytes(r, h.Value)
	}
	b.buf = binary.AppendVarint(b.buf, int64(len(r)))
	b.buf = append(b.buf, r...)
	b.recordScratch = r
	b.count++
}

func appendVarBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

// Finish writes the header (baseOffset 0, partitionLeaderEpoch -1, CRC) and returns the batch. The
// returned slice aliases the Builder's buffer and is valid until the next Reset.
func (b *Builder) Finish() []byte {
	h := b.buf[:HeaderSize]
	binary.BigEndian.PutUint64(h[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(h[offBatchLength:], uint32(len(b.buf)-LengthPrefix))
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], uint32(0xffffffff))
	h[offMagic] = Magic
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(b.attributes))
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(b.count-1))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(b.baseTimestamp))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(b.maxTimestamp))
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(b.producerID))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], uint16(b.producerEpoch))
	binary.BigEndian.PutUint32(h[offBaseSequence:], uint32(b.baseSequence))
	binary.BigEndian.PutUint32(h[offRecordCount:], uint32(b.count))
	binary.BigEndian.PutUint32(h[offCRC:], Checksum(b.buf))
	return b.buf
}

// Records decodes the records of one uncompressed batch and calls fn for each (see DecodeRecords
// for what fn may keep). It does not check the CRC (see Validate). A batch whose magic is not 2
// gives ErrBadMagic; a compressed batch gives ErrCompression: decompress its records section first
// (codec/compress.DecompressBatch) and pass it to DecodeRecords.
func Records(b []byte, fn func(*Record) error) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Size() > len(b) {
		return ErrShort
	}
	if h.Magic != Magic {
		return fmt.Errorf("%w: %d", ErrBadMagic, h.Magic)
	}
	if h.Codec() != CodecNone {
		return fmt.Errorf("%w: codec %d", ErrCompression, h.Codec())
	}
	return DecodeRecords(&h, b[HeaderSize:h.Size()], fn)
}

// DecodeRecords decodes an uncompressed records section of a batch whose header is h. fn gets the
// same *Record for every record: its Headers slice is reused, and Key, Value and header values alias
// p, so fn must copy whatever it keeps.
//
// The rules are Kafka's (DefaultRecord.readFrom): lengths, offsetDelta and the header count are
// 32-bit varints (at most 5 bytes); a negative key, value or header value length means null; a
// negative header count or header key length is an error; each record must consume exactly its
// declared length and the records exactly p.
func DecodeRecords(h *Header, p []byte, fn func(*Record) error) error {
	var rec Record
	return DecodeRecordsInto(h, p, &rec, fn)
}

// DecodeRecordsInto is DecodeRecords decoding into a caller-owned *Record, so a hot path that
// reuses one Record (and its Headers slice) decodes without allocating.
func DecodeRecordsInto(h *Header, p []byte, rec *Record, fn func(*Record) error) error {
	return WalkRecords(h, p, rec, func(r *Record, _ []byte) error { return fn(r) })
}

// WalkRecords is DecodeRecordsInto that also hands fn each record's encoded bytes (its length
// prefix included), which a batch holding a subset of the records can reuse unchanged: offset
// and timestamp deltas are relative to the batch's base offset and timestamp.
func WalkRecords(h *Header, p []byte, rec *Record, fn func(r *Record, raw []byte) error) error {
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := varint32(p)
		if n <= 0 || length < 0 || len(p)-n < int(length) {
			return fmt.Errorf("%w: record %d length", ErrBadRecord, i)
		}
		raw := p[: n+int(length) : n+int(length)]
		body := p[n : n+int(length)]
		p = p[n+int(length):]
		if err := decodeRecord(h, body, rec); err != nil {
			return fmt.Errorf("%w: record %d", err, i)
		}
		if err := fn(rec, raw); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(p))
	}
	return nil
}

func decodeRecord(h *Header, p []byte, rec *Record) error {
	if len(p) < 1 {
		return ErrBadRecord
	}
	p = p[1:] // attributes, unused
	tsDelta, n := binary.Varint(p)
	if n <= 0 {
		return ErrBadRecord
	}
	p = p[n:]
	offDelta, n := varint32(p)
	if n <= 0 {
		return ErrBadRecord
	}
	p = p[n:]
	var ok bool
	if rec.Key, p, ok = readVarBytes(p); !ok {
		return ErrBadRecord
	}
	if rec.Value, p, ok = readVarBytes(p); !ok {
		return ErrBadRecord
	}
	count, n := varint32(p)
	if n <= 0 || count < 0 || int(count) > len(p)-n {
		return ErrBadRecord
	}
	p = p[n:]
	rec.Headers = rec.Headers[:0]
	for j := int32(0); j < count; j++ {
		var k, v []byte
		if k, p, ok = readVarBytes(p); !ok || k == nil {
			return ErrBadRecord
		}
		if v, p, ok = readVarBytes(p); !ok {
			return ErrBadRecord
		}
		rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
	}
	if len(p) != 0 {
		return ErrBadRecord
	}
	rec.Offset = h.BaseOffset + int64(offDelta)
	if h.LogAppendTime() {
		rec.Timestamp = h.MaxTimestamp
	} else {
		rec.Timestamp = h.BaseTimestamp + tsDelta
	}
	return nil
}

// varint32 decodes a zig-zag varint that must fit in 32 bits, as Kafka's "varint" type: at most 5
// bytes, and the fifth carries only the top 4 bits. n <= 0 means malformed, as binary.Varint.
func varint32(p []byte) (v int32, n int) {
	var x uint32
	for i := 0; i < 5; i++ {
		if i == len(p) {
			return 0, 0
		}
		b := p[i]
		if i == 4 && b > 0x0f {
			return 0, -1
		}
		x |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return int32(x>>1) ^ -int32(x&1), i + 1
		}
	}
	return 0, -1 // unreachable: the fifth byte either ends the varint or fails above
}

// readVarBytes reads a varint-length-prefixed byte string. Like Kafka, any negative length is null.
func readVarBytes(p []byte) (v, rest []byte, ok bool) {
	l, n := varint32(p)
	if n <= 0 {
		return nil, p, false
	}
	p = p[n:]
	if l < 0 {
		return nil, p, true
	}
	if len(p) < int(l) {
		return nil, p, false
	}
	return p[:l:l], p[l:], true
}
