package groups

import "encoding/binary"

// Thorstream's first offsets log, before the coordinator: its committed-offsets table wrote the
// key Kafka's offset commits use (version 1) with a value of its own under version 1 (offset,
// metadata, commit time; no expire timestamp). These are its encoders, kept so that the tests
// can write such logs and check that they migrate.
//
//	key:   version int16 (1) | group string | topic string | partition int32
//	value: version int16 (1) | offset int64 | metadata string | commitTime int64

func legacyAppendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// encodeKey is the earlier table's record key.
func encodeKey(group, topic string, partition int32) []byte {
	k := make([]byte, 0, 2+2+len(group)+2+len(topic)+4)
	k = binary.BigEndian.AppendUint16(k, 1)
	k = legacyAppendString(k, group)
	k = legacyAppendString(k, topic)
	return binary.BigEndian.AppendUint32(k, uint32(partition))
}

// encodeValue is the earlier table's record value.
func encodeValue(offset int64, metadata string, nowMs int64) []byte {
	v := make([]byte, 0, 2+8+2+len(metadata)+8)
	v = binary.BigEndian.AppendUint16(v, 1)
	v = binary.BigEndian.AppendUint64(v, uint64(offset))
	v = legacyAppendString(v, metadata)
	return binary.BigEndian.AppendUint64(v, uint64(nowMs))
}
