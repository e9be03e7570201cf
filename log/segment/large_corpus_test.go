package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
)

// The fuzz corpora also hold inputs of the sizes Kafka clients send: batches past the walker's
// 64 KiB buffer and past 1 MiB (Kafka's max.message.bytes), uncompressed and compressed. They are
// checked in under testdata/fuzz/<target>/large-*; TestLargeFuzzSeeds rewrites them with -update
// and otherwise checks that each still is what its name says.

// corpusBatch is a batch at base of records records with valueLen-byte values: a repeated word
// (compresses well, in git too) or, with random, random letters (no LZ codec shrinks them much,
// and they stay one byte each in the corpus file). codec compresses the records.
func corpusBatch(t testing.TB, base int64, records, valueLen int, random bool, codec int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(base), uint64(records)))
	var b batch.Builder
	b.Reset()
	v := make([]byte, valueLen)
	for i := 0; i < records; i++ {
		word := fmt.Sprintf("value-%d-", i%10)
		for j := range v {
			if random {
				v[j] = byte('a' + rng.IntN(26))
			} else {
				v[j] = word[j%len(word)]
			}
		}
		b.Append([]byte(fmt.Sprintf("key-%d", i)), v, 1_700_000_000_000+int64(i), nil)
	}
	out, err := compress.CompressBatch(nil, b.Finish(), codec)
	if err != nil {
		t.Fatal(err)
	}
	batch.SetBaseOffset(out, base)
	return out
}

// recoverSeed is one large FuzzRecover input and what recovery must make of it.
type recoverSeed struct {
	data         []byte
	validBatches int // batches in the valid prefix
	largest      int // the largest batch of the valid prefix has at least this many bytes
}

func largeRecoverSeeds(t testing.TB) map[string]recoverSeed {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	small := func(base int64) []byte { return corpusBatch(t, base, 2, 10, false, batch.CodecNone) }
	over64KiB := func(base int64) []byte { return corpusBatch(t, base, 1, walkerBufferBytes+1, false, batch.CodecNone) }
	over1MiB := func(base int64) []byte { return corpusBatch(t, base, 8000, 120, false, batch.CodecNone) } // franz-go-like: thousands of records
	flipped := over64KiB(0)
	flipped[len(flipped)/2] ^= 1
	torn := over64KiB(8003)
	return map[string]recoverSeed{
		"large-64KiB-between-small": {cat(small(0), over64KiB(2), small(3)), 3, walkerBufferBytes + 1},
		"large-1MiB-then-torn":      {cat(small(0), over1MiB(2), torn[:len(torn)/2]), 2, 1<<20 + 12},
		"large-64KiB-flipped":       {cat(flipped, small(1)), 0, 0},
		"large-compressed": {cat(
			corpusBatch(t, 0, 9000, 120, false, batch.CodecZstd),          // over 1 MiB of records, compressed small
			corpusBatch(t, 9000, 1, 70<<10, true, batch.CodecSnappy),      // over 64 KiB compressed
			corpusBatch(t, 9001, 700, 100, false, batch.CodecGzip),        // over 64 KiB of records
			corpusBatch(t, 9701, 3, 400<<10, false, batch.CodecLZ4),       // over 1 MiB of records
			corpusBatch(t, 9704, 1, 70<<10, true, batch.CodecLZ4)[:40000], // torn
		), 4, walkerBufferBytes + 1},
	}
}

// indexLoadSeed is one large FuzzIndexLoad input: index and time index files for the small
// segment the target builds, as a segment of large batches would have them.
func largeIndexLoadSeeds() map[string][2][]byte {
	entry := func(dst []byte, rel, pos uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(dst, rel), pos)
	}
	timeEntry := func(dst []byte, ts int64, rel uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(dst, uint64(ts)), rel)
	}
	// Positions of batches past 64 KiB and 1 MiB: past the end of the target's log.
	past := entry(entry(entry(nil, 3, 212), 4, walkerBufferBytes+1), 5, 1<<20+12)
	pastTime := timeEntry(timeEntry(nil, 2000, 2), 1<<40, 4)
	// An .index over 64 KiB: two real entries, then thousands that climb past the log's end.
	long := entry(entry(nil, 3, 212), 6, 363)
	for i := uint32(0); len(long) <= walkerBufferBytes; i++ {
		long = entry(long, 10+i, 600+i*(walkerBufferBytes+1))
	}
	return map[string][2][]byte{
		"large-positions-past-64KiB-and-1MiB": {past, pastTime},
		"large-index-over-64KiB":              {long, timeEntry(nil, 2000, 2)},
	}
}

// corpusFile encodes values in the "go test fuzz v1" format.
func corpusFile(values ...[]byte) []byte {
	var sb strings.Builder
	sb.WriteString("go test fuzz v1\n")
	for _, v := range values {
		fmt.Fprintf(&sb, "[]byte(%q)\n", v)
	}
	return []byte(sb.String())
}

// readCorpusFile decodes a corpus file of []byte values.
func readCorpusFile(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test -run TestLargeFuzzSeeds -update ./log/segment/)", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a corpus file", path)
	}
	var out [][]byte
	for _, line := range lines[1:] {
		inner, ok := strings.CutPrefix(line, "[]byte(")
		if !ok || !strings.HasSuffix(inner, ")") {
			t.Fatalf("%s: unexpected line %.40q", path, line)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(inner, ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, []byte(v))
	}
	return out
}

// TestLargeFuzzSeeds writes the large seeds with -update; without it, it checks the checked-in
// ones: each FuzzRecover seed has the valid prefix and the batch sizes its name promises.
func TestLargeFuzzSeeds(t *testing.T) {
	recoverDir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	indexDir := filepath.Join("testdata", "fuzz", "FuzzIndexLoad")
	if *update {
		for name, s := range largeRecoverSeeds(t) {
			if err := os.WriteFile(filepath.Join(recoverDir, name), corpusFile(s.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, s := range largeIndexLoadSeeds() {
			if err := os.WriteFile(filepath.Join(indexDir, name), corpusFile(s[0], s[1]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range largeRecoverSeeds(t) {
		values := readCorpusFile(t, filepath.Join(recoverDir, name))
		if len(values) != 1 {
			t.Fatalf("%s: %d values", name, len(values))
		}
		data := values[0]
		size, _ := validPrefix(data, 0)
		batches, largest := 0, 0
		if err := batch.Split(data[:size], func(b []byte) error {
			batches++
			largest = max(largest, len(b))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if batches != want.validBatches || largest < want.largest || (size == len(data)) != (name == "large-64KiB-between-small") {
			t.Errorf("%s: valid prefix of %d bytes, %d batches, largest %d; want %d batches, largest >= %d", name, size, batches, largest, want.validBatches, want.largest)
		}
	}
	for name, want := range largeIndexLoadSeeds() {
		values := readCorpusFile(t, filepath.Join(indexDir, name))
		if len(values) != 2 || !bytes.Equal(values[0], want[0]) || !bytes.Equal(values[1], want[1]) {
			t.Errorf("%s: differs from what the generator writes (run with -update)", name)
		}
	}
}
