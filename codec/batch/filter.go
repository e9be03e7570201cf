package batch

import "encoding/binary"

// AppendFiltered appends to dst an uncompressed batch holding some of the records of the batch
// whose header is orig (its first HeaderSize bytes): records is their encoded bytes, unchanged
// from the original (offset and timestamp deltas stay relative to its base offset and base
// timestamp), count how many there are. Every header field of orig is kept — base offset,
// lastOffsetDelta, base timestamp, producer id, epoch and base sequence, partition leader epoch —
// so the batch covers the same offsets and its producer's sequence range survives; the codec bits
// are cleared, maxTimestamp is set, and batchLength, recordCount and the CRC are recomputed. This
// is what the log cleaner writes when it removes records from a batch (and, with no records, the
// empty batch it keeps for an idempotent producer's last batch).
func AppendFiltered(dst, orig, records []byte, count int32, maxTimestamp int64) []byte {
	start := len(dst)
	dst = append(dst, orig[:HeaderSize]...)
	dst = append(dst, records...)
	b := dst[start:]
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-LengthPrefix))
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) &^ uint16(CodecMask)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTimestamp))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(count))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
	return dst
}
