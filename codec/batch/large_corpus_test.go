package batch_test

import (
	"bytes"
	"encoding/binary"
	"flag"
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

// The fuzz corpora also hold batches of the sizes Kafka clients send: past 64 KiB and past 1 MiB
// (Kafka's max.message.bytes), with thousands of records or one big one, and compressed with each
// codec (whose size or records pass those sizes). They are checked in under
// testdata/fuzz/<target>/{valid,broken}-large-*; TestLargeFuzzSeeds rewrites them with -update and
// otherwise checks that each still is what its name says. It lives in package batch_test because
// building compressed batches needs codec/compress, which imports this package.

// largeBatch is a batch of records records with valueLen-byte values: a repeated word (compresses
// well, in git too) or, with random, random letters (no LZ codec shrinks them much, and they stay
// one byte each in a corpus file); codec compresses the records.
func largeBatch(t testing.TB, records, valueLen int, random bool, codec int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(records), uint64(valueLen)))
	var b batch.Builder
	b.ResetProducer(4242, 3, 17)
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
		b.Append([]byte(fmt.Sprintf("key-%d", i)), v, 1_700_000_000_000+int64(i%500), []batch.RecordHeader{{Key: "h", Value: []byte{byte(i)}}})
	}
	out, err := compress.CompressBatch(nil, b.Finish(), codec)
	if err != nil {
		t.Fatal(err)
	}
	batch.SetBaseOffset(out, 1000)
	return out
}

// largeSeed is one input and the claims the check makes about it.
type largeSeed struct {
	data     []byte
	minBytes int // the input itself has at least this many bytes
	// minRecordsBytes: the records section, decompressed, has at least this many bytes.
	minRecordsBytes int
	codec           int
}

func largeValidateSeeds(t testing.TB) map[string]largeSeed {
	over64KiB := largeBatch(t, 1, 64<<10, false, batch.CodecNone)
	crc := bytes.Clone(over64KiB)
	crc[len(crc)/2] ^= 1
	length := bytes.Clone(over64KiB)
	binary.BigEndian.PutUint32(length[8:], binary.BigEndian.Uint32(length[8:])+1)
	return map[string]largeSeed{
		"valid-large-64KiB":                {over64KiB, 64<<10 + 1, 0, batch.CodecNone},
		"valid-large-1MiB-many-records":    {largeBatch(t, 2000, 520, false, batch.CodecNone), 1<<20 + 13, 0, batch.CodecNone},
		"valid-large-gzip-1MiB-records":    {largeBatch(t, 1, 1<<20+100, false, batch.CodecGzip), 0, 1<<20 + 13, batch.CodecGzip},
		"valid-large-zstd-1MiB-records":    {largeBatch(t, 1, 1<<20+100, false, batch.CodecZstd), 0, 1<<20 + 13, batch.CodecZstd},
		"valid-large-snappy-64KiB":         {largeBatch(t, 10, 7<<10, true, batch.CodecSnappy), 64<<10 + 1, 64<<10 + 1, batch.CodecSnappy},
		"valid-large-lz4-1MiB":             {largeBatch(t, 4, 263<<10, true, batch.CodecLZ4), 1<<20 + 13, 1<<20 + 13, batch.CodecLZ4},
		"broken-large-crc-64KiB":           {crc, 64<<10 + 1, 0, batch.CodecNone},
		"broken-large-length-past-64KiB":   {length, 64<<10 + 1, 0, batch.CodecNone},
		"broken-large-gzip-truncated-1MiB": {func() []byte { b := largeBatch(t, 1, 1<<20+100, false, batch.CodecGzip); return b[:len(b)-1] }(), 0, 0, batch.CodecGzip},
	}
}

func largeRecordsSeeds(t testing.TB) map[string]largeSeed {
	return map[string]largeSeed{
		"valid-large-64KiB-thousands-of-records": {largeBatch(t, 3000, 8, false, batch.CodecNone), 64<<10 + 1, 0, batch.CodecNone},
		"valid-large-1MiB-one-record":            {largeBatch(t, 1, 1<<20+100, false, batch.CodecNone), 1<<20 + 13, 0, batch.CodecNone},
		"broken-large-zstd-compressed-1MiB":      {largeBatch(t, 9000, 100, false, batch.CodecZstd), 0, 1<<20 + 13, batch.CodecZstd},
		"broken-large-snappy-compressed-64KiB":   {largeBatch(t, 10, 7<<10, true, batch.CodecSnappy), 64<<10 + 1, 64<<10 + 1, batch.CodecSnappy},
	}
}

func readLargeCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test -run TestLargeFuzzSeeds ./codec/batch/ -args -update)", err)
	}
	rest, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
	rest, ok2 := strings.CutSuffix(rest, ")\n")
	if !ok || !ok2 {
		t.Fatalf("%s: not a one-value corpus file", path)
	}
	v, err := strconv.Unquote(rest)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(v)
}

// TestLargeFuzzSeeds writes the large seeds with -update; without it, it checks the checked-in
// ones: valid-* validate, broken-* do not (FuzzValidate) or their records do not decode
// (FuzzRecords), and each has the size and codec its name says.
func TestLargeFuzzSeeds(t *testing.T) {
	update := flag.Lookup("update").Value.(flag.Getter).Get().(bool)
	for target, seeds := range map[string]map[string]largeSeed{"FuzzValidate": largeValidateSeeds(t), "FuzzRecords": largeRecordsSeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, want := range seeds {
			path := filepath.Join(dir, name)
			if update {
				if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", want.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data := readLargeCorpusFile(t, path)
			valid := strings.HasPrefix(name, "valid-")
			h, err := batch.Validate(data)
			if target == "FuzzValidate" && (err == nil) != valid {
				t.Errorf("%s/%s: Validate: %v", target, name, err)
			}
			if target == "FuzzRecords" {
				if err != nil {
					t.Errorf("%s/%s: Validate: %v", target, name, err)
				}
				if rerr := batch.Records(data, func(*batch.Record) error { return nil }); (rerr == nil) != valid {
					t.Errorf("%s/%s: Records: %v", target, name, rerr)
				}
			}
			if len(data) < want.minBytes || h.Codec() != want.codec {
				t.Errorf("%s/%s: %d bytes, codec %d; want at least %d, codec %d", target, name, len(data), h.Codec(), want.minBytes, want.codec)
			}
			if want.minRecordsBytes > 0 {
				_, records, err := compress.DecompressBatch(data, nil, 64<<20)
				if err != nil || len(records) < want.minRecordsBytes {
					t.Errorf("%s/%s: records section of %d bytes, %v; want at least %d", target, name, len(records), err, want.minRecordsBytes)
				}
			}
		}
	}
}
