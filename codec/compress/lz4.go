package compress

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4Levels maps DefaultLevel and Kafka's compression.lz4.level 1–9 to pierrec levels; Kafka's
// levels 10–17 have no counterpart and use Level9.
var lz4Levels = [10]lz4.CompressionLevel{
	lz4.Fast, lz4.Level1, lz4.Level2, lz4.Level3, lz4.Level4, lz4.Level5, lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9,
}

// lz4Writers holds one pool per entry of lz4Levels. Each pooled *lz4Encoder is owned by one call
// between Get and Put.
var lz4Writers [10]sync.Pool

type lz4Encoder struct {
	writer *lz4.Writer
	sink   appendWriter
}

func compressLZ4(dst, src []byte, level int) ([]byte, error) {
	if level < 0 || level > 17 {
		return dst, fmt.Errorf("%w: lz4 level %d", ErrLevel, level)
	}
	level = min(level, 9)
	enc, _ := lz4Writers[level].Get().(*lz4Encoder)
	if enc == nil {
		enc = &lz4Encoder{writer: lz4.NewWriter(nil)}
		// 64 KiB blocks, as Kafka's Java producer writes them, keep the writer's buffers small.
		err := enc.writer.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.CompressionLevelOption(lz4Levels[level]))
		if err != nil {
			return dst, fmt.Errorf("codec/compress: lz4 options: %w", err)
		}
	}
	defer lz4Writers[level].Put(enc)
	return encodeStream(enc.writer, &enc.sink, dst, src, "lz4")
}

// lz4Readers pools *lz4Decoder; each is owned by one call between Get and Put.
var lz4Readers = sync.Pool{New: func() any { return &lz4Decoder{reader: lz4.NewReader(nil)} }}

type lz4Decoder struct {
	reader *lz4.Reader
	src    bytes.Reader
}

// lz4FrameMagic starts every LZ4 frame (0x184D2204, little endian).
var lz4FrameMagic = []byte{0x04, 0x22, 0x4d, 0x18}

func decompressLZ4(dst, src []byte, maxSize int) ([]byte, error) {
	if !bytes.HasPrefix(src, lz4FrameMagic) {
		// The reader would take an empty input for an empty stream; Kafka would not.
		return dst, fmt.Errorf("%w: lz4: no frame magic", ErrCorrupt)
	}
	dec := lz4Readers.Get().(*lz4Decoder)
	defer lz4Readers.Put(dec)
	defer dec.src.Reset(nil) // the pool must not keep the caller's input
	dec.src.Reset(src)
	dec.reader.Reset(&dec.src)
	return readBounded(dst, dec.reader, maxSize, 4*len(src))
}
