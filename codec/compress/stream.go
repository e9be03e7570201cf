package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/thorstream/thorstream/codec/batch"
)

// Memory a Stream holds, whatever the decompressed size:
//
//   - gzip: the inflater's 32 KiB window and buffers;
//   - lz4: two blocks of the frame's declared block size (at most 4 MiB; Kafka's producers use
//     64 KiB);
//   - zstd: the frame's window. Windows up to SmallBuffer come from a pool of decoders; larger
//     ones, up to 8 MiB (what producers write up to level 19), from a fixed set of decoders
//     shared by the process, one per CPU (at least four): a caller waits for one when all are
//     busy. A frame whose window is larger still (levels 20–22) is decoded whole, bounded by
//     maxSize, by one caller at a time (see bigSlot);
//   - snappy: one block. Blocks up to SmallBuffer decode into pooled buffers, larger ones
//     (librdkafka sends one block per batch) into a buffer made for the call and dropped after
//     it, by one caller at a time.
//
// So what one Stream keeps after Release is nothing; what the process keeps is the pools:
// at most a few MiB per CPU.

// SmallBuffer is the size up to which a Stream's buffers are pooled and reused.
const SmallBuffer = 1 << 20

// zstdSharedWindow is the largest zstd window the shared streaming decoders keep.
const zstdSharedWindow = 8 << 20

// bigSlot is held by the one caller allowed a buffer larger than the pooled ones: at most one
// such buffer (at most maxSize) exists at a time.
var bigSlot = make(chan struct{}, 1)

// Stream reads the decompressed records section of one compressed batch, failing with
// ErrTooLarge once it produces more than maxSize bytes and with ErrCorrupt on malformed input.
// Unlike Decompress it never holds the whole output (see the memory notes above), so walking a
// batch through it (batch.RecordSkipper.ResetReader) costs a bounded amount of memory.
//
// The zero value is ready for Reset. A Stream is used by one goroutine; call Release when done,
// so it gives back its decoder and drops the input.
type Stream struct {
	n, max int64 // produced so far, and the bound
	src    bytes.Reader
	r      io.Reader // the decoder being read, nil after an error or Release
	err    error     // the error every later Read returns

	zdec   *zstd.Decoder
	zLarge bool // zdec belongs to the shared set
	gz     *gzipDecoder
	lz     *lz4Decoder

	window uint64 // the zstd window the first frame declares

	// snappy: the xerial blocks not decoded yet, and the pooled buffer of the current block.
	xerial     bool
	xerialRest []byte
	blockBuf   *[]byte
	whole      bytes.Reader // what is served: a decoded snappy block, or a whole zstd output
	big        bool         // holds bigSlot
}

var smallBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Reset starts reading src, the compressed records section of a batch with the given codec (the
// attributes' codec bits), producing at most maxSize bytes. It returns an error for an unknown
// codec or input that is malformed from its first bytes; later problems come from Read.
func (s *Stream) Reset(codec int, src []byte, maxSize int) error {
	s.Release()
	s.n, s.max, s.err = 0, int64(max(maxSize, 0)), nil
	s.src.Reset(src)
	switch codec {
	case batch.CodecNone:
		s.r = &s.src
	case batch.CodecGzip:
		s.gz = gzipReaders.Get().(*gzipDecoder)
		s.gz.src.Reset(src)
		if err := s.gz.reader.Reset(&s.gz.src); err != nil {
			return s.fail(fmt.Errorf("%w: gzip: %w", ErrCorrupt, err))
		}
		s.r = &s.gz.reader
	case batch.CodecLZ4:
		if !bytes.HasPrefix(src, lz4FrameMagic) {
			return s.fail(fmt.Errorf("%w: lz4: no frame magic", ErrCorrupt))
		}
		s.lz = lz4Readers.Get().(*lz4Decoder)
		s.lz.src.Reset(src)
		s.lz.reader.Reset(&s.lz.src)
		s.r = s.lz.reader
	case batch.CodecZstd:
		return s.resetZstd(src)
	case batch.CodecSnappy:
		return s.resetSnappy(src)
	default:
		return s.fail(fmt.Errorf("%w: %d", ErrUnknownCodec, codec))
	}
	return nil
}

func (s *Stream) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	s.r = nil
	return s.err
}

// Read implements io.Reader.
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.r == nil {
		return 0, io.EOF
	}
	// Ask for one byte past the bound at most: getting it tells "too large" from "exactly max".
	if room := s.max + 1 - s.n; int64(len(p)) > room {
		p = p[:room]
	}
	var n int
	var err error
	if s.xerial {
		n, err = s.readXerial(p)
	} else {
		n, err = s.r.Read(p)
	}
	s.n += int64(n)
	if s.n > s.max {
		return 0, s.fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.max))
	}
	switch {
	case err == io.EOF:
		s.release()
		s.r = nil
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return n, s.fail(fmt.Errorf("%w: zstd frame needs a window over %d bytes: %w", ErrTooLarge, s.window, err))
	case err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge):
		return n, s.fail(fmt.Errorf("%w: %w", ErrCorrupt, err))
	case err != nil:
		return n, s.fail(err)
	}
	return n, err
}

// Release gives back the decoder and drops every reference to the input and to large buffers.
func (s *Stream) Release() {
	s.release()
	s.r = nil
	s.src.Reset(nil)
}

func (s *Stream) release() {
	if s.zdec != nil {
		_ = s.zdec.Reset(nil) // drop the reference to the input
		if s.zLarge {
			zstdShared <- s.zdec
		} else {
			zstdSmall.Put(s.zdec)
		}
		s.zdec, s.zLarge = nil, false
	}
	if s.gz != nil {
		s.gz.src.Reset(nil)
		gzipReaders.Put(s.gz)
		s.gz = nil
	}
	if s.lz != nil {
		s.lz.src.Reset(nil)
		s.lz.reader.Reset(nil)
		lz4Readers.Put(s.lz)
		s.lz = nil
	}
	if s.blockBuf != nil {
		*s.blockBuf = (*s.blockBuf)[:0]
		smallBuffers.Put(s.blockBuf)
		s.blockBuf = nil
	}
	s.xerial, s.xerialRest = false, nil
	s.whole.Reset(nil)
	if s.big {
		s.big = false
		<-bigSlot
	}
}

// zstdSmall pools streaming decoders for windows up to SmallBuffer.
var zstdSmall = sync.Pool{New: func() any {
	d, err := newStreamDecoder(SmallBuffer)
	if err != nil {
		return nil
	}
	return d
}}

// zstdShared holds the shared decoders for windows up to zstdSharedWindow, created on first use.
var (
	zstdShared     = make(chan *zstd.Decoder, zstdSharedCount)
	zstdSharedMade atomic.Int32
)

var zstdSharedCount = max(runtime.GOMAXPROCS(0), 4)

func newStreamDecoder(window uint64) (*zstd.Decoder, error) {
	// Concurrency 1 decodes synchronously, in Read: no goroutines.
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window),
		zstd.WithDecoderMaxMemory(window),
	)
	if err != nil {
		return nil, fmt.Errorf("codec/compress: zstd decoder: %w", err)
	}
	return d, nil
}

func sharedZstd() (*zstd.Decoder, error) {
	select {
	case d := <-zstdShared:
		return d, nil
	default:
	}
	if zstdSharedMade.Add(1) <= int32(zstdSharedCount) {
		d, err := newStreamDecoder(zstdSharedWindow)
		if err != nil {
			zstdSharedMade.Add(-1)
		}
		return d, err
	}
	zstdSharedMade.Add(-1)
	return <-zstdShared, nil
}

// zstdWindow is the window the first frame of src needs (0 when its header does not say).
func zstdWindow(src []byte) uint64 {
	var h zstd.Header
	if h.Decode(src) != nil || h.Skippable {
		return 0
	}
	if h.SingleSegment {
		return h.FrameContentSize
	}
	return h.WindowSize
}

func (s *Stream) resetZstd(src []byte) error {
	// Every frame must fit the decoder chosen for the first: producers write one frame.
	w := zstdWindow(src)
	s.window = w
	switch {
	case w <= SmallBuffer:
		d, _ := zstdSmall.Get().(*zstd.Decoder)
		if d == nil {
			return s.fail(fmt.Errorf("codec/compress: zstd decoder unavailable"))
		}
		s.zdec = d
	case w <= zstdSharedWindow:
		d, err := sharedZstd()
		if err != nil {
			return s.fail(err)
		}
		s.zdec, s.zLarge = d, true
	case w > uint64(s.max):
		return s.fail(fmt.Errorf("%w: zstd window of %d bytes, limit %d", ErrTooLarge, w, s.max))
	default:
		// A window beyond what streaming decoders keep: decode the whole, bounded, alone.
		bigSlot <- struct{}{}
		s.big = true
		out, err := decompressZstd(nil, src, int(s.max))
		if err != nil {
			return s.fail(err)
		}
		s.whole.Reset(out)
		s.r = &s.whole
		return nil
	}
	if err := s.zdec.Reset(&s.src); err != nil {
		return s.fail(fmt.Errorf("%w: zstd: %w", ErrCorrupt, err))
	}
	s.r = s.zdec
	return nil
}

func (s *Stream) resetSnappy(src []byte) error {
	s.r = &s.whole
	if !bytes.HasPrefix(src, xerialMagic) {
		// librdkafka: one raw block.
		if err := s.decodeSnappyBlock(src); err != nil {
			return s.fail(err)
		}
		return nil
	}
	if len(src) < xerialHeaderSize {
		return s.fail(fmt.Errorf("%w: snappy: xerial header of %d bytes", ErrCorrupt, len(src)))
	}
	s.xerial, s.xerialRest = true, src[xerialHeaderSize:]
	return nil
}

// readXerial serves the current block, decoding the next xerial block when it is used up.
func (s *Stream) readXerial(p []byte) (int, error) {
	for {
		if n, _ := s.whole.Read(p); n > 0 || len(p) == 0 {
			return n, nil
		}
		rest := s.xerialRest
		if len(rest) == 0 {
			return 0, io.EOF
		}
		block, after, err := nextXerialBlock(rest)
		if err != nil {
			return 0, err
		}
		s.xerialRest = after
		if err := s.decodeSnappyBlock(block); err != nil {
			return 0, err
		}
	}
}

// decodeSnappyBlock decodes one raw snappy block for reading through whole: into a pooled buffer
// up to SmallBuffer, otherwise into one made for it (dropped with the block) under bigSlot.
func (s *Stream) decodeSnappyBlock(src []byte) error {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if int64(n) > s.max-s.n {
		return fmt.Errorf("%w: snappy block declares %d bytes, limit %d", ErrTooLarge, n, s.max)
	}
	var dst []byte
	if n <= SmallBuffer {
		if s.blockBuf == nil {
			s.blockBuf = smallBuffers.Get().(*[]byte)
		}
		if cap(*s.blockBuf) < n {
			*s.blockBuf = make([]byte, 0, n)
		}
		dst = *s.blockBuf
	} else {
		if !s.big {
			bigSlot <- struct{}{}
			s.big = true
		}
		dst = make([]byte, n)
	}
	out, err := s2.Decode(dst[:cap(dst)], src)
	if err != nil {
		return fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	s.whole.Reset(out)
	return nil
}
