// Package batch reads, checks, patches and builds Kafka RecordBatch v2 ("magic 2") bytes.
//
// Thorstream stores record batches exactly as producers send them. The broker only rewrites the
// two header fields that the CRC does not cover: baseOffset and partitionLeaderEpoch. Every
// protocol (the Thorstream binary protocol and the Kafka wire protocol) and the on-disk log share
// this one format, so a Fetch can serve stored bytes without re-encoding.
//
// Header layout (61 bytes, big endian):
//
//	offset  size  field
//	     0     8  baseOffset            rewritten by the broker (not covered by the CRC)
//	     8     4  batchLength           bytes after this field (total size = 12 + batchLength)
//	    12     4  partitionLeaderEpoch  rewritten by the broker (not covered by the CRC)
//	    16     1  magic                 always 2
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes [21, end)
//	    21     2  attributes            bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records (one compressed blob when the codec bits are set)
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Field offsets inside the header.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of a RecordBatch v2 header.
	HeaderSize = 61
	// LengthPrefix is the number of bytes before batchLength's coverage starts
	// (baseOffset and batchLength).
	LengthPrefix = 12
	// Magic is the only record format Thorstream accepts.
	Magic = 2
)

// Attribute bits.
const (
	CodecMask         = 0x07
	TimestampTypeBit  = 0x08
	TransactionalBit  = 0x10
	ControlBit        = 0x20
	CodecNone         = 0
	CodecGzip         = 1
	CodecSnappy       = 2
	CodecLZ4          = 3
	CodecZstd         = 4
	NoProducerID      = -1
	NoSequence        = -1
	NoPartitionLeader = -1
)

// Errors returned by the parsing and validation functions. They are wrapped with detail.
var (
	ErrShort       = errors.New("codec/batch: truncated batch")
	ErrBadLength   = errors.New("codec/batch: bad batch length")
	ErrBadMagic    = errors.New("codec/batch: unsupported magic")
	ErrCRC         = errors.New("codec/batch: CRC mismatch")
	ErrCount       = errors.New("codec/batch: lastOffsetDelta does not match record count")
	ErrBadRecord   = errors.New("codec/batch: malformed record")
	ErrCompression = errors.New("codec/batch: compressed records")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a decoded RecordBatch v2 header.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the batch's total size in bytes.
func (h *Header) Size() int { return LengthPrefix + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the compression codec id from the attributes.
func (h *Header) Codec() int { return int(h.Attributes & CodecMask) }

// IsControl reports whether the batch is a transaction control batch.
func (h *Header) IsControl() bool { return h.Attributes&ControlBit != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h *Header) IsTransactional() bool { return h.Attributes&TransactionalBit != 0 }

// LogAppendTime reports whether the timestamp type bit says LogAppendTime.
func (h *Header) LogAppendTime() bool { return h.Attributes&TimestampTypeBit != 0 }

// Size returns the total size of the batch that starts at b, reading only its length prefix.
// It needs at least LengthPrefix bytes and checks that the length is sane (at least a header).
func Size(b []byte) (int, error) {
	if len(b) < LengthPrefix {
		return 0, ErrShort
	}
	n := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if n < HeaderSize-LengthPrefix {
		return 0, fmt.Errorf("%w: %d", ErrBadLength, n)
	}
	return LengthPrefix + int(n), nil
}

// ParseHeader decodes the header of the batch at the start of b. It checks only that b holds a
// whole header and that the length field is sane; it does not check the CRC (see Validate).
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, ErrShort
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.BatchLength = int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if h.BatchLength < HeaderSize-LengthPrefix {
		return h, fmt.Errorf("%w: %d", ErrBadLength, h.BatchLength)
	}
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	return h, nil
}

// Checksum computes the CRC-32C that a batch's crc field must hold.
func Checksum(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// Validate checks one whole batch b (len(b) must equal its size): magic 2, the CRC, and that
// lastOffsetDelta+1 equals the record count. It returns the parsed header.
func Validate(b []byte) (Header, error) {
	h, err := ValidateStored(b)
	if err != nil {
		return h, err
	}
	if int64(h.LastOffsetDelta)+1 != int64(h.RecordCount) {
		return h, fmt.Errorf("%w: lastOffsetDelta %d, count %d", ErrCount, h.LastOffsetDelta, h.RecordCount)
	}
	return h, nil
}

// ValidateStored is Validate for a batch read from a log, which the log cleaner may have
// rewritten: it keeps the offsets of the batch it came from (lastOffsetDelta) and fewer records,
// none at all for the kept last batch of an idempotent producer. The record count must not
// exceed lastOffsetDelta+1.
func ValidateStored(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: header says %d bytes, have %d", ErrBadLength, h.Size(), len(b))
	}
	if h.Magic != Magic {
		return h, fmt.Errorf("%w: %d", ErrBadMagic, h.Magic)
	}
	if got := Checksum(b); got != h.CRC {
		return h, fmt.Errorf("%w: stored %08x, computed %08x", ErrCRC, h.CRC, got)
	}
	if h.RecordCount < 0 || h.LastOffsetDelta < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: lastOffsetDelta %d, count %d", ErrCount, h.LastOffsetDelta, h.RecordCount)
	}
	return h, nil
}

// SetBaseOffset rewrites the baseOffset field in place (not covered by the CRC).
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites the partitionLeaderEpoch field in place (not covered by the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime rewrites maxTimestamp, sets the LogAppendTime bit and recomputes the CRC. It is
// used for topics whose message.timestamp.type is LogAppendTime.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | TimestampTypeBit
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
}

// BaseOffset reads the baseOffset of the batch at b (at least 8 bytes).
func BaseOffset(b []byte) int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// Split calls fn for each whole batch in b, in order. It stops at the first error: a batch that
// does not fit in the rest of b gives ErrShort, a bad length ErrBadLength. Validation of each batch
// is fn's business.
func Split(b []byte, fn func(batch []byte) error) error {
	for len(b) > 0 {
		n, err := Size(b)
		if err != nil {
			return err
		}
		if n > len(b) {
			return fmt.Errorf("%w: batch of %d bytes, %d left", ErrShort, n, len(b))
		}
		if err := fn(b[:n:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
