package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file cross-checks the package against franz-go's kmsg, the Kafka codec our clients use.

// refVarint decodes a 32-bit zig-zag varint the way kmsg's internal kbin.Varint does: at most five
// bytes whose value fits in 32 bits. It is written independently of varint32 on purpose.
func refVarint(p []byte) (int32, int) {
	x, n := binary.Uvarint(p)
	if n <= 0 || n > 5 || x > math.MaxUint32 {
		return 0, 0
	}
	u := uint32(x)
	return int32(u>>1) ^ -int32(u&1), n
}

// kmsgBatch is what franz-go makes of a batch.
type kmsgBatch struct {
	batch   kmsg.RecordBatch
	records []kmsg.Record
	// canonical is true when every record re-encodes with kmsg to exactly the bytes it came from:
	// no redundant varint bytes, no negative lengths other than -1, no bytes left in a record.
	canonical bool
}

// kmsgDecode parses b with kmsg.RecordBatch and splits its records the way franz-go's consumer
// does (kgo readRawRecords: a varint length, then kmsg.Record.ReadFrom on exactly that span). On
// top of that it applies the batch-level rules Kafka enforces and franz-go does not: magic 2, no
// compression, and the records filling the section exactly. ok is false when any step fails.
func kmsgDecode(b []byte) (out kmsgBatch, ok bool) {
	if err := out.batch.ReadFrom(b); err != nil {
		return out, false
	}
	if out.batch.Magic != 2 || out.batch.Attributes&0x07 != 0 {
		return out, false
	}
	in := out.batch.Records
	out.canonical = true
	for i := int32(0); i < out.batch.NumRecords; i++ {
		length, used := refVarint(in)
		total := used + int(length)
		if used == 0 || length < 0 || len(in) < total {
			return out, false
		}
		var r kmsg.Record
		if err := r.ReadFrom(in[:total]); err != nil {
			return out, false
		}
		if !bytes.Equal(kmsgEncodeRecord(r), in[:total]) {
			out.canonical = false
		}
		out.records = append(out.records, r)
		in = in[total:]
	}
	if len(in) != 0 {
		return out, false
	}
	return out, true
}

// kmsgEncodeRecord encodes r with kmsg, computing its length prefix.
func kmsgEncodeRecord(r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero Length is one varint byte
	r.Length = int32(len(body))
	return r.AppendTo(nil)
}

// kmsgRecordsAsOurs converts kmsg records into what Records should return for the batch.
func kmsgRecordsAsOurs(kb kmsgBatch) []decodedRecord {
	out := make([]decodedRecord, 0, len(kb.records))
	for _, r := range kb.records {
		d := decodedRecord{
			Offset:    kb.batch.FirstOffset + int64(r.OffsetDelta),
			Timestamp: kb.batch.FirstTimestamp + r.TimestampDelta64,
			Key:       r.Key,
			Value:     r.Value,
		}
		if kb.batch.Attributes&TimestampTypeBit != 0 {
			d.Timestamp = kb.batch.MaxTimestamp
		}
		for _, h := range r.Headers {
			d.Headers = append(d.Headers, RecordHeader{Key: h.Key, Value: h.Value})
		}
		out = append(out, d)
	}
	return out
}

// headerFromKmsg converts a kmsg batch header into ours.
func headerFromKmsg(k *kmsg.RecordBatch) Header {
	return Header{
		BaseOffset: k.FirstOffset, BatchLength: k.Length, PartitionLeaderEpoch: k.PartitionLeaderEpoch,
		Magic: k.Magic, CRC: uint32(k.CRC), Attributes: k.Attributes, LastOffsetDelta: k.LastOffsetDelta,
		BaseTimestamp: k.FirstTimestamp, MaxTimestamp: k.MaxTimestamp, ProducerID: k.ProducerID,
		ProducerEpoch: k.ProducerEpoch, BaseSequence: k.FirstSequence, RecordCount: k.NumRecords,
	}
}

// kmsgValid reports whether b is a valid batch by Kafka's rules, judged on kmsg's parse and an
// independent CRC.
func kmsgValid(b []byte) bool {
	var k kmsg.RecordBatch
	if err := k.ReadFrom(b); err != nil {
		return false
	}
	return k.Length >= 49 && len(b) == 12+int(k.Length) && k.Magic == 2 && uint32(k.CRC) == refCRC(b) &&
		k.NumRecords >= 0 && k.LastOffsetDelta >= 0 && int64(k.LastOffsetDelta)+1 == int64(k.NumRecords)
}

// checkAgainstKmsg is the differential oracle shared by the tests and the fuzz targets.
func checkAgainstKmsg(t testing.TB, b []byte) {
	t.Helper()
	// Validate agrees with Kafka's rules as kmsg sees them.
	h, err := Validate(b)
	if valid := kmsgValid(b); valid != (err == nil) {
		t.Fatalf("Validate: %v, but by kmsg the batch is valid=%v", err, valid)
	}
	if err == nil {
		var k kmsg.RecordBatch
		_ = k.ReadFrom(b)
		if want := headerFromKmsg(&k); h != want {
			t.Fatalf("header\n ours %+v\n kmsg %+v", h, want)
		}
	}

	// Records agrees with franz-go's record split.
	ours, ourErr := decodeAll(b)
	kb, kOK := kmsgDecode(b)
	if ourErr == nil {
		if !kOK {
			t.Fatalf("Records accepted a batch that kmsg rejects: %v", ours)
		}
		if want := kmsgRecordsAsOurs(kb); !sameRecords(ours, want) {
			t.Fatalf("records differ\n ours %v\n kmsg %v", ours, want)
		}
	} else if kOK && kb.canonical && kb.batch.NumRecords >= 0 {
		t.Fatalf("Records: %v, but kmsg decodes the (canonically encoded) batch: %v", ourErr, kmsgRecordsAsOurs(kb))
	}
}

// TestBuilderParsesWithKmsg: every batch the Builder makes must read back identically with kmsg.
func TestBuilderParsesWithKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sets := [][]testRecord{sampleRecords, manyRecords(300)}
	for range 200 {
		sets = append(sets, randomRecords(rng))
	}
	for i, records := range sets {
		pid, epoch, seq := int64(-1), int16(-1), int32(-1)
		if i%2 == 1 {
			pid, epoch, seq = rng.Int64N(1<<40), int16(rng.IntN(math.MaxInt16)), rng.Int32()
		}
		b := buildBatch(t, pid, epoch, seq, records)
		var k kmsg.RecordBatch
		if err := k.ReadFrom(b); err != nil {
			t.Fatalf("set %d: kmsg: %v", i, err)
		}
		if k.Magic != 2 || k.NumRecords != int32(len(records)) || k.LastOffsetDelta != int32(len(records)-1) ||
			k.ProducerID != pid || k.ProducerEpoch != epoch || k.FirstSequence != seq ||
			k.FirstOffset != 0 || k.PartitionLeaderEpoch != -1 || k.Attributes != 0 ||
			k.FirstTimestamp != records[0].Timestamp || uint32(k.CRC) != refCRC(b) || int(k.Length) != len(b)-12 {
			t.Fatalf("set %d: kmsg header %+v", i, k)
		}
		kb, ok := kmsgDecode(b)
		if !ok || !kb.canonical {
			t.Fatalf("set %d: kmsg could not split the records (ok %v, canonical %v)", i, ok, kb.canonical)
		}
		for j, r := range kb.records {
			w := records[j]
			if r.OffsetDelta != int32(j) || k.FirstTimestamp+r.TimestampDelta64 != w.Timestamp || r.Attributes != 0 ||
				!sameBytes(r.Key, w.Key) || !sameBytes(r.Value, w.Value) || len(r.Headers) != len(w.Headers) {
				t.Fatalf("set %d record %d: kmsg %+v, wrote %+v", i, j, r, w)
			}
			for x, h := range r.Headers {
				if h.Key != w.Headers[x].Key || !sameBytes(h.Value, w.Headers[x].Value) {
					t.Fatalf("set %d record %d header %d: kmsg %q=%s, wrote %q=%s", i, j, x,
						h.Key, showBytes(h.Value), w.Headers[x].Key, showBytes(w.Headers[x].Value))
				}
			}
		}
		checkAgainstKmsg(t, b)
	}
}

// kmsgBuild encodes a batch with kmsg, CRC included, the way a franz-go producer would.
func kmsgBuild(k kmsg.RecordBatch, records []kmsg.Record) []byte {
	k.Records = nil
	for _, r := range records {
		k.Records = append(k.Records, kmsgEncodeRecord(r)...)
	}
	k.Magic = 2
	k.NumRecords = int32(len(records))
	k.LastOffsetDelta = int32(len(records) - 1)
	k.Length = int32(49 + len(k.Records))
	k.CRC = 0
	b := k.AppendTo(nil)
	return fixCRC(b)
}

// TestKmsgBatchesValidate: batches encoded by kmsg must validate and decode identically with ours.
func TestKmsgBatchesValidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		k := kmsg.RecordBatch{
			FirstOffset:          rng.Int64N(1 << 50),
			PartitionLeaderEpoch: rng.Int32N(100) - 1,
			FirstTimestamp:       1_700_000_000_000 + rng.Int64N(1<<20),
			ProducerID:           -1,
			ProducerEpoch:        -1,
			FirstSequence:        -1,
		}
		k.MaxTimestamp = k.FirstTimestamp + rng.Int64N(1000)
		if i%3 == 0 {
			k.ProducerID, k.ProducerEpoch, k.FirstSequence = rng.Int64N(1<<40), int16(rng.IntN(100)), rng.Int32N(1<<30)
		}
		if i%5 == 0 {
			k.Attributes |= TimestampTypeBit
		}
		if i%7 == 0 {
			k.Attributes |= TransactionalBit
		}
		var records []kmsg.Record
		for j, r := range randomRecords(rng) {
			kr := kmsg.Record{
				OffsetDelta:      int32(j),
				TimestampDelta64: r.Timestamp - 1_700_000_000_000,
				Key:              r.Key,
				Value:            r.Value,
			}
			for _, h := range r.Headers {
				kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
			}
			records = append(records, kr)
		}
		b := kmsgBuild(k, records)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("batch %d: Validate: %v", i, err)
		}
		if h.BaseOffset != k.FirstOffset || h.ProducerID != k.ProducerID || h.Attributes != k.Attributes ||
			h.RecordCount != int32(len(records)) || h.MaxTimestamp != k.MaxTimestamp {
			t.Fatalf("batch %d: header %+v, kmsg %+v", i, h, k)
		}
		checkAgainstKmsg(t, b)
	}
}

// TestKmsgRecordEdgeCases covers what the Builder never writes but franz-go (and Kafka) accept.
func TestKmsgRecordEdgeCases(t *testing.T) {
	base := kmsg.RecordBatch{FirstOffset: 100, FirstTimestamp: 5000, MaxTimestamp: 5000, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
	cases := []struct {
		name    string
		records []kmsg.Record
	}{
		{"gaps in offset deltas", []kmsg.Record{{OffsetDelta: 0}, {OffsetDelta: 5}, {OffsetDelta: 9}}},
		{"negative offset delta", []kmsg.Record{{OffsetDelta: -3}}},
		{"max offset delta", []kmsg.Record{{OffsetDelta: math.MaxInt32}}},
		{"record attributes set", []kmsg.Record{{Attributes: 0x7f, Value: []byte("v")}}},
		{"large timestamp delta", []kmsg.Record{{TimestampDelta64: math.MaxInt64 - 5000}, {TimestampDelta64: math.MinInt64 + 5000}}},
		{"many headers", []kmsg.Record{{Headers: []kmsg.Header{{Key: "a"}, {Key: "a", Value: []byte{}}, {Key: "", Value: []byte("x")}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkAgainstKmsg(t, kmsgBuild(base, c.records))
		})
	}
}

func randomBytes(rng *rand.Rand, maxLen int) []byte {
	switch rng.IntN(6) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(maxLen+1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randomRecords(rng *rand.Rand) []testRecord {
	n := 1 + rng.IntN(20)
	if rng.IntN(10) == 0 {
		n = 1 + rng.IntN(500)
	}
	out := make([]testRecord, n)
	ts := 1_700_000_000_000 + rng.Int64N(1<<20)
	for i := range out {
		out[i] = testRecord{Key: randomBytes(rng, 40), Value: randomBytes(rng, 300), Timestamp: ts + rng.Int64N(2000) - 1000}
		for range rng.IntN(4) {
			out[i].Headers = append(out[i].Headers, RecordHeader{Key: fmt.Sprintf("h%d", rng.IntN(100)), Value: randomBytes(rng, 20)})
		}
	}
	return out
}
