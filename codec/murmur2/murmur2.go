// Package murmur2 is Kafka's default partitioner hash: the 32-bit MurmurHash2 of Apache Kafka's
// Utils.murmur2 (seed 0x9747b28c), and the partition choice of its DefaultPartitioner /
// BuiltInPartitioner for keyed records. Producers in every client (franz-go's StickyKeyPartitioner,
// librdkafka's murmur2_random, the Java producer) pick partitions this way, so the broker must too
// wherever it places keyed records itself.
package murmur2

import "encoding/binary"

const (
	seed       uint32 = 0x9747b28c
	multiplier uint32 = 0x5bd1e995
	shift             = 24
)

// Hash returns Kafka's murmur2 hash of key. The result is the Java int: the same 32 bits, signed.
// A nil key hashes as an empty one (Kafka never hashes null keys; it spreads them instead).
func Hash(key []byte) int32 {
	h := seed ^ uint32(len(key))
	// Whole 4-byte words, little endian as Kafka reads them.
	for ; len(key) >= 4; key = key[4:] {
		k := binary.LittleEndian.Uint32(key)
		k *= multiplier
		k ^= k >> shift
		k *= multiplier
		h = h*multiplier ^ k
	}
	// The 1 to 3 bytes left over.
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= multiplier
	}
	// Final avalanche.
	h ^= h >> 13
	h *= multiplier
	h ^= h >> 15
	return int32(h)
}

// Partition is the partition Kafka's default partitioner gives a keyed record:
// toPositive(murmur2(key)) % numPartitions, where toPositive clears the sign bit. It returns -1
// when numPartitions is not positive.
func Partition(key []byte, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return -1
	}
	return (Hash(key) & 0x7fffffff) % numPartitions
}
