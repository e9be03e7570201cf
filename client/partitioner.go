package client

import "github.com/thorstream/thorstream/codec/murmur2"

// keyPartition is the partition Kafka's default partitioner picks for a non-null key:
// toPositive(murmur2(key)) % numPartitions.
func keyPartition(key []byte, numPartitions int32) int32 {
	return murmur2.Partition(key, numPartitions)
}
