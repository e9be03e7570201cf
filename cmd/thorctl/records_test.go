package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
)

// testRecord is one record to put in a test segment.
type testRecord struct {
	key, value []byte
	headers    []batch.RecordHeader
}

// segmentBatch builds one stored batch at base of records with codec.
func segmentBatch(t *testing.T, base int64, codec int, recs ...testRecord) []byte {
	t.Helper()
	var b batch.Builder
	b.Reset()
	for i, r := range recs {
		b.Append(r.key, r.value, 1700000000000+base+int64(i), r.headers)
	}
	raw, err := compress.CompressBatch(nil, b.Finish(), codec)
	if err != nil {
		t.Fatal(err)
	}
	batch.SetBaseOffset(raw, base)
	batch.SetPartitionLeaderEpoch(raw, 0)
	return raw
}

// writeSegment writes batches as the segment of base offset 0 and returns its path.
func writeSegment(t *testing.T, batches ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(path, bytes.Join(batches, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dumpedRecords parses the record lines of `segment dump --records` into offset → line.
func dumpedRecords(t *testing.T, out string) map[int64]string {
	t.Helper()
	recs := map[int64]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "  offset=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, " ")
		off, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("record line %q", line)
		}
		recs[off] = line
	}
	return recs
}

// TestSegmentDumpRecords: --records prints every record of every batch, whatever its codec:
// offset, timestamp, key, value and headers, text quoted, binary in hex, null as null; --hex
// prints everything in hex.
func TestSegmentDumpRecords(t *testing.T) {
	binaryValue := []byte{0x00, 0xff, 0x10, 'a'}
	first := segmentBatch(t, 0, batch.CodecNone,
		testRecord{key: []byte("user-1"), value: []byte("hello world"), headers: []batch.RecordHeader{{Key: "trace", Value: []byte("ab12")}, {Key: "bin", Value: []byte{1, 2}}}},
		testRecord{key: nil, value: binaryValue},
		testRecord{key: []byte("k"), value: nil, headers: []batch.RecordHeader{{Key: "n", Value: nil}}},
		testRecord{key: []byte{}, value: []byte("multi\nline\tvalue \"quoted\" é")},
	)
	batches := [][]byte{first}
	codecs := []int{batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	for i, codec := range codecs {
		base := int64(4 + 2*i)
		batches = append(batches, segmentBatch(t, base, codec,
			testRecord{key: []byte(codecNames[codec]), value: []byte(strings.Repeat(codecNames[codec]+" value ", 50))},
			testRecord{value: binaryValue}))
	}
	path := writeSegment(t, batches...)

	r := thorctl(t, "", nil, "segment", "dump", "--records", path)
	if r.code != 0 || strings.Count(r.stdout, "position=") != len(batches) {
		t.Fatalf("dump --records: %+v", r)
	}
	recs := dumpedRecords(t, r.stdout)
	want := map[int64]string{
		0: `  offset=0 timestamp=2023-11-14T22:13:20.000Z key="user-1" value="hello world" headers="trace":"ab12","bin":0x0102`,
		1: `  offset=1 timestamp=2023-11-14T22:13:20.001Z key=null value=0x00ff1061`,
		2: `  offset=2 timestamp=2023-11-14T22:13:20.002Z key="k" value=null headers="n":null`,
		3: `  offset=3 timestamp=2023-11-14T22:13:20.003Z key="" value="multi\nline\tvalue \"quoted\" é"`,
	}
	for i, codec := range codecs {
		base := int64(4 + 2*i)
		name := codecNames[codec]
		want[base] = fmt.Sprintf(`  offset=%d timestamp=%s key=%q value=%q`, base, tsAt(base, 0), name, strings.Repeat(name+" value ", 50))
		want[base+1] = fmt.Sprintf(`  offset=%d timestamp=%s key=null value=0x00ff1061`, base+1, tsAt(base, 1))
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records dumped, want %d:\n%s", len(recs), len(want), r.stdout)
	}
	for off, w := range want {
		if recs[off] != w {
			t.Errorf("offset %d:\n got %s\nwant %s", off, recs[off], w)
		}
	}
	// Each batch's records follow its header line.
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(lines[0], "position=0 baseOffset=0 ") || !strings.HasPrefix(lines[5], "position=") || !strings.Contains(lines[5], "codec=gzip") {
		t.Fatalf("layout:\n%s", r.stdout)
	}

	r = thorctl(t, "", nil, "segment", "dump", "--hex", path)
	recs = dumpedRecords(t, r.stdout)
	if r.code != 0 || len(recs) != len(want) {
		t.Fatalf("dump --hex: %+v", r)
	}
	if got, w := recs[0], `  offset=0 timestamp=2023-11-14T22:13:20.000Z key=0x`+hex.EncodeToString([]byte("user-1"))+
		` value=0x`+hex.EncodeToString([]byte("hello world"))+` headers="trace":0x61623132,"bin":0x0102`; got != w {
		t.Errorf("--hex:\n got %s\nwant %s", got, w)
	}

	// Without --records, only the batches.
	if r := thorctl(t, "", nil, "segment", "dump", path); r.code != 0 || strings.Contains(r.stdout, "offset=") {
		t.Fatalf("dump without --records: %+v", r)
	}
}

func tsAt(base int64, i int) string {
	return fmt.Sprintf("2023-11-14T22:13:20.%03dZ", base+int64(i))
}

// TestSegmentDumpRecordsLargeBatches: batches over 1 MiB, stored uncompressed or compressed from
// more than 1 MiB, are dumped whole, and the dumper holds one batch at a time: its buffers are
// as large as the largest batch, not the file.
func TestSegmentDumpRecordsLargeBatches(t *testing.T) {
	big := make([]byte, 1<<20+1000)
	for i := range big {
		big[i] = byte(i % 251)
	}
	text := bytes.Repeat([]byte("a large compressible value "), 60_000) // 1.6 MB
	batches := [][]byte{
		segmentBatch(t, 0, batch.CodecNone, testRecord{key: []byte("big"), value: big}),
		segmentBatch(t, 1, batch.CodecZstd, testRecord{key: []byte("text"), value: text}, testRecord{value: []byte("small")}),
		segmentBatch(t, 3, batch.CodecLZ4, testRecord{key: []byte("text"), value: text}),
		segmentBatch(t, 4, batch.CodecNone, testRecord{value: []byte("last")}),
	}
	if len(batches[0]) <= 1<<20 {
		t.Fatalf("the first batch has %d bytes, want more than 1 MiB", len(batches[0]))
	}
	path := writeSegment(t, batches...)
	r := thorctl(t, "", nil, "segment", "dump", "--records", path)
	recs := dumpedRecords(t, r.stdout)
	if r.code != 0 || len(recs) != 5 {
		t.Fatalf("dump --records: exit %d, %d records, stderr %q", r.code, len(recs), r.stderr)
	}
	if want := `value=0x` + hex.EncodeToString(big); !strings.HasSuffix(recs[0], want) {
		t.Errorf("offset 0: %d bytes printed, want the whole 1 MiB value in hex", len(recs[0]))
	}
	for _, off := range []int64{1, 3} {
		if want := `key="text" value="` + string(text) + `"`; !strings.HasSuffix(recs[off], want) {
			t.Errorf("offset %d: %d bytes printed, want the whole %d-byte value", off, len(recs[off]), len(text))
		}
	}
	if !strings.HasSuffix(recs[2], `value="small"`) || !strings.HasSuffix(recs[4], `value="last"`) {
		t.Errorf("small records: %q, %q", recs[2], recs[4])
	}

	// The dumper's memory: one batch's bytes and one decompressed records section, reused.
	var out bytes.Buffer
	d, err := openRecordDumper(path, bufio.NewWriter(&out), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	pos, largestBatch := int64(0), 0
	for _, b := range batches {
		h, err := batch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.dump(pos, &h); err != nil {
			t.Fatal(err)
		}
		pos += int64(len(b))
		largestBatch = max(largestBatch, len(b))
	}
	if cap(d.raw) != largestBatch || cap(d.scratch) > 2*len(text) || d.badBatches != 0 {
		t.Fatalf("buffers: batch %d bytes (largest batch %d), records %d bytes (largest section about %d); %d bad",
			cap(d.raw), largestBatch, cap(d.scratch), len(text), d.badBatches)
	}
}

// TestSegmentDumpRecordsUndecodable: a batch whose CRC holds but whose compressed records do not
// decode is reported BAD and the dump goes on to the next batch, exiting 1 at the end.
func TestSegmentDumpRecordsUndecodable(t *testing.T) {
	bad := segmentBatch(t, 0, batch.CodecGzip, testRecord{value: bytes.Repeat([]byte("gzip "), 100)})
	for i := batch.HeaderSize + 10; i < batch.HeaderSize+20; i++ {
		bad[i] ^= 0x55
	}
	binary.BigEndian.PutUint32(bad[17:], batch.Checksum(bad)) // the producer's CRC covers the damage
	path := writeSegment(t, bad, segmentBatch(t, 1, batch.CodecNone, testRecord{value: []byte("after")}))
	r := thorctl(t, "", nil, "segment", "dump", "--records", path)
	if r.code != 1 || !strings.Contains(r.stdout, "  BAD records of the batch at position 0: ") ||
		!strings.Contains(r.stdout, `offset=1 timestamp=2023-11-14T22:13:20.001Z key=null value="after"`) ||
		!strings.Contains(r.stderr, "the records of 1 of 2 valid batches do not decode") {
		t.Fatalf("%+v", r)
	}
}

func TestIsPrintableText(t *testing.T) {
	f := func(in string, want bool) {
		t.Helper()
		if got := isPrintableText([]byte(in)); got != want {
			t.Errorf("isPrintableText(%q) = %v", in, got)
		}
	}
	f("", true)
	f("plain text, with spaces", true)
	f("tabs\tand\nlines\r\n", true)
	f("unicode: é ü 日本", true)
	f("\x00", false)
	f("bell\a", false)
	f("\xff\xfe", false)
	f("half a rune \xe6\x97", false)
	f("\u200b zero width space is a format character", false)
}
