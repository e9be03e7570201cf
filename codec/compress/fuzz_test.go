package compress

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/thorstream/thorstream/codec/batch"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// FuzzDecompress: arbitrary input never panics, never exceeds maxSize, and never changes dst's
// contents; whatever decodes re-encodes and decodes to the same bytes.
func FuzzDecompress(f *testing.F) {
	for _, s := range decompressSeeds() {
		f.Add(s.codec, s.data)
	}
	f.Fuzz(func(t *testing.T, codec byte, data []byte) {
		const maxSize = 1 << 20
		id := int(codec % 6) // 5 is an unknown codec
		dst := []byte("dst")
		out, err := Decompress(id, dst, data, maxSize)
		if !bytes.HasPrefix(out, []byte("dst")) {
			t.Fatalf("dst lost: %q", out[:min(len(out), 3)])
		}
		if err != nil {
			if len(out) != 3 {
				t.Fatalf("error %v but output grew", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownCodec) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		plain := out[3:]
		if len(plain) > maxSize {
			t.Fatalf("%d bytes, limit %d", len(plain), maxSize)
		}
		again, err := Compress(id, nil, plain, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decompress(id, nil, again, maxSize)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("re-encode round trip: %v", err)
		}
	})
}

type decompressSeed struct {
	name  string
	codec byte
	data  []byte
}

func decompressSeeds() []decompressSeed {
	text := bytes.Repeat([]byte("seed text "), 50)
	var seeds []decompressSeed
	for _, c := range codecs {
		good, _ := Compress(c.id, nil, text, DefaultLevel)
		seeds = append(seeds,
			decompressSeed{"valid-" + c.name, byte(c.id), good},
			decompressSeed{"broken-" + c.name + "-truncated", byte(c.id), good[:len(good)/2]},
			decompressSeed{"broken-" + c.name + "-flipped", byte(c.id), flip(good, len(good)-3)},
		)
	}
	seeds = append(seeds,
		decompressSeed{"valid-snappy-raw", batch.CodecSnappy, s2.EncodeSnappy(nil, text)},
		decompressSeed{"valid-none", batch.CodecNone, text},
		decompressSeed{"broken-snappy-lying-length", batch.CodecSnappy, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0}},
		decompressSeed{"broken-unknown-codec", 5, text},
	)
	return seeds
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecompress with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecompress")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range decompressSeeds() {
		content := fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", s.codec, s.data)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
