package compress

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/batch"
)

func testBatch(t testing.TB, n int) []byte {
	var b batch.Builder
	b.ResetProducer(77, 2, 10)
	for i := range n {
		key := []byte(fmt.Sprintf("key-%d", i))
		if i%5 == 0 {
			key = nil
		}
		b.Append(key, bytes.Repeat([]byte{byte('a' + i%26)}, 100), int64(1_700_000_000_000+i),
			[]batch.RecordHeader{{Key: "i", Value: []byte{byte(i)}}})
	}
	return bytes.Clone(b.Finish())
}

type plainRecord struct {
	offset, ts int64
	key, value []byte
}

func collect(t testing.TB, h *batch.Header, records []byte) []plainRecord {
	var out []plainRecord
	err := batch.DecodeRecords(h, records, func(r *batch.Record) error {
		out = append(out, plainRecord{r.Offset, r.Timestamp, bytes.Clone(r.Key), bytes.Clone(r.Value)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompressBatchRoundTrip(t *testing.T) {
	plain := testBatch(t, 50)
	ph, _ := batch.Validate(plain)
	_, plainRecs, err := DecompressBatch(plain, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := collect(t, &ph, plainRecs)
	kgoDec := kgo.DefaultDecompressor()
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			comp, err := CompressBatch([]byte("prefix"), plain, c.id)
			if err != nil {
				t.Fatal(err)
			}
			comp = comp[len("prefix"):]
			h, err := batch.Validate(comp)
			if err != nil {
				t.Fatalf("compressed batch does not validate: %v", err)
			}
			if h.Codec() != c.id || h.Attributes&^batch.CodecMask != ph.Attributes || h.RecordCount != ph.RecordCount ||
				h.ProducerID != ph.ProducerID || h.BaseSequence != ph.BaseSequence || h.MaxTimestamp != ph.MaxTimestamp {
				t.Fatalf("header %+v from %+v", h, ph)
			}
			if len(comp) >= len(plain) {
				t.Fatalf("%s did not shrink %d bytes (got %d)", c.name, len(plain), len(comp))
			}
			if err := batch.Records(comp, func(*batch.Record) error { return nil }); !errors.Is(err, batch.ErrCompression) {
				t.Fatalf("batch.Records on a compressed batch: %v", err)
			}
			h2, records, err := DecompressBatch(comp, make([]byte, 0, 10), 1<<20)
			if err != nil || h2 != h {
				t.Fatalf("DecompressBatch: %v", err)
			}
			if !bytes.Equal(records, plain[batch.HeaderSize:]) {
				t.Fatal("records section differs from the original")
			}
			if got := collect(t, &h2, records); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("records differ")
			}
			// franz-go reads our compressed batch.
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(comp); err != nil {
				t.Fatal(err)
			}
			raw, err := kgoDec.Decompress(kb.Records, kgo.CompressionCodecType(c.id))
			if err != nil || !bytes.Equal(raw, plain[batch.HeaderSize:]) {
				t.Fatalf("franz-go decompression: %v", err)
			}
			// maxSize applies to the records section.
			if _, _, err := DecompressBatch(comp, nil, len(records)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("limit one byte short: %v", err)
			}
		})
	}
}

// TestDecompressFranzGoBatch: a batch compressed by franz-go's producer-side compressor.
func TestDecompressFranzGoBatch(t *testing.T) {
	plain := testBatch(t, 20)
	for _, c := range codecs {
		comp, _ := kgo.DefaultCompressor(c.kgo)
		var buf bytes.Buffer
		blob, _ := comp.Compress(&buf, plain[batch.HeaderSize:])
		kb := kmsg.RecordBatch{}
		if err := kb.ReadFrom(plain); err != nil {
			t.Fatal(err)
		}
		kb.Attributes |= int16(c.id)
		kb.Records = blob
		kb.Length = int32(49 + len(blob))
		b := kb.AppendTo(nil)
		h, records, err := DecompressBatch(b, nil, 1<<20)
		if err != nil || h.Codec() != c.id || !bytes.Equal(records, plain[batch.HeaderSize:]) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

func TestBatchHelpersErrors(t *testing.T) {
	plain := testBatch(t, 3)
	comp, _ := CompressBatch(nil, plain, batch.CodecGzip)
	badMagic := bytes.Clone(plain)
	badMagic[16] = 1
	badCodec := bytes.Clone(plain)
	badCodec[22] |= 6
	cases := []struct {
		name string
		fn   func() error
		want error
	}{
		{"decompress short", func() error { _, _, err := DecompressBatch(plain[:70], nil, 1<<20); return err }, batch.ErrShort},
		{"decompress no header", func() error { _, _, err := DecompressBatch(plain[:20], nil, 1<<20); return err }, batch.ErrShort},
		{"decompress magic", func() error { _, _, err := DecompressBatch(badMagic, nil, 1<<20); return err }, batch.ErrBadMagic},
		{"decompress codec 6", func() error { _, _, err := DecompressBatch(badCodec, nil, 1<<20); return err }, ErrUnknownCodec},
		{"decompress plain over limit", func() error { _, _, err := DecompressBatch(plain, nil, 10); return err }, ErrTooLarge},
		{"compress twice", func() error { _, err := CompressBatch(nil, comp, batch.CodecGzip); return err }, batch.ErrCompression},
		{"compress truncated", func() error { _, err := CompressBatch(nil, badMagic[:len(badMagic)-1], batch.CodecGzip); return err }, batch.ErrBadLength},
		{"compress codec 5", func() error { _, err := CompressBatch(nil, plain, 5); return err }, ErrUnknownCodec},
		{"compress codec 9", func() error { _, err := CompressBatch(nil, plain, 9); return err }, ErrUnknownCodec},
	}
	for _, c := range cases {
		if err := c.fn(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	same, err := CompressBatch([]byte("x"), plain, batch.CodecNone)
	if err != nil || !bytes.Equal(same[1:], plain) {
		t.Fatalf("CodecNone: %v", err)
	}
	_, records, err := DecompressBatch(plain, nil, 1<<20)
	if err != nil || &records[0] != &plain[batch.HeaderSize] {
		t.Fatalf("uncompressed records must alias the batch: %v", err)
	}
}
