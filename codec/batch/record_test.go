package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestBuilderRecordsRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 2000)
	cases := []struct {
		name    string
		pid     int64
		epoch   int16
		seq     int32
		records []testRecord
	}{
		{"single", -1, -1, -1, []testRecord{{Key: []byte("k"), Value: []byte("v"), Timestamp: 1}}},
		{"sample with producer", 42, 3, 7, sampleRecords},
		{"null key and value", -1, -1, -1, []testRecord{{Timestamp: 10}}},
		{"empty key and value", -1, -1, -1, []testRecord{{Key: []byte{}, Value: []byte{}, Timestamp: 10}}},
		{"headers", -1, -1, -1, []testRecord{{Value: []byte("v"), Timestamp: 3, Headers: []RecordHeader{
			{Key: "", Value: []byte{}}, {Key: "a", Value: nil}, {Key: "ü", Value: []byte("é")},
		}}}},
		{"decreasing timestamps", -1, -1, -1, []testRecord{{Timestamp: 100}, {Timestamp: 50}, {Timestamp: -5}, {Timestamp: 200}}},
		{"negative timestamps", -1, -1, -1, []testRecord{{Timestamp: -1}, {Timestamp: -1}}},
		{"extreme timestamps", -1, -1, -1, []testRecord{{Timestamp: 0}, {Timestamp: math.MaxInt64}}},
		{"big values", -1, -1, -1, []testRecord{{Key: big[:300], Value: big, Timestamp: 1}, {Value: big[:128], Timestamp: 2}}},
		{"many records", 7, 0, 0, manyRecords(1000)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := buildBatch(t, c.pid, c.epoch, c.seq, c.records)
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			maxTS := c.records[0].Timestamp
			for _, r := range c.records {
				maxTS = max(maxTS, r.Timestamp)
			}
			if h.ProducerID != c.pid || h.ProducerEpoch != c.epoch || h.BaseSequence != c.seq ||
				h.RecordCount != int32(len(c.records)) || h.BaseTimestamp != c.records[0].Timestamp ||
				h.MaxTimestamp != maxTS || h.PartitionLeaderEpoch != -1 || h.BaseOffset != 0 || h.Attributes != 0 {
				t.Fatalf("header %+v", h)
			}
			got, err := decodeAll(b)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]decodedRecord, len(c.records))
			for i, r := range c.records {
				want[i] = decodedRecord{Offset: int64(i), Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers}
			}
			if !sameRecords(got, want) {
				t.Fatalf("records\n got %v\nwant %v", got, want)
			}
		})
	}
}

func manyRecords(n int) []testRecord {
	out := make([]testRecord, n)
	for i := range out {
		out[i] = testRecord{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{'v'}, i%200), Timestamp: int64(1000 + i*(i%3-1))}
		if i%7 == 0 {
			out[i].Key = nil
		}
		if i%11 == 0 {
			out[i].Headers = []RecordHeader{{Key: "i", Value: []byte{byte(i)}}}
		}
	}
	return out
}

func TestBuilderReuse(t *testing.T) {
	var b Builder
	b.Reset()
	b.Append([]byte("first batch key"), bytes.Repeat([]byte("x"), 500), 1, nil)
	first := bytes.Clone(b.Finish())

	b.ResetProducer(9, 1, 100)
	if b.Len() != 0 || b.Size() != HeaderSize {
		t.Fatalf("after reset: Len %d Size %d", b.Len(), b.Size())
	}
	b.Append(nil, []byte("a"), 77, nil)
	b.Append([]byte("k"), []byte("b"), 78, []RecordHeader{{Key: "h", Value: []byte("v")}})
	if b.Len() != 2 {
		t.Fatalf("Len %d", b.Len())
	}
	size := b.Size()
	second := b.Finish()
	if len(second) != size {
		t.Fatalf("Size said %d, Finish gave %d", size, len(second))
	}
	h, err := Validate(second)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseTimestamp != 77 || h.MaxTimestamp != 78 || h.ProducerID != 9 || h.BaseSequence != 100 {
		t.Fatalf("the previous batch leaked into the header: %+v", h)
	}
	if _, err := Validate(first); err != nil {
		t.Fatal(err)
	}
	// Reset back to no producer.
	b.Reset()
	b.Append(nil, nil, 5, nil)
	h, err = Validate(b.Finish())
	if err != nil || h.ProducerID != NoProducerID || h.ProducerEpoch != -1 || h.BaseSequence != NoSequence {
		t.Fatalf("Reset: %+v %v", h, err)
	}
}

func TestEstimateRecordSize(t *testing.T) {
	cases := []testRecord{
		{},
		{Key: []byte("k"), Value: []byte("v")},
		{Key: bytes.Repeat([]byte("k"), 200), Value: bytes.Repeat([]byte("v"), 70000), Timestamp: math.MaxInt64},
		{Value: []byte("v"), Timestamp: math.MinInt64 / 2, Headers: []RecordHeader{{Key: strings.Repeat("h", 300), Value: bytes.Repeat([]byte("x"), 300)}, {Key: "n"}}},
	}
	for i, r := range cases {
		var b Builder
		b.Reset()
		b.Append(nil, nil, 0, nil) // a first record fixes the base timestamp at 0
		before := b.Size()
		b.Append(r.Key, r.Value, r.Timestamp, r.Headers)
		added := b.Size() - before
		if est := EstimateRecordSize(r.Key, r.Value, r.Headers); added > est {
			t.Fatalf("case %d: record took %d bytes, estimate %d", i, added, est)
		}
	}
}

// TestRecordsMalformed feeds hand-written record bodies through Records. The expectations follow
// Kafka's DefaultRecord.readFrom.
func TestRecordsMalformed(t *testing.T) {
	// fiveByteZero is 0 written with a redundant 5-byte varint, which Kafka accepts.
	fiveByteZero := []byte{0x80, 0x80, 0x80, 0x80, 0x00}
	// sixByteZero has one continuation byte too many for a 32-bit varint.
	sixByteZero := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}
	// bigOffsetDelta is 2^32 as a varint: fits in 64 bits but not in Kafka's 32-bit offsetDelta.
	bigOffsetDelta := binary.AppendVarint(nil, 1<<32)

	type want struct {
		err   error
		key   []byte
		value []byte
		hdrs  []RecordHeader
	}
	cases := []struct {
		name    string
		count   int32
		section []byte
		want    want
	}{
		{"minimal", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 0)), want{}},
		{"key and value", 1, appendRawRecord(nil, recordBody(0, 0, 1, "k", 2, "vv", 0)), want{key: []byte("k"), value: []byte("vv")}},
		{"negative key length other than -1 is null", 1, appendRawRecord(nil, recordBody(0, 0, -7, 1, "v", 0)), want{value: []byte("v")}},
		{"negative value length is null", 1, appendRawRecord(nil, recordBody(0, 0, 0, -2, 0)), want{key: []byte{}}},
		{"header with null value", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 1, 1, "h", -1)), want{hdrs: []RecordHeader{{Key: "h"}}}},
		{"header with negative value length", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 1, 1, "h", -3)), want{hdrs: []RecordHeader{{Key: "h"}}}},
		{"redundant 5-byte varint", 1, appendRawRecord(nil, recordBody(0, fiveByteZero, -1, -1, 0)), want{}},

		{"empty section, one record", 1, nil, want{err: ErrBadRecord}},
		{"negative record length", 1, binary.AppendVarint(nil, -1), want{err: ErrBadRecord}},
		{"record length past the end", 1, append(binary.AppendVarint(nil, 10), 0, 0), want{err: ErrBadRecord}},
		{"empty record body", 1, appendRawRecord(nil, nil), want{err: ErrBadRecord}},
		{"6-byte offset delta", 1, appendRawRecord(nil, recordBody(0, sixByteZero, -1, -1, 0)), want{err: ErrBadRecord}},
		{"offset delta beyond int32", 1, appendRawRecord(nil, recordBody(0, bigOffsetDelta, -1, -1, 0)), want{err: ErrBadRecord}},
		{"6-byte record length", 1, append(sixByteZero, recordBody(0, 0, -1, -1, 0)...), want{err: ErrBadRecord}},
		{"key past the end", 1, appendRawRecord(nil, recordBody(0, 0, 5, "k")), want{err: ErrBadRecord}},
		{"negative header count", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, -1)), want{err: ErrBadRecord}},
		{"header count past the end", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 3, 0, 0)), want{err: ErrBadRecord}},
		{"null header key", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 1, -1, -1)), want{err: ErrBadRecord}},
		{"trailing byte in record", 1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 0, "x")), want{err: ErrBadRecord}},
		{"trailing byte after records", 1, append(appendRawRecord(nil, recordBody(0, 0, -1, -1, 0)), 0), want{err: ErrBadRecord}},
		{"fewer records than counted", 2, appendRawRecord(nil, recordBody(0, 0, -1, -1, 0)), want{err: ErrBadRecord}},
		{"missing timestamp", 1, appendRawRecord(nil, []byte{0}), want{err: ErrBadRecord}},
		{"truncated timestamp varint", 1, appendRawRecord(nil, []byte{0, 0x80}), want{err: ErrBadRecord}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := rawBatch(c.count, c.section)
			got, err := decodeAll(b)
			if !errors.Is(err, c.want.err) {
				t.Fatalf("Records: %v, want %v", err, c.want.err)
			}
			if err != nil {
				return
			}
			if len(got) != 1 || !sameBytes(got[0].Key, c.want.key) || !sameBytes(got[0].Value, c.want.value) || !sameHeaders(got[0].Headers, c.want.hdrs) {
				t.Fatalf("got %v, want key %s value %s headers %s", got, showBytes(c.want.key), showBytes(c.want.value), showHeaders(c.want.hdrs))
			}
		})
	}
}

func TestRecordsBatchErrors(t *testing.T) {
	good := sampleBatch(t)
	mut := func(fn func(b []byte)) []byte {
		b := bytes.Clone(good)
		fn(b)
		return b
	}
	errStop := errors.New("stop")
	cases := []struct {
		name    string
		in      []byte
		fn      func(*Record) error
		wantErr error
	}{
		{"short header", good[:HeaderSize-1], nil, ErrShort},
		{"short records", good[:len(good)-1], nil, ErrShort},
		{"bad length", mut(func(b []byte) { putUint32(b, offBatchLength, 0) }), nil, ErrBadLength},
		{"magic 1", mut(func(b []byte) { b[offMagic] = 1 }), nil, ErrBadMagic},
		{"compressed", mut(func(b []byte) { b[offAttributes+1] |= CodecGzip }), nil, ErrCompression},
		{"callback error", good, func(r *Record) error {
			if r.Offset == 2 {
				return errStop
			}
			return nil
		}, errStop},
		{"extra bytes after the batch are ignored", append(bytes.Clone(good), 1, 2, 3), nil, nil},
		{"bad CRC is not Records' business", mut(func(b []byte) { b[offCRC] ^= 0xff }), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn := c.fn
			if fn == nil {
				fn = func(*Record) error { return nil }
			}
			if err := Records(c.in, fn); !errors.Is(err, c.wantErr) {
				t.Fatalf("Records: %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestVarint32(t *testing.T) {
	f := func(in []byte, want int32, wantN int) {
		t.Helper()
		v, n := varint32(in)
		if v != want || n != wantN {
			t.Fatalf("varint32(% x) = %d, %d; want %d, %d", in, v, n, want, wantN)
		}
	}
	f(nil, 0, 0)
	f([]byte{0x80}, 0, 0)
	f([]byte{0x00}, 0, 1)
	f([]byte{0x01}, -1, 1)
	f([]byte{0x02}, 1, 1)
	f(binary.AppendVarint(nil, math.MaxInt32), math.MaxInt32, 5)
	f(binary.AppendVarint(nil, math.MinInt32), math.MinInt32, 5)
	f(binary.AppendVarint(nil, math.MaxInt32+1), 0, -1)
	f(binary.AppendVarint(nil, math.MinInt32-1), 0, -1)
	f([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, -1)
	f([]byte{0x80, 0x80, 0x80, 0x80}, 0, 0)
	for _, v := range []int64{0, 1, -1, 63, -64, 64, 300, -300, 1 << 20, -(1 << 27), math.MaxInt32, math.MinInt32} {
		enc := binary.AppendVarint(nil, v)
		f(append(enc, 0xff), int32(v), len(enc))
	}
}
