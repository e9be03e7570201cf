package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gzipWriters holds one pool per level: index 0 is the default level, 1–9 the Kafka levels.
// Each pooled *gzipEncoder is owned by one call between Get and Put.
var gzipWriters [10]sync.Pool

type gzipEncoder struct {
	writer *gzip.Writer
	sink   appendWriter
}

func compressGzip(dst, src []byte, level int) ([]byte, error) {
	if level == -1 { // Kafka's "default" value for compression.gzip.level
		level = DefaultLevel
	}
	if level < 0 || level > 9 {
		return dst, fmt.Errorf("%w: gzip level %d", ErrLevel, level)
	}
	enc, _ := gzipWriters[level].Get().(*gzipEncoder)
	if enc == nil {
		gzLevel := gzip.DefaultCompression
		if level != DefaultLevel {
			gzLevel = level
		}
		w, err := gzip.NewWriterLevel(nil, gzLevel)
		if err != nil {
			return dst, fmt.Errorf("%w: gzip level %d: %w", ErrLevel, level, err)
		}
		enc = &gzipEncoder{writer: w}
	}
	defer gzipWriters[level].Put(enc)
	return encodeStream(enc.writer, &enc.sink, dst, src, "gzip")
}

// gzipReaders pools *gzipDecoder; each is owned by one call between Get and Put.
var gzipReaders = sync.Pool{New: func() any { return new(gzipDecoder) }}

type gzipDecoder struct {
	reader gzip.Reader
	src    bytes.Reader
}

func decompressGzip(dst, src []byte, maxSize int) ([]byte, error) {
	dec := gzipReaders.Get().(*gzipDecoder)
	defer gzipReaders.Put(dec)
	defer dec.src.Reset(nil) // the pool must not keep the caller's input
	dec.src.Reset(src)
	if err := dec.reader.Reset(&dec.src); err != nil {
		return dst, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
	}
	// The trailer's ISIZE is the (last member's) uncompressed size mod 2^32: a good first guess.
	hint := 0
	if len(src) >= 4 {
		hint = int(binary.LittleEndian.Uint32(src[len(src)-4:]))
	}
	return readBounded(dst, &dec.reader, maxSize, hint)
}
