package compress

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/codec/batch"
)

var codecs = []struct {
	name   string
	id     int
	kgo    kgo.CompressionCodec
	levels []int
}{
	{"gzip", batch.CodecGzip, kgo.GzipCompression(), []int{DefaultLevel, -1, 1, 5, 9}},
	{"snappy", batch.CodecSnappy, kgo.SnappyCompression(), []int{DefaultLevel}},
	{"lz4", batch.CodecLZ4, kgo.Lz4Compression(), []int{DefaultLevel, 1, 9, 17}},
	{"zstd", batch.CodecZstd, kgo.ZstdCompression(), []int{DefaultLevel, -5, 1, 3, 7, 22}},
}

// testInputs are payloads of the sizes and kinds that matter: empty, tiny, compressible text,
// random bytes, and more than one snappy/lz4 block.
func testInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 100<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("thorstream record batch payload, "), 10000)
	return map[string][]byte{
		"empty":       {},
		"one byte":    {'x'},
		"small":       []byte("hello, kafka"),
		"text 330k":   text,
		"random 100k": random,
		"zeros 1M":    make([]byte, 1<<20),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecs {
		for _, level := range c.levels {
			for name, in := range testInputs() {
				t.Run(fmt.Sprintf("%s/level%d/%s", c.name, level, name), func(t *testing.T) {
					prefix := []byte("prefix")
					comp, err := Compress(c.id, bytes.Clone(prefix), in, level)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.HasPrefix(comp, prefix) {
						t.Fatal("Compress did not append to dst")
					}
					out, err := Decompress(c.id, []byte("dst:"), comp[len(prefix):], len(in))
					if err != nil {
						t.Fatalf("Decompress: %v", err)
					}
					if !bytes.Equal(out, append([]byte("dst:"), in...)) {
						t.Fatalf("round trip mismatch: %d bytes back for %d", len(out)-4, len(in))
					}
					// One byte less than needed must be refused.
					if len(in) > 0 {
						if _, err := Decompress(c.id, nil, comp[len(prefix):], len(in)-1); !errors.Is(err, ErrTooLarge) {
							t.Fatalf("maxSize %d for %d bytes: %v, want ErrTooLarge", len(in)-1, len(in), err)
						}
					}
				})
			}
		}
	}
}

// TestFranzGoInterop: what we compress franz-go decompresses, and the other way round.
func TestFranzGoInterop(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	for _, c := range codecs {
		comp, err := kgo.DefaultCompressor(c.kgo)
		if err != nil {
			t.Fatal(err)
		}
		for name, in := range testInputs() {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				ours, err := Compress(c.id, nil, in, DefaultLevel)
				if err != nil {
					t.Fatal(err)
				}
				back, err := dec.Decompress(ours, kgo.CompressionCodecType(c.id))
				if err != nil || !bytes.Equal(back, in) {
					t.Fatalf("franz-go cannot read ours: %v (%d bytes for %d)", err, len(back), len(in))
				}
				var buf bytes.Buffer
				theirs, codec := comp.Compress(&buf, in)
				if int(codec) != c.id {
					t.Fatalf("franz-go used codec %d", codec)
				}
				back, err = Decompress(c.id, nil, theirs, len(in))
				if err != nil || !bytes.Equal(back, in) {
					t.Fatalf("we cannot read franz-go's: %v (%d bytes for %d)", err, len(back), len(in))
				}
			})
		}
	}
}

// TestSnappyForms: xerial framing (Java, sarama, kafka-go) and raw blocks (librdkafka) both decode.
func TestSnappyForms(t *testing.T) {
	for name, in := range testInputs() {
		forms := map[string][]byte{
			"raw block":   s2.EncodeSnappy(nil, in),
			"xerial":      xerialFrame(in, 32<<10),
			"xerial 1KiB": xerialFrame(in, 1<<10),
		}
		for form, enc := range forms {
			out, err := Decompress(batch.CodecSnappy, nil, enc, len(in))
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("%s %s: %v", name, form, err)
			}
		}
	}
	ours, _ := Compress(batch.CodecSnappy, nil, []byte("abc"), DefaultLevel)
	if !bytes.HasPrefix(ours, xerialMagic) {
		t.Fatalf("Compress must write the xerial framing Java consumers expect: % x", ours)
	}
}

// xerialFrame frames in by hand, with blocks of blockSize, independently of xerial.Encode.
func xerialFrame(in []byte, blockSize int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = append(out, 0, 0, 0, 1, 0, 0, 0, 1)
	for len(in) > 0 {
		n := min(blockSize, len(in))
		block := s2.EncodeSnappy(nil, in[:n])
		out = append(out, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
		out = append(out, block...)
		in = in[n:]
	}
	return out
}

// bombs returns, per codec, a small input that decompresses to size bytes.
func bombs(t *testing.T, size int) map[string][]byte {
	zeros := make([]byte, size)
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(zeros)
	w.Close()
	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	lw.Write(zeros)
	lw.Close()
	// A streamed zstd frame does not declare its content size, so only decoding can find it out.
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs, zstd.WithEncoderConcurrency(1))
	zw.Write(zeros)
	zw.Close()
	zsAll, _ := zstd.NewWriter(nil)
	return map[string][]byte{
		"gzip":               gz.Bytes(),
		"lz4":                lz.Bytes(),
		"zstd streamed":      zs.Bytes(),
		"zstd with size":     zsAll.EncodeAll(zeros, nil),
		"snappy raw":         s2.EncodeSnappy(nil, zeros),
		"snappy xerial":      xerialFrame(zeros, 32<<10),
		"snappy lying raw":   {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}, // claims 4 GiB
		"snappy lying frame": append(xerialFrame(nil, 1), 0, 0, 0, 5, 0xff, 0xff, 0xff, 0x7f, 0),
	}
}

var bombCodec = map[string]int{
	"gzip": batch.CodecGzip, "lz4": batch.CodecLZ4, "zstd streamed": batch.CodecZstd, "zstd with size": batch.CodecZstd,
	"snappy raw": batch.CodecSnappy, "snappy xerial": batch.CodecSnappy, "snappy lying raw": batch.CodecSnappy,
	"snappy lying frame": batch.CodecSnappy,
}

// TestZipBomb: inputs that expand to 128 MiB are refused with a 1 MiB limit. Allocation is
// cumulative (TotalAlloc): a few MiB for most codecs; zstd may decode up to its 8 MiB window floor
// (see zstdReaders), growing its output by doubling, before it refuses.
func TestZipBomb(t *testing.T) {
	const limit = 1 << 20
	for name, in := range bombs(t, 128<<20) {
		t.Run(name, func(t *testing.T) {
			codec := bombCodec[name]
			bound := uint64(8 * limit)
			if codec == batch.CodecZstd {
				bound = 64 << 20
			}
			_, _ = Decompress(codec, nil, in, limit) // warm the pools
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Decompress(codec, nil, in, limit)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) && !(errors.Is(err, ErrCorrupt) && name == "snappy lying frame") {
				t.Fatalf("%d-byte input: %v, want ErrTooLarge", len(in), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
				t.Fatalf("allocated %d bytes to refuse it", alloc)
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	text := bytes.Repeat([]byte("abcdefgh"), 1000)
	for _, c := range codecs {
		good, _ := Compress(c.id, nil, text, DefaultLevel)
		cases := map[string][]byte{
			"empty":       {},
			"garbage":     []byte("this is not compressed at all, not in any codec"),
			"truncated":   good[:len(good)/2],
			"bit flip":    flip(good, len(good)/2),
			"header only": good[:min(len(good), 10)],
		}
		for name, in := range cases {
			out, err := Decompress(c.id, []byte("keep"), in, 1<<20)
			if name == "empty" && c.id == batch.CodecZstd && err == nil && len(out) == 4 {
				continue // zero zstd frames decode to nothing
			}
			if err == nil && name == "bit flip" && bytes.Equal(out[4:], text) {
				continue // the flip hit a bit the codec does not check
			}
			if err == nil {
				t.Errorf("%s %s: no error (%d bytes)", c.name, name, len(out))
				continue
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s %s: %v, want ErrCorrupt", c.name, name, err)
			}
			if string(out) != "keep" {
				t.Errorf("%s %s: dst changed to %q on error", c.name, name, out)
			}
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x10
	return b
}

func TestBadArguments(t *testing.T) {
	if _, err := Compress(5, nil, []byte("x"), 0); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 5: %v", err)
	}
	if _, err := Decompress(7, nil, []byte("x"), 10); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 7: %v", err)
	}
	for _, c := range []struct{ codec, level int }{
		{batch.CodecGzip, 10}, {batch.CodecGzip, -2}, {batch.CodecLZ4, 18}, {batch.CodecLZ4, -1},
		{batch.CodecZstd, 23}, {batch.CodecZstd, -131073},
	} {
		if _, err := Compress(c.codec, nil, []byte("x"), c.level); !errors.Is(err, ErrLevel) {
			t.Fatalf("codec %d level %d: %v", c.codec, c.level, err)
		}
	}
	out, err := Decompress(batch.CodecNone, []byte("a"), []byte("bc"), 2)
	if err != nil || string(out) != "abc" {
		t.Fatalf("none: %q %v", out, err)
	}
	if _, err := Decompress(batch.CodecNone, nil, []byte("abc"), 2); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("none over the limit: %v", err)
	}
	if out, err := Compress(batch.CodecNone, []byte("a"), []byte("bc"), 0); err != nil || string(out) != "abc" {
		t.Fatalf("none: %q %v", out, err)
	}
}

// TestConcurrent exercises the pools from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	in := bytes.Repeat([]byte("concurrent "), 5000)
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 20 {
				c := codecs[(g+i)%len(codecs)]
				var comp, out []byte
				if comp, err = Compress(c.id, nil, in, DefaultLevel); err != nil {
					break
				}
				if out, err = Decompress(c.id, nil, comp, len(in)); err == nil && !bytes.Equal(out, in) {
					err = fmt.Errorf("%s: mismatch", c.name)
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
