package batch

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/batch_v2.hex and the fuzz seed corpus")

const goldenPath = "testdata/batch_v2.hex"

// goldenBatch is the small batch pinned by testdata/batch_v2.hex: two records from producer 1000,
// one with a key and a header, one tombstone without a key, rewritten to base offset 5 and epoch 2.
func goldenBatch(t testing.TB) []byte {
	b := buildBatch(t, 1000, 1, 0, []testRecord{
		{Key: []byte("key"), Value: []byte("hello"), Timestamp: 1_700_000_000_000, Headers: []RecordHeader{{Key: "trace", Value: []byte("t1")}}},
		{Key: nil, Value: nil, Timestamp: 1_700_000_000_002},
	})
	SetBaseOffset(b, 5)
	SetPartitionLeaderEpoch(b, 2)
	return b
}

// goldenFields names the header fields for the annotated dump.
var goldenFields = []struct {
	name string
	size int
}{
	{"baseOffset", 8}, {"batchLength", 4}, {"partitionLeaderEpoch", 4}, {"magic", 1}, {"crc", 4},
	{"attributes", 2}, {"lastOffsetDelta", 4}, {"baseTimestamp", 8}, {"maxTimestamp", 8},
	{"producerId", 8}, {"producerEpoch", 2}, {"baseSequence", 4}, {"recordCount", 4},
}

// formatGolden writes one header field per line, then one record per line, each with a comment.
func formatGolden(b []byte) string {
	var s strings.Builder
	s.WriteString("# RecordBatch v2 written by batch.Builder (see goldenBatch in golden_test.go).\n")
	s.WriteString("# Hex bytes; '#' starts a comment. Regenerate with: go test ./codec/batch -run Golden -update\n")
	off := 0
	for _, f := range goldenFields {
		fmt.Fprintf(&s, "%-24s # %s\n", hex.EncodeToString(b[off:off+f.size]), f.name)
		off += f.size
	}
	h, _ := ParseHeader(b)
	i := 0
	_ = DecodeRecords(&h, b[HeaderSize:], func(r *Record) error {
		// The record's bytes start at off with their varint length.
		length, n := varint32(b[off:])
		end := off + n + int(length)
		fmt.Fprintf(&s, "%s # record %d: offset %d key %s value %s headers %s\n",
			hex.EncodeToString(b[off:end]), i, r.Offset, showBytes(r.Key), showBytes(r.Value), showHeaders(r.Headers))
		off, i = end, i+1
		return nil
	})
	return s.String()
}

func parseGolden(text string) ([]byte, error) {
	var out []byte
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func TestGoldenBatch(t *testing.T) {
	got := goldenBatch(t)
	if *update {
		if err := os.WriteFile(goldenPath, []byte(formatGolden(got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseGolden(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Builder output changed (run with -update if intended)\n got %x\nwant %x", got, want)
	}
	h, err := Validate(want)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 5 || h.PartitionLeaderEpoch != 2 || h.ProducerID != 1000 || h.RecordCount != 2 {
		t.Fatalf("golden header %+v", h)
	}
	checkAgainstKmsg(t, want)
	recs, err := decodeAll(want)
	if err != nil {
		t.Fatal(err)
	}
	wantRecs := []decodedRecord{
		{Offset: 5, Timestamp: 1_700_000_000_000, Key: []byte("key"), Value: []byte("hello"), Headers: []RecordHeader{{Key: "trace", Value: []byte("t1")}}},
		{Offset: 6, Timestamp: 1_700_000_000_002},
	}
	if !sameRecords(recs, wantRecs) {
		t.Fatalf("golden records %v", recs)
	}
}

// writeCorpus writes seeds in the "go test fuzz v1" format under testdata/fuzz/<target>/.
func writeCorpus(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
