package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

var sampleRecords = []testRecord{
	{Key: []byte("k0"), Value: []byte("v0"), Timestamp: 1_700_000_000_000},
	{Key: nil, Value: []byte("no key"), Timestamp: 1_700_000_000_005},
	{Key: []byte("tomb"), Value: nil, Timestamp: 1_699_999_999_990, Headers: []RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "null", Value: nil}}},
	{Key: []byte{}, Value: []byte{}, Timestamp: 1_700_000_000_001},
}

func sampleBatch(t testing.TB) []byte {
	return buildBatch(t, 42, 3, 7, sampleRecords)
}

func TestParseHeader(t *testing.T) {
	good := sampleBatch(t)
	f := func(name string, in []byte, wantErr error, check func(Header)) {
		t.Helper()
		h, err := ParseHeader(in)
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: err %v, want %v", name, err, wantErr)
		}
		if err == nil && check != nil {
			check(h)
		}
	}
	f("empty", nil, ErrShort, nil)
	f("one short of a header", good[:HeaderSize-1], ErrShort, nil)
	f("whole batch", good, nil, func(h Header) {
		want := Header{
			BaseOffset: 0, BatchLength: int32(len(good) - LengthPrefix), PartitionLeaderEpoch: -1,
			Magic: 2, CRC: refCRC(good), Attributes: 0, LastOffsetDelta: 3,
			BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_005,
			ProducerID: 42, ProducerEpoch: 3, BaseSequence: 7, RecordCount: 4,
		}
		if h != want {
			t.Fatalf("header\n got %+v\nwant %+v", h, want)
		}
		if h.Size() != len(good) || h.LastOffset() != 3 || h.NextOffset() != 4 || h.Codec() != CodecNone ||
			h.IsControl() || h.IsTransactional() || h.LogAppendTime() {
			t.Fatalf("derived fields wrong: %+v", h)
		}
	})
	f("header only, length says more", good[:HeaderSize], nil, nil) // ParseHeader does not need the records
	f("length below a header", putUint32(bytes.Clone(good), offBatchLength, HeaderSize-LengthPrefix-1), ErrBadLength, nil)
	f("negative length", putUint32(bytes.Clone(good), offBatchLength, 0x80000000), ErrBadLength, nil)

	attrs := bytes.Clone(good)
	binary.BigEndian.PutUint16(attrs[offAttributes:], CodecZstd|TimestampTypeBit|TransactionalBit|ControlBit)
	f("attribute bits", attrs, nil, func(h Header) {
		if h.Codec() != CodecZstd || !h.LogAppendTime() || !h.IsTransactional() || !h.IsControl() {
			t.Fatalf("attributes %#x decoded wrong", h.Attributes)
		}
	})
}

func TestSize(t *testing.T) {
	good := sampleBatch(t)
	f := func(name string, in []byte, want int, wantErr error) {
		t.Helper()
		n, err := Size(in)
		if !errors.Is(err, wantErr) || n != want {
			t.Fatalf("%s: Size = %d, %v; want %d, %v", name, n, err, want, wantErr)
		}
	}
	f("whole", good, len(good), nil)
	f("prefix only", good[:LengthPrefix], len(good), nil)
	f("short prefix", good[:LengthPrefix-1], 0, ErrShort)
	f("too small", putUint32(bytes.Clone(good), offBatchLength, 48), 0, ErrBadLength)
	f("negative", putUint32(bytes.Clone(good), offBatchLength, 0xffffffff), 0, ErrBadLength)
	f("smallest", putUint32(bytes.Clone(good), offBatchLength, 49), HeaderSize, nil)
}

func TestValidate(t *testing.T) {
	good := sampleBatch(t)
	mut := func(fn func(b []byte)) []byte {
		b := bytes.Clone(good)
		fn(b)
		return b
	}
	cases := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"good", good, nil},
		{"rewritten base offset and epoch", mut(func(b []byte) { SetBaseOffset(b, 1<<40); SetPartitionLeaderEpoch(b, 9) }), nil},
		{"empty", nil, ErrShort},
		{"truncated header", good[:30], ErrShort},
		{"truncated records", good[:len(good)-1], ErrBadLength},
		{"trailing byte", append(bytes.Clone(good), 0), ErrBadLength},
		{"two batches", append(bytes.Clone(good), good...), ErrBadLength},
		{"bad length field", mut(func(b []byte) { putUint32(b, offBatchLength, 10) }), ErrBadLength},
		{"magic 1", mut(func(b []byte) { b[offMagic] = 1 }), ErrBadMagic},
		{"magic 3", mut(func(b []byte) { b[offMagic] = 3 }), ErrBadMagic},
		{"crc flipped", mut(func(b []byte) { b[offCRC] ^= 1 }), ErrCRC},
		{"record byte flipped", mut(func(b []byte) { b[len(b)-1] ^= 0x40 }), ErrCRC},
		{"attributes changed", mut(func(b []byte) { b[offAttributes+1] |= TransactionalBit }), ErrCRC},
		{"lastOffsetDelta too big", mut(func(b []byte) { putUint32(b, offLastOffsetDelta, 4); fixCRC(b) }), ErrCount},
		{"lastOffsetDelta too small", mut(func(b []byte) { putUint32(b, offLastOffsetDelta, 2); fixCRC(b) }), ErrCount},
		{"negative count", mut(func(b []byte) {
			putUint32(b, offLastOffsetDelta, 0xfffffffe)
			putUint32(b, offRecordCount, 0xffffffff)
			fixCRC(b)
		}), ErrCount},
		{"max count overflows int32", mut(func(b []byte) {
			putUint32(b, offLastOffsetDelta, 0x7fffffff)
			putUint32(b, offRecordCount, 0x80000000)
			fixCRC(b)
		}), ErrCount},
		{"empty batch (count 0)", rawBatch(0, nil), ErrCount},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := Validate(c.in)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, c.wantErr)
			}
			if err == nil && h.Size() != len(c.in) {
				t.Fatalf("size %d, len %d", h.Size(), len(c.in))
			}
		})
	}
}

func TestSetBaseOffsetAndEpoch(t *testing.T) {
	cases := []struct {
		offset int64
		epoch  int32
	}{
		{0, 0}, {1, -1}, {1 << 40, 7}, {-1, 1<<31 - 1}, {1<<63 - 1, -1 << 31},
	}
	for _, c := range cases {
		b := sampleBatch(t)
		before, _ := ParseHeader(b)
		SetBaseOffset(b, c.offset)
		SetPartitionLeaderEpoch(b, c.epoch)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("offset %d epoch %d: CRC must not cover them: %v", c.offset, c.epoch, err)
		}
		if h.BaseOffset != c.offset || BaseOffset(b) != c.offset || h.PartitionLeaderEpoch != c.epoch {
			t.Fatalf("got offset %d/%d epoch %d, want %d %d", h.BaseOffset, BaseOffset(b), h.PartitionLeaderEpoch, c.offset, c.epoch)
		}
		h.BaseOffset, h.PartitionLeaderEpoch = before.BaseOffset, before.PartitionLeaderEpoch
		if h != before {
			t.Fatalf("other fields changed:\n got %+v\nwant %+v", h, before)
		}
		recs, err := decodeAll(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Offset != c.offset+int64(i) {
				t.Fatalf("record %d offset %d, want %d", i, r.Offset, c.offset+int64(i))
			}
		}
	}
}

func TestSetLogAppendTime(t *testing.T) {
	for _, ts := range []int64{0, 1_800_000_000_000, -1} {
		b := sampleBatch(t)
		before, _ := ParseHeader(b)
		SetLogAppendTime(b, ts)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("ts %d: %v", ts, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != ts || h.BaseTimestamp != before.BaseTimestamp ||
			h.Attributes != before.Attributes|TimestampTypeBit {
			t.Fatalf("ts %d: header %+v", ts, h)
		}
		recs, err := decodeAll(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Timestamp != ts {
				t.Fatalf("record %d timestamp %d, want the log append time %d", i, r.Timestamp, ts)
			}
		}
		// Applying it twice is idempotent and keeps other attribute bits.
		SetLogAppendTime(b, ts)
		if h2, err := Validate(b); err != nil || h2 != h {
			t.Fatalf("second SetLogAppendTime: %+v %v", h2, err)
		}
	}
}

func TestSplit(t *testing.T) {
	a := sampleBatch(t)
	b := buildBatch(t, -1, -1, -1, []testRecord{{Value: []byte("single"), Timestamp: 5}})
	SetBaseOffset(b, 4)
	concat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	bad := putUint32(bytes.Clone(b), offBatchLength, 3)
	errStop := errors.New("stop")

	cases := []struct {
		name     string
		in       []byte
		stopAt   int // fn returns errStop on this call (1-based), 0 never
		wantN    int
		wantErr  error
		wantLens []int
	}{
		{"nothing", nil, 0, 0, nil, nil},
		{"one", a, 0, 1, nil, []int{len(a)}},
		{"two", concat(a, b), 0, 2, nil, []int{len(a), len(b)}},
		{"three", concat(b, a, b), 0, 3, nil, []int{len(b), len(a), len(b)}},
		{"partial second", concat(a, b[:len(b)-1]), 0, 1, ErrShort, []int{len(a)}},
		{"partial prefix", concat(a, b[:5]), 0, 1, ErrShort, []int{len(a)}},
		{"bad length", concat(a, bad), 0, 1, ErrBadLength, []int{len(a)}},
		{"callback error stops", concat(a, b, a), 2, 2, errStop, []int{len(a), len(b)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lens []int
			err := Split(c.in, func(batch []byte) error {
				lens = append(lens, len(batch))
				if cap(batch) != len(batch) {
					t.Fatalf("batch slice has spare capacity %d: appends would clobber the next batch", cap(batch)-len(batch))
				}
				if _, err := Validate(batch); err != nil {
					t.Fatalf("batch %d: %v", len(lens), err)
				}
				if len(lens) == c.stopAt {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, c.wantErr) || len(lens) != c.wantN {
				t.Fatalf("Split: %v after %d batches; want %v after %d", err, len(lens), c.wantErr, c.wantN)
			}
			for i := range c.wantLens {
				if lens[i] != c.wantLens[i] {
					t.Fatalf("batch %d: %d bytes, want %d", i, lens[i], c.wantLens[i])
				}
			}
		})
	}
}
