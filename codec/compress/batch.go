package compress

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/thorstream/thorstream/codec/batch"
)

// Header fields CompressBatch rewrites (see the layout in package batch).
const (
	offBatchLength = 8
	offCRC         = 17
	offAttributes  = 21
)

// DecompressBatch returns the header and the uncompressed records section of the batch at the
// start of b, whatever its codec; pass both to batch.DecodeRecords. It checks that b holds the
// whole batch and that the magic is 2, not the CRC (see batch.Validate).
//
// Buffer ownership: for an uncompressed batch, records aliases b and dst is untouched. Otherwise
// the records are decompressed into dst[:0] (dst's capacity is reused, its contents ignored), so
// records aliases dst's memory when it fits; a caller reusing a scratch buffer should keep records
// as the next dst only when h.Codec() != batch.CodecNone. maxSize bounds the records section.
func DecompressBatch(b []byte, dst []byte, maxSize int) (h batch.Header, records []byte, err error) {
	h, err = batch.ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Size() > len(b) {
		return h, nil, fmt.Errorf("%w: batch of %d bytes, have %d", batch.ErrShort, h.Size(), len(b))
	}
	if h.Magic != batch.Magic {
		return h, nil, fmt.Errorf("%w: %d", batch.ErrBadMagic, h.Magic)
	}
	section := b[batch.HeaderSize:h.Size()]
	if h.Codec() == batch.CodecNone {
		if len(section) > maxSize {
			return h, nil, fmt.Errorf("%w: records section of %d bytes, limit %d", ErrTooLarge, len(section), maxSize)
		}
		return h, section, nil
	}
	records, err = Decompress(h.Codec(), dst[:0], section, maxSize)
	if err != nil {
		return h, nil, err
	}
	return h, records, nil
}

// CompressBatch appends to dst the batch uncompressed (a valid, uncompressed RecordBatch v2) with
// its records compressed by codec at the default level: same header fields, the codec bits set in
// the attributes, batchLength and the CRC recomputed. CodecNone appends the batch unchanged.
// uncompressed must not overlap dst's spare capacity.
func CompressBatch(dst []byte, uncompressed []byte, codec int) ([]byte, error) {
	h, err := batch.ValidateStored(uncompressed)
	if err != nil {
		return dst, err
	}
	if h.Codec() != batch.CodecNone {
		return dst, fmt.Errorf("%w: batch already uses codec %d", batch.ErrCompression, h.Codec())
	}
	if codec&^batch.CodecMask != 0 || codec > batch.CodecZstd {
		return dst, fmt.Errorf("%w: %d", ErrUnknownCodec, codec)
	}
	if codec == batch.CodecNone {
		return append(dst, uncompressed...), nil
	}
	start := len(dst)
	out := append(dst, uncompressed[:batch.HeaderSize]...)
	out, err = Compress(codec, out, uncompressed[batch.HeaderSize:], DefaultLevel)
	if err != nil {
		return dst, err
	}
	b := out[start:]
	if len(b)-batch.LengthPrefix > math.MaxInt32 {
		return dst, fmt.Errorf("%w: compressed batch of %d bytes", batch.ErrBadLength, len(b))
	}
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batch.LengthPrefix))
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes)|uint16(codec))
	binary.BigEndian.PutUint32(b[offCRC:], batch.Checksum(b))
	return out, nil
}
