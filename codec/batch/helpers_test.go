package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
)

// testRecord is one record as a test wants it written: nil Key or Value means null.
type testRecord struct {
	Key       []byte
	Value     []byte
	Timestamp int64
	Headers   []RecordHeader
}

// buildBatch writes records with a fresh Builder and returns a copy of the finished batch.
func buildBatch(t testing.TB, producerID int64, epoch int16, baseSequence int32, records []testRecord) []byte {
	t.Helper()
	var b Builder
	b.ResetProducer(producerID, epoch, baseSequence)
	for _, r := range records {
		b.Append(r.Key, r.Value, r.Timestamp, r.Headers)
	}
	return bytes.Clone(b.Finish())
}

// decodedRecord is a deep copy of a Record, safe to keep after the callback returns.
type decodedRecord struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

func (r decodedRecord) String() string {
	return fmt.Sprintf("{off %d ts %d key %s value %s headers %s}", r.Offset, r.Timestamp,
		showBytes(r.Key), showBytes(r.Value), showHeaders(r.Headers))
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", b)
}

func showHeaders(hs []RecordHeader) string {
	s := "["
	for i, h := range hs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%q=%s", h.Key, showBytes(h.Value))
	}
	return s + "]"
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// decodeAll collects the records of an uncompressed batch with Records.
func decodeAll(b []byte) ([]decodedRecord, error) {
	var out []decodedRecord
	err := Records(b, func(r *Record) error {
		d := decodedRecord{Offset: r.Offset, Timestamp: r.Timestamp, Key: cloneBytes(r.Key), Value: cloneBytes(r.Value)}
		for _, h := range r.Headers {
			d.Headers = append(d.Headers, RecordHeader{Key: h.Key, Value: cloneBytes(h.Value)})
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// sameBytes compares two byte strings including their null-ness.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func sameHeaders(a, b []RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func sameRecords(a, b []decodedRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Offset != b[i].Offset || a[i].Timestamp != b[i].Timestamp ||
			!sameBytes(a[i].Key, b[i].Key) || !sameBytes(a[i].Value, b[i].Value) ||
			!sameHeaders(a[i].Headers, b[i].Headers) {
			return false
		}
	}
	return true
}

// refCRC computes the batch CRC independently of Checksum.
func refCRC(b []byte) uint32 {
	return crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
}

// fixCRC rewrites the CRC field so that b passes the CRC check.
func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], refCRC(b))
	return b
}

// putUint32 patches a header field in tests that build broken batches.
func putUint32(b []byte, off int, v uint32) []byte {
	binary.BigEndian.PutUint32(b[off:], v)
	return b
}

// appendRawRecord appends one record whose body is given raw, prefixed with its varint length.
func appendRawRecord(dst, body []byte) []byte {
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// rawBatch wraps a records section in a header claiming count records, with a correct CRC.
func rawBatch(count int32, records []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(records))
	b = append(b, records...)
	binary.BigEndian.PutUint64(b[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-LengthPrefix))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = Magic
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(count-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], 1000)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], 1000)
	binary.BigEndian.PutUint64(b[offProducerID:], 0xffffffffffffffff)
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(count))
	return fixCRC(b)
}

// recordBody builds a raw record body: attributes, then the varints and byte strings as given.
// Each part is an int64 (written as a varint) or a []byte (written as is).
func recordBody(parts ...any) []byte {
	b := []byte{0}
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = binary.AppendVarint(b, int64(v))
		case int64:
			b = binary.AppendVarint(b, v)
		case []byte:
			b = append(b, v...)
		case string:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("recordBody: %T", p))
		}
	}
	return b
}
