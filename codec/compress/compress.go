// Package compress implements the Kafka record batch codecs: gzip, snappy, LZ4 and zstd, with the
// codec ids of a RecordBatch's attributes (batch.CodecGzip …).
//
//   - gzip and zstd use github.com/klauspost/compress.
//   - snappy writes the xerial framing of Kafka's Java producer and reads both that and the raw
//     snappy blocks librdkafka sends (github.com/klauspost/compress/snappy/xerial).
//   - LZ4 is the LZ4 frame format (github.com/pierrec/lz4/v4), as Kafka uses for magic 2.
//
// Encoders and decoders are pooled and reused. Decompression is bounded: maxSize caps the bytes
// one call may produce, so a small "zip bomb" gets ErrTooLarge instead of the process's memory.
//
// Both Compress and Decompress append to dst and return the extended slice, like append. On error
// they return dst's original contents (its spare capacity may have been written). Whole batches
// are handled by CompressBatch and DecompressBatch.
package compress

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/thorstream/thorstream/codec/batch"
)

// DefaultLevel asks for the codec's default compression level.
const DefaultLevel = 0

var (
	ErrUnknownCodec = errors.New("codec/compress: unknown codec")
	ErrLevel        = errors.New("codec/compress: compression level out of range")
	ErrTooLarge     = errors.New("codec/compress: decompressed data exceeds the size limit")
	ErrCorrupt      = errors.New("codec/compress: corrupt compressed data")
)

// Compress appends src compressed with codec to dst. level is DefaultLevel or a Kafka
// compression.<codec>.level value: gzip 1–9, lz4 1–17 (above 9 means 9), zstd -131072–22; snappy
// has no levels and ignores it. CodecNone appends src as is.
func Compress(codec int, dst, src []byte, level int) ([]byte, error) {
	switch codec {
	case batch.CodecNone:
		return append(dst, src...), nil
	case batch.CodecGzip:
		return compressGzip(dst, src, level)
	case batch.CodecSnappy:
		return compressSnappy(dst, src), nil
	case batch.CodecLZ4:
		return compressLZ4(dst, src, level)
	case batch.CodecZstd:
		return compressZstd(dst, src, level)
	}
	return dst, fmt.Errorf("%w: %d", ErrUnknownCodec, codec)
}

// Decompress appends src decompressed with codec to dst. It fails with ErrTooLarge, without
// allocating much more than maxSize, when the output would exceed maxSize bytes; with ErrCorrupt
// (wrapping the codec's error) on malformed input. CodecNone appends src as is.
func Decompress(codec int, dst, src []byte, maxSize int) ([]byte, error) {
	if maxSize < 0 {
		maxSize = 0
	}
	switch codec {
	case batch.CodecNone:
		if len(src) > maxSize {
			return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(src), maxSize)
		}
		return append(dst, src...), nil
	case batch.CodecGzip:
		return decompressGzip(dst, src, maxSize)
	case batch.CodecSnappy:
		return decompressSnappy(dst, src, maxSize)
	case batch.CodecLZ4:
		return decompressLZ4(dst, src, maxSize)
	case batch.CodecZstd:
		return decompressZstd(dst, src, maxSize)
	}
	return dst, fmt.Errorf("%w: %d", ErrUnknownCodec, codec)
}

// readBounded appends everything r produces to dst, failing with ErrTooLarge past maxSize bytes.
// sizeHint is a guess of the output size used to size the first allocation.
func readBounded(dst []byte, r io.Reader, maxSize, sizeHint int) ([]byte, error) {
	start := len(dst)
	// limit is one byte past the bound: reading it tells "too large" from "exactly maxSize".
	limit := start + maxSize + 1
	dst = slices.Grow(dst, min(max(sizeHint, 512), maxSize)+1)
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(max(len(dst)-start, 4096), limit-len(dst)))
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > maxSize {
			return dst[:start], fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
}

// appendWriter is an io.Writer that appends to a slice, so stream encoders can write into dst.
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// streamWriter is a pooled stream encoder (gzip, lz4): reset onto a sink, written, closed.
type streamWriter interface {
	Reset(io.Writer)
	Write([]byte) (int, error)
	Close() error
}

// encodeStream compresses src with w, appending to dst through sink, and leaves sink empty so
// the pooled encoder does not keep the caller's buffer. On error dst keeps its original contents.
func encodeStream(w streamWriter, sink *appendWriter, dst, src []byte, name string) ([]byte, error) {
	start := len(dst)
	sink.buf = dst
	w.Reset(sink)
	_, err := w.Write(src)
	if err == nil {
		err = w.Close()
	}
	out := sink.buf
	sink.buf = nil
	if err != nil {
		return out[:start], fmt.Errorf("codec/compress: %s: %w", name, err)
	}
	return out, nil
}
