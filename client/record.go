package client

import (
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/proto"
)

// Record is one record to produce or one record consumed.
//
// For Produce, Topic is required; Partition < 0 lets the producer choose (by key, else sticky)
// and a zero Timestamp means the time the record's batch was opened, at most the producer's
// Linger before the Produce call. On success the producer fills in Partition and Offset (-1 with
// acks=0). The producer keeps a reference to the Record (and its Key, Value and Headers) until the
// record's callback has run: do not modify them before.
//
// Records returned by Consumer.Poll alias the Fetch response they were decoded from: they stay
// valid for as long as they are referenced.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []batch.RecordHeader
	Timestamp time.Time
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// TopicInfo describes a topic, from Metadata.
type TopicInfo struct {
	Name       string
	Internal   bool
	Partitions []PartitionInfo // indexed by partition id
	Configs    map[string]string
}

// PartitionInfo describes one partition: its leader, replicas and in-sync replicas (node ids).
type PartitionInfo struct {
	Partition   int32
	Leader      int32 // -1: no leader
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	ErrorCode   int16 // a partition-level error from Metadata (LEADER_NOT_AVAILABLE…), 0 if none
}

// topicInfoFrom copies a decoded Metadata topic, ordering partitions by id.
func topicInfoFrom(t *proto.MetadataTopic) TopicInfo {
	info := TopicInfo{Name: t.Name, Internal: t.Internal, Configs: make(map[string]string, len(t.Configs))}
	n := 0
	for _, p := range t.Partitions {
		n = max(n, int(p.Partition)+1)
	}
	info.Partitions = make([]PartitionInfo, n)
	for i := range info.Partitions {
		info.Partitions[i] = PartitionInfo{Partition: int32(i), Leader: -1}
	}
	for _, p := range t.Partitions {
		if p.Partition < 0 {
			continue
		}
		info.Partitions[p.Partition] = PartitionInfo{
			Partition:   p.Partition,
			Leader:      p.Leader,
			LeaderEpoch: p.LeaderEpoch,
			Replicas:    append([]int32(nil), p.Replicas...),
			ISR:         append([]int32(nil), p.ISR...),
			ErrorCode:   p.ErrorCode,
		}
	}
	for _, c := range t.Configs {
		info.Configs[c.Key] = c.Value
	}
	return info
}

// clone returns a deep copy, so callers can keep it while leader hints patch the cache.
func (t TopicInfo) clone() TopicInfo {
	out := t
	out.Partitions = append([]PartitionInfo(nil), t.Partitions...)
	out.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		out.Configs[k] = v
	}
	return out
}
