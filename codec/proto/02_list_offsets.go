package proto

// ListOffsets (key 2), versions 1 and 2.
//
// Request, both versions:
//
//	topics [ name string | partitions [ partition int32 | timestamp int64 ] ]
//
// timestamp -2 asks for the log start offset (earliest), -1 for the high watermark (latest), any
// other value for the first offset whose timestamp is at or after it (found through the time index).
//
// Response body, version 1:
//
//	topics [ name string | partitions [ partition int32 | errorCode int16 | errorMessage string |
//	         timestamp int64 | offset int64 | leaderId int32 | leaderAddr string ] ]
//
// Response body, version 2: each partition adds, after version 1's fields, the leader's view of
// every replica of the partition, itself included:
//
//	... leaderAddr string | replicas [ node int32 | logEndOffset int64 | lastCaughtUpMs int64 ] ] ]
//
// The leader's own entry has its log end and lastCaughtUpMs = now; a follower it has not heard
// from since it became leader has logEndOffset -1 and lastCaughtUpMs -1. A partition answered
// with an error has no replicas.
//
// A timestamp after every record gives offset -1 and timestamp -1, as in Kafka.

// ListOffsetsRequest is a decoded ListOffsets request.
type ListOffsetsRequest struct {
	Topics []ListOffsetsTopic
}

// ListOffsetsTopic is one topic of a ListOffsetsRequest.
type ListOffsetsTopic struct {
	Name       string
	Partitions []ListOffsetsPartition
}

// ListOffsetsPartition asks for one partition's offset at a timestamp.
type ListOffsetsPartition struct {
	Partition int32
	Timestamp int64
}

// ReadFrom decodes the request body.
func (v *ListOffsetsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+8), 0))
		for j := range t.Partitions {
			t.Partitions[j].Partition = r.Int32()
			t.Partitions[j].Timestamp = r.Int64()
		}
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *ListOffsetsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt64(dst, p.Timestamp)
		}
	}
	return dst
}

// ListOffsetsResponse is a decoded ListOffsets response body. Version selects the layout: 2, or
// version 1 for any other value (the zero value included). Version 1 carries no replicas and
// decodes every partition's Replicas as empty.
type ListOffsetsResponse struct {
	Version int16
	Topics  []ListOffsetsTopicResponse
}

// ListOffsetsTopicResponse is one topic of a ListOffsetsResponse.
type ListOffsetsTopicResponse struct {
	Name       string
	Partitions []ListOffsetsPartitionResponse
}

// ListOffsetsPartitionResponse is one partition's answer.
type ListOffsetsPartitionResponse struct {
	Partition    int32
	ErrorCode    int16
	ErrorMessage string
	Timestamp    int64
	Offset       int64
	Leader       LeaderHint
	Replicas     []ListOffsetsReplica // version 2
}

// ListOffsetsReplica is one replica of a partition as its leader last saw it (version 2).
type ListOffsetsReplica struct {
	Node int32
	// LogEndOffset is the replica's log end: it has every offset below. -1: the leader has not
	// heard from it since it became leader.
	LogEndOffset int64
	// LastCaughtUpMs is when the replica last had everything the leader had (ms since the Unix
	// epoch; now for the leader itself), -1 when unknown.
	LastCaughtUpMs int64
}

// listOffsetsReplicaLen is the encoded size of a ListOffsetsReplica.
const listOffsetsReplicaLen = 4 + 8 + 8

// ReadFrom decodes the response body.
func (v *ListOffsetsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		minPartition := 4 + 2 + 2 + 8 + 8 + 4 + 2
		if v.Version >= 2 {
			minPartition += 4 // the replicas count
		}
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(minPartition), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
			p.Timestamp = r.Int64()
			p.Offset = r.Int64()
			p.Leader.readFrom(&r)
			p.Replicas = p.Replicas[:0]
			if v.Version >= 2 {
				p.Replicas = growSlice(p.Replicas, max(r.ArrayLen(listOffsetsReplicaLen), 0))
				for k := range p.Replicas {
					rp := &p.Replicas[k]
					rp.Node = r.Int32()
					rp.LogEndOffset = r.Int64()
					rp.LastCaughtUpMs = r.Int64()
				}
			}
		}
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *ListOffsetsResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt16(dst, p.ErrorCode)
			dst = AppendNullableString(dst, p.ErrorMessage, p.ErrorMessage != "")
			dst = AppendInt64(dst, p.Timestamp)
			dst = AppendInt64(dst, p.Offset)
			dst = p.Leader.appendTo(dst)
			if v.Version >= 2 {
				dst = AppendArrayLen(dst, len(p.Replicas))
				for _, rp := range p.Replicas {
					dst = AppendInt32(dst, rp.Node)
					dst = AppendInt64(dst, rp.LogEndOffset)
					dst = AppendInt64(dst, rp.LastCaughtUpMs)
				}
			}
		}
	}
	return dst
}
