package compress

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/thorstream/thorstream/codec/batch"
)

// readStream reads everything a Stream produces in reads of chunk bytes.
func readStream(s *Stream, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// drain reads a Stream to its end without keeping anything.
func drain(s *Stream) error {
	buf := make([]byte, 32<<10)
	for {
		_, err := s.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestStreamRoundTrip(t *testing.T) {
	var s Stream
	for _, c := range codecs {
		for _, level := range c.levels {
			for name, in := range testInputs() {
				comp, err := Compress(c.id, nil, in, level)
				if err != nil {
					t.Fatal(err)
				}
				for _, chunk := range []int{1000, 32 << 10} {
					if err := s.Reset(c.id, comp, len(in)); err != nil {
						t.Fatalf("%s/%d/%s: Reset: %v", c.name, level, name, err)
					}
					out, err := readStream(&s, chunk)
					s.Release()
					if err != nil || !bytes.Equal(out, in) {
						t.Fatalf("%s/%d/%s: %v (%d bytes for %d)", c.name, level, name, err, len(out), len(in))
					}
				}
			}
		}
	}
	for name, in := range testInputs() {
		for form, enc := range map[string][]byte{"raw": s2.EncodeSnappy(nil, in), "xerial 1KiB": xerialFrame(in, 1<<10)} {
			if err := s.Reset(batch.CodecSnappy, enc, len(in)); err != nil {
				t.Fatal(err)
			}
			out, err := readStream(&s, 4096)
			s.Release()
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("snappy %s %s: %v", form, name, err)
			}
		}
	}
}

// TestStreamBomb: inputs expanding to 128 MiB are refused at the 64 MiB the broker allows, and
// reading them through a Stream allocates a small, fixed amount (TotalAlloc, once the pools are
// warm), however far it decompresses.
func TestStreamBomb(t *testing.T) {
	const limit = 64 << 20
	var s Stream
	for name, in := range bombs(t, 128<<20) {
		t.Run(name, func(t *testing.T) {
			codec := bombCodec[name]
			run := func() error {
				defer s.Release()
				if err := s.Reset(codec, in, limit); err != nil {
					return err
				}
				return drain(&s)
			}
			_ = run() // warm the pools
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := run()
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) && !(errors.Is(err, ErrCorrupt) && name == "snappy lying frame") {
				t.Fatalf("%d-byte input: %v, want ErrTooLarge", len(in), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Fatalf("allocated %d bytes to refuse it (took %v)", alloc, elapsed)
			}
			t.Logf("%d-byte input refused after %v: %v", len(in), elapsed, err)
		})
	}
	if len(bigSlot) != 0 {
		t.Fatal("a released Stream still holds the large-buffer slot")
	}
}

// TestStreamExactLimit: exactly maxSize bytes is fine, one more is not.
func TestStreamExactLimit(t *testing.T) {
	in := bytes.Repeat([]byte("abcdefgh"), 1<<14)
	var s Stream
	for _, c := range codecs {
		comp, _ := Compress(c.id, nil, in, DefaultLevel)
		for _, limit := range []int{len(in), len(in) - 1} {
			err := s.Reset(c.id, comp, limit)
			if err == nil {
				err = drain(&s)
			}
			s.Release()
			if tooLarge := errors.Is(err, ErrTooLarge); tooLarge != (limit < len(in)) || (err != nil && !tooLarge) {
				t.Fatalf("%s with limit %d for %d bytes: %v", c.name, limit, len(in), err)
			}
		}
	}
}

// TestStreamZstdWindows: a frame declaring more than the limit is refused before anything is
// allocated for it; one whose window is beyond the shared decoders' is decoded whole, then
// released.
func TestStreamZstdWindows(t *testing.T) {
	var s Stream
	huge, _ := zstd.NewWriter(nil, zstd.WithSingleSegment(true), zstd.WithEncoderConcurrency(1))
	zeros := make([]byte, 80<<20)
	declared := huge.EncodeAll(zeros, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := s.Reset(batch.CodecZstd, declared, 64<<20)
	s.Release()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("80 MiB single-segment frame: %v, want ErrTooLarge at Reset", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes to refuse a frame from its header", alloc)
	}

	in := bytes.Repeat([]byte("window beyond eight MiB "), 1<<20) // 24 MiB
	wide := huge.EncodeAll(in, nil)
	if w := zstdWindow(wide); w <= zstdSharedWindow {
		t.Fatalf("test frame has a window of %d", w)
	}
	if err := s.Reset(batch.CodecZstd, wide, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := readStream(&s, 32<<10)
	s.Release()
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("wide window: %v", err)
	}
	if len(bigSlot) != 0 || s.whole.Len() != 0 {
		t.Fatal("the whole output outlived Release")
	}
}

func TestStreamCorrupt(t *testing.T) {
	in := bytes.Repeat([]byte("thorstream "), 5000)
	var s Stream
	for _, c := range codecs {
		comp, _ := Compress(c.id, nil, in, DefaultLevel)
		for _, cut := range []int{0, 3, len(comp) / 2} {
			for _, bad := range [][]byte{comp[:cut], flip(bytes.Clone(comp), len(comp)/2)} {
				err := s.Reset(c.id, bad, 1<<20)
				if err == nil {
					var out []byte
					out, err = readStream(&s, 4096)
					if err == nil && bytes.Equal(out, in) {
						continue // a flipped bit the codec cannot see, producing the same bytes
					}
				}
				s.Release()
				if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%s cut %d: %v, want ErrCorrupt", c.name, cut, err)
				}
			}
		}
	}
	if err := s.Reset(7, nil, 10); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 7: %v", err)
	}
	s.Release()
}
