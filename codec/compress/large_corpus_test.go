package compress

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
)

// FuzzDecompress's corpus also holds the records sections of batches of the sizes Kafka clients
// send, compressed with every codec: a batch past 64 KiB, a batch of exactly Kafka's
// max.message.bytes (1 MiB + 12, whose records fit the target's 1 MiB limit) and records past that
// limit; and records that snappy and LZ4 barely shrink, whose compressed form itself passes 64 KiB. They are checked in under testdata/fuzz/FuzzDecompress/*-large-*;
// TestLargeFuzzSeeds rewrites them with -update and otherwise checks that each still is what its
// name says.

const (
	fuzzDecompressLimit  = 1 << 20 // maxSize in FuzzDecompress
	kafkaMaxMessageBytes = 1<<20 + 12
)

// recordsOfBatch is the records section of an uncompressed batch of exactly size bytes: records-1
// records of valueLen bytes and a last one padded to reach size. Values are a repeated word, or
// random letters with random (which LZ codecs barely shrink, and which stay one byte each in a
// corpus file).
func recordsOfBatch(t testing.TB, size, records, valueLen int, random bool) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(size), uint64(records)))
	values := make([][]byte, records)
	for i := range values {
		word := fmt.Sprintf("value-%d-", i%10)
		values[i] = make([]byte, valueLen)
		for j := range values[i] {
			if random {
				values[i][j] = byte('a' + rng.IntN(26))
			} else {
				values[i][j] = word[j%len(word)]
			}
		}
	}
	var b batch.Builder
	for try := 0; try < 16; try++ {
		b.Reset()
		for i, v := range values {
			b.Append([]byte(fmt.Sprintf("key-%d", i)), v, 1_700_000_000_000+int64(i), nil)
		}
		out := b.Finish()
		if len(out) == size {
			return bytes.Clone(out[batch.HeaderSize:])
		}
		last := &values[len(values)-1]
		n := len(*last) + size - len(out)
		if n < 0 {
			break
		}
		*last = bytes.Repeat([]byte("p"), n)
	}
	t.Fatalf("cannot build a batch of exactly %d bytes", size)
	return nil
}

type largeDecompressSeed struct {
	codec       byte
	data        []byte
	wantErr     error // nil: decodes within the limit
	minPlain    int   // decoded bytes, when it decodes
	minCompress int   // the compressed input's own size
}

func largeDecompressSeeds(t testing.TB) map[string]largeDecompressSeed {
	must := func(codec int, src []byte) []byte {
		out, err := Compress(codec, nil, src, DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	over64KiB := recordsOfBatch(t, 64<<10+1, 500, 100, false)
	maxBatch := recordsOfBatch(t, kafkaMaxMessageBytes, 2000, 500, false)
	overLimit := bytes.Repeat([]byte("past the limit "), fuzzDecompressLimit/15+1)
	seeds := map[string]largeDecompressSeed{}
	for _, c := range codecs {
		id := byte(c.id)
		seeds["valid-large-"+c.name+"-64KiB-batch"] = largeDecompressSeed{id, must(c.id, over64KiB), nil, len(over64KiB), 0}
		seeds["valid-large-"+c.name+"-1MiB-batch"] = largeDecompressSeed{id, must(c.id, maxBatch), nil, len(maxBatch), 0}
		seeds["broken-large-"+c.name+"-over-the-limit"] = largeDecompressSeed{id, must(c.id, overLimit), ErrTooLarge, 0, 0}
	}
	incompressible := recordsOfBatch(t, 90<<10, 12, 7<<10, true)
	zstd1MiB := must(batch.CodecZstd, maxBatch)
	for _, codec := range []int{batch.CodecSnappy, batch.CodecLZ4} {
		name := map[int]string{batch.CodecSnappy: "snappy", batch.CodecLZ4: "lz4"}[codec]
		seeds["valid-large-"+name+"-64KiB-compressed"] = largeDecompressSeed{byte(codec), must(codec, incompressible), nil, len(incompressible), 64<<10 + 1}
	}
	seeds["broken-large-zstd-1MiB-batch-truncated"] = largeDecompressSeed{batch.CodecZstd, zstd1MiB[:len(zstd1MiB)-4], ErrCorrupt, 0, 0}
	return seeds
}

func readDecompressCorpusFile(t *testing.T, path string) (byte, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test -run TestLargeFuzzSeeds ./codec/compress/ -args -update)", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "byte(") || !strings.HasPrefix(lines[2], "[]byte(") {
		t.Fatalf("%s: not a FuzzDecompress corpus file", path)
	}
	codec, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "byte("), ")"))
	if err != nil || len([]rune(codec)) != 1 {
		t.Fatalf("%s: codec %q: %v", path, lines[1], err)
	}
	data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return byte([]rune(codec)[0]), []byte(data)
}

// TestLargeFuzzSeeds writes the large FuzzDecompress seeds with -update; without it, it checks the
// checked-in ones decode, or fail, within the target's 1 MiB limit as their names say.
func TestLargeFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecompress")
	for name, want := range largeDecompressSeeds(t) {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", want.codec, want.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		codec, data := readDecompressCorpusFile(t, path)
		out, err := Decompress(int(codec), nil, data, fuzzDecompressLimit)
		switch {
		case codec != want.codec || len(data) < want.minCompress:
			t.Errorf("%s: codec %d, %d bytes; want codec %d, at least %d bytes", name, codec, len(data), want.codec, want.minCompress)
		case want.wantErr != nil && !errors.Is(err, want.wantErr):
			t.Errorf("%s: %v, want %v", name, err, want.wantErr)
		case want.wantErr == nil && (err != nil || len(out) < want.minPlain):
			t.Errorf("%s: decoded %d bytes, %v; want at least %d", name, len(out), err, want.minPlain)
		}
	}
}
