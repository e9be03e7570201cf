package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
)

// Xerial framing (snappy-java's SnappyOutputStream, written by Kafka's Java producer, sarama,
// kafka-go, kafka-python):
//
//	offset  size  field
//	     0     8  magic 0x82 "SNAPPY" 0x00
//	     8     8  version 1, compatible version 1 (big endian int32s)
//	    16     …  blocks: a 4-byte big-endian length, then a raw snappy block (≤ 32 KiB decoded)
//
// librdkafka sends one raw snappy block instead, with no framing.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	xerialBlockSize  = 32 << 10 // what xerial.Encode cuts src into
)

func compressSnappy(dst, src []byte) []byte {
	if len(src) == 0 {
		// A header with no blocks is valid xerial, but franz-go reads inputs of 16 bytes or less
		// as raw blocks: an empty raw block reads everywhere.
		return append(dst, 0)
	}
	// Reserve the worst case so xerial.Encode writes in place after dst's contents. It treats a
	// non-empty dst as an earlier xerial stream, so hand it an empty slice of our spare capacity.
	need := xerialHeaderSize
	for n := len(src); n > 0; n -= xerialBlockSize {
		need += 4 + s2.MaxEncodedLen(min(n, xerialBlockSize))
	}
	start := len(dst)
	dst = slices.Grow(dst, need)
	out := xerial.Encode(dst[start:start], src)
	return appendIfMoved(dst, start, out)
}

// appendIfMoved returns dst extended by out, where out was meant to be written at dst[start:]: if
// it was (the usual case), nothing is copied.
func appendIfMoved(dst []byte, start int, out []byte) []byte {
	if len(out) > 0 && cap(dst) > start && &dst[:start+1][start] == &out[0] && start+len(out) <= cap(dst) {
		return dst[:start+len(out)]
	}
	return append(dst[:start], out...)
}

func decompressSnappy(dst, src []byte, maxSize int) ([]byte, error) {
	// Sum the decoded lengths the blocks declare before allocating anything.
	size, err := snappyDecodedLen(src, maxSize)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = slices.Grow(dst, size+1) // +1 so the spare slice is never nil, which DecodeCapped rejects
	out, err := xerial.DecodeCapped(dst[start:cap(dst)], src)
	if err != nil {
		return dst[:start], fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	return appendIfMoved(dst, start, out), nil
}

// snappyDecodedLen returns the decoded size of a raw or xerial-framed snappy input, checking the
// framing and the bound.
func snappyDecodedLen(src []byte, maxSize int) (int, error) {
	tooLarge := func(n int) error {
		return fmt.Errorf("%w: snappy declares %d bytes, limit %d", ErrTooLarge, n, maxSize)
	}
	if !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return 0, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		if n > maxSize {
			return 0, tooLarge(n)
		}
		return n, nil
	}
	if len(src) < xerialHeaderSize {
		return 0, fmt.Errorf("%w: snappy: xerial header of %d bytes", ErrCorrupt, len(src))
	}
	total := 0
	for p := src[xerialHeaderSize:]; len(p) > 0; {
		block, rest, err := nextXerialBlock(p)
		if err != nil {
			return 0, err
		}
		n, err := s2.DecodedLen(block)
		if err != nil {
			return 0, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		if total += n; total > maxSize {
			return 0, tooLarge(total)
		}
		p = rest
	}
	return total, nil
}

// nextXerialBlock splits the length-prefixed xerial block at the start of p from what follows.
func nextXerialBlock(p []byte) (block, rest []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: snappy: %d stray bytes after the last xerial block", ErrCorrupt, len(p))
	}
	blockLen := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(blockLen) > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: snappy: xerial block of %d bytes, %d left", ErrCorrupt, blockLen, len(p))
	}
	return p[:blockLen], p[blockLen:], nil
}
