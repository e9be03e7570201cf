package proto

// Produce (key 0), version 1.
//
// Request:
//
//	acks int16 | timeoutMs int32 | topics [ name string | partitions [ partition int32 | records bytes ] ]
//
// records holds one or more RecordBatch v2 back to back. acks is 0 (no response at all), 1 (leader)
// or -1 (all in-sync replicas).
//
// Response body:
//
//	topics [ name string | partitions [ partition int32 | errorCode int16 | errorMessage string |
//	         baseOffset int64 | logAppendTime int64 | logStartOffset int64 |
//	         leaderId int32 | leaderAddr string ] ] | throttleTimeMs int32
//
// leaderId and leaderAddr name the partition's current leader (-1 and "" when unknown); with
// NOT_LEADER_OR_FOLLOWER a client re-sends there.

// ProduceRequest is a decoded Produce request. Name and Records alias the frame.
type ProduceRequest struct {
	Acks      int16
	TimeoutMs int32
	Topics    []ProduceTopic
}

// ProduceTopic is one topic of a ProduceRequest.
type ProduceTopic struct {
	Name       []byte
	Partitions []ProducePartition
}

// ProducePartition is one partition's records.
type ProducePartition struct {
	Partition int32
	Records   []byte
}

// ReadFrom decodes a Produce request body, reusing v's slices.
func (v *ProduceRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Acks = r.Int16()
	v.TimeoutMs = r.Int32()
	n := r.ArrayLen(2 + 4)
	v.Topics = growSlice(v.Topics, max(n, 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.StringBytes()
		pn := r.ArrayLen(4 + 4)
		t.Partitions = growSlice(t.Partitions, max(pn, 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.Records = r.Bytes()
		}
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *ProduceRequest) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.Acks)
	dst = AppendInt32(dst, v.TimeoutMs)
	dst = AppendArrayLen(dst, len(v.Topics))
	for i := range v.Topics {
		t := &v.Topics[i]
		dst = AppendStringBytes(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = AppendInt32(dst, p.Partition)
			dst = AppendBytes(dst, p.Records)
		}
	}
	return dst
}

// ProduceResponse is a decoded Produce response body.
type ProduceResponse struct {
	Topics         []ProduceTopicResponse
	ThrottleTimeMs int32
}

// ProduceTopicResponse is one topic of a ProduceResponse.
type ProduceTopicResponse struct {
	Name       string
	Partitions []ProducePartitionResponse
}

// ProducePartitionResponse is one partition's outcome.
type ProducePartitionResponse struct {
	Partition      int32
	ErrorCode      int16
	ErrorMessage   string
	BaseOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
	Leader         LeaderHint
}

// LeaderHint names a partition's leader so a client can re-route after NOT_LEADER_OR_FOLLOWER.
type LeaderHint struct {
	ID   int32
	Addr string
}

// NoLeader is the hint when the leader is unknown.
var NoLeader = LeaderHint{ID: -1}

func (h LeaderHint) appendTo(dst []byte) []byte {
	dst = AppendInt32(dst, h.ID)
	return AppendString(dst, h.Addr)
}

func (h *LeaderHint) readFrom(r *Reader) {
	h.ID = r.Int32()
	h.Addr = r.String()
}

// ReadFrom decodes a Produce response body.
func (v *ProduceResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+2+2+8+8+8+4+2), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
			p.BaseOffset = r.Int64()
			p.LogAppendTime = r.Int64()
			p.LogStartOffset = r.Int64()
			p.Leader.readFrom(&r)
		}
	}
	v.ThrottleTimeMs = r.Int32()
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *ProduceResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for i := range v.Topics {
		t := &v.Topics[i]
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt16(dst, p.ErrorCode)
			dst = AppendNullableString(dst, p.ErrorMessage, p.ErrorMessage != "")
			dst = AppendInt64(dst, p.BaseOffset)
			dst = AppendInt64(dst, p.LogAppendTime)
			dst = AppendInt64(dst, p.LogStartOffset)
			dst = p.Leader.appendTo(dst)
		}
	}
	return AppendInt32(dst, v.ThrottleTimeMs)
}
