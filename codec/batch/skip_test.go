package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

type skipped struct {
	offset, timestamp int64
}

// skipAll walks the records of batch b with a RecordSkipper, in memory or through r's reader.
func skipAll(b []byte, stream func(io.Reader) io.Reader) ([]skipped, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Size() > len(b) {
		return nil, ErrShort
	}
	section := b[HeaderSize:h.Size()]
	var s RecordSkipper
	if stream == nil {
		s.ResetBytes(&h, section)
	} else {
		s.ResetReader(&h, stream(bytes.NewReader(section)), 64<<20)
	}
	var out []skipped
	for s.Next() {
		out = append(out, skipped{s.Offset(), s.Timestamp()})
	}
	return out, s.Err()
}

var skipModes = map[string]func(io.Reader) io.Reader{
	"memory":   nil,
	"stream":   func(r io.Reader) io.Reader { return r },
	"one-byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
}

// checkSkipAgrees: the skipper accepts exactly what DecodeRecords accepts, with the same offsets
// and timestamps, in every mode.
func checkSkipAgrees(t *testing.T, b []byte) {
	t.Helper()
	h, err := ParseHeader(b)
	if err != nil || h.Size() > len(b) || h.Codec() != CodecNone {
		return
	}
	if h.RecordCount < 0 {
		// Validate refuses it; DecodeRecords, which trusts the count, reads nothing.
		if _, err := skipAll(b, nil); !errors.Is(err, ErrRecordCount) {
			t.Fatalf("negative record count: %v, want ErrRecordCount", err)
		}
		return
	}
	var want []skipped
	werr := DecodeRecords(&h, b[HeaderSize:h.Size()], func(r *Record) error {
		want = append(want, skipped{r.Offset, r.Timestamp})
		return nil
	})
	for name, mode := range skipModes {
		got, gerr := skipAll(b, mode)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: skipper says %v, DecodeRecords %v", name, gerr, werr)
		}
		if gerr == nil && len(got) != len(want) {
			t.Fatalf("%s: skipper walked %d records, DecodeRecords %d", name, len(got), len(want))
		}
		for i := range got {
			if gerr == nil && got[i] != want[i] {
				t.Fatalf("%s: record %d: skipper %+v, DecodeRecords %+v", name, i, got[i], want[i])
			}
		}
	}
}

func TestRecordSkipperAgreesWithDecodeRecords(t *testing.T) {
	for name, s := range recordsSeeds(t) {
		t.Run(name, func(t *testing.T) { checkSkipAgrees(t, s) })
	}
	big := bytes.Repeat([]byte("x"), 100<<10) // records larger than the skipper's buffer
	checkSkipAgrees(t, buildBatch(t, -1, -1, -1, []testRecord{
		{Key: []byte("k"), Value: big, Timestamp: 5, Headers: []RecordHeader{{Key: "h", Value: big}}},
		{Value: []byte("v"), Timestamp: 3},
		{Key: big, Timestamp: 9, Headers: []RecordHeader{{Key: "a"}, {Key: "b", Value: []byte{}}}},
	}))
}

func FuzzRecordSkipper(f *testing.F) {
	for _, s := range recordsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSkipAgrees(t, data)
		for _, count := range []int32{1, 2, int32(bytes.Count(data, []byte{0}))} {
			checkSkipAgrees(t, rawBatch(count, data))
		}
	})
}

func TestRecordSkipperLimits(t *testing.T) {
	headers := func(n int) []byte {
		parts := []any{0, 0, -1, -1, n}
		for range n {
			parts = append(parts, 0, -1) // key "", value null
		}
		return rawBatch(1, appendRawRecord(nil, recordBody(parts...)))
	}
	for name, mode := range skipModes {
		if _, err := skipAll(headers(MaxRecordHeaders), mode); err != nil {
			t.Errorf("%s: %d headers: %v", name, MaxRecordHeaders, err)
		}
		if _, err := skipAll(headers(MaxRecordHeaders+1), mode); !errors.Is(err, ErrTooManyHeaders) {
			t.Errorf("%s: %d headers: %v, want ErrTooManyHeaders", name, MaxRecordHeaders+1, err)
		}
		one := appendRawRecord(nil, recordBody(0, 0, -1, 1, "v", 0))
		two := appendRawRecord(bytes.Clone(one), recordBody(0, 1, -1, 1, "v", 0))
		if _, err := skipAll(rawBatch(3, append(two, make([]byte, 20)...)), mode); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: junk where a third record should be: %v", name, err)
		}
		if _, err := skipAll(rawBatch(3, two), mode); !errors.Is(err, ErrRecordCount) && !errors.Is(err, ErrTooManyRecords) {
			t.Errorf("%s: count 3, two records: %v, want a record count error", name, err)
		}
		if _, err := skipAll(rawBatch(1, two), mode); !errors.Is(err, ErrRecordCount) {
			t.Errorf("%s: count 1, two records: %v, want ErrRecordCount", name, err)
		}
	}
	// A count the bytes cannot hold is refused before any record is read.
	if _, err := skipAll(rawBatch(1000, appendRawRecord(nil, recordBody(0, 0, -1, -1, 0))), nil); !errors.Is(err, ErrTooManyRecords) {
		t.Errorf("1000 records in 8 bytes: %v, want ErrTooManyRecords", err)
	}
}

// countingZeros is an endless stream of zero bytes that counts what it hands out.
type countingZeros struct{ n int }

func (z *countingZeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += len(p)
	return len(p), nil
}

// TestRecordSkipperStopsEarly: a record claiming 31 million headers is refused from its header
// count, and a stream of zeros at its first record, reading only the skipper's buffer.
func TestRecordSkipperStopsEarly(t *testing.T) {
	h := Header{RecordCount: 1, LastOffsetDelta: 0}
	prefix := binary.AppendVarint(nil, 62_000_010)                   // record length
	prefix = append(prefix, recordBody(0, 0, -1, -1, 31_000_000)...) // then empty headers
	src := io.MultiReader(bytes.NewReader(prefix), &countingZeros{})
	var s RecordSkipper
	s.ResetReader(&h, src, 64<<20)
	if s.Next() || !errors.Is(s.Err(), ErrTooManyHeaders) {
		t.Fatalf("31M headers: %v, want ErrTooManyHeaders", s.Err())
	}
	zeros := &countingZeros{}
	h.RecordCount = 1000
	s.ResetReader(&h, zeros, 64<<20)
	if s.Next() || !errors.Is(s.Err(), ErrBadRecord) {
		t.Fatalf("zeros: %v, want ErrBadRecord", s.Err())
	}
	if zeros.n > 2*skipBufferSize {
		t.Fatalf("read %d bytes of zeros before refusing, want at most %d", zeros.n, 2*skipBufferSize)
	}
}
