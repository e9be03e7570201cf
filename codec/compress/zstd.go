package compress

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdWriters holds one pool per klauspost encoder level (SpeedFastest … SpeedBestCompression).
// Each pooled *zstd.Encoder is owned by one call between Get and Put. Encoders run with
// concurrency 1 and are used only through EncodeAll, so they start no goroutines.
var zstdWriters [zstd.SpeedBestCompression + 1]sync.Pool

func compressZstd(dst, src []byte, level int) ([]byte, error) {
	if level < -131072 || level > 22 {
		return dst, fmt.Errorf("%w: zstd level %d", ErrLevel, level)
	}
	encLevel := zstd.SpeedDefault
	if level != DefaultLevel {
		encLevel = zstd.EncoderLevelFromZstd(level)
	}
	enc, _ := zstdWriters[encLevel].Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(encLevel),
			zstd.WithEncoderConcurrency(1),
			// An empty input still makes a frame: Kafka's zstd-jni rejects zero bytes.
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			return dst, fmt.Errorf("codec/compress: zstd encoder: %w", err)
		}
	}
	defer zstdWriters[encLevel].Put(enc)
	return enc.EncodeAll(src, dst), nil
}

// zstdReaders holds decoder pools by size class: class c holds decoders created with
// WithDecoderMaxMemory(1<<c), used for every maxSize in (2^(c-1), 2^c]. DecodeAll writes straight
// into dst, and the decoder refuses a frame that declares, or grows, past 2^c bytes before
// allocating for it; the exact maxSize is checked on the result. The decoder also refuses frames
// whose window exceeds 2^c, so classes start at zstdMinClass: 8 MiB covers the windows producers
// write at Kafka's default level 3 (2 MiB) up to level 19, and klauspost's default (8 MiB). Memory
// for a hostile input thus stays within max(2*maxSize, 8 MiB). Decoders run with concurrency 1 and
// only DecodeAll, so they start no goroutines.
var zstdReaders [64]sync.Pool

const zstdMinClass = 23

func decompressZstd(dst, src []byte, maxSize int) ([]byte, error) {
	class := max(bits.Len(uint(max(maxSize, 1)-1)), zstdMinClass)
	dec, _ := zstdReaders[class].Get().(*zstd.Decoder)
	if dec == nil {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(1)<<class),
		)
		if err != nil {
			return dst, fmt.Errorf("codec/compress: zstd decoder: %w", err)
		}
	}
	defer zstdReaders[class].Put(dec)
	start := len(dst)
	out, err := dec.DecodeAll(src, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) ||
		(err == nil && len(out)-start > maxSize) {
		return dst, fmt.Errorf("%w: zstd output over %d bytes", ErrTooLarge, maxSize)
	}
	if err != nil {
		return dst, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	return out, nil
}
