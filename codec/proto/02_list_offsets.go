package proto

// ListOffsets (key 2), version 1.
//
// Request:
//
//	topics [ name string | partitions [ partition int32 | timestamp int64 ] ]
//
// timestamp -2 asks for the log start offset (earliest), -1 for the high watermark (latest), any
// other value for the first offset whose timestamp is at or after it (found through the time index).
//
// Response body:
//
//	topics [ name string | partitions [ partition int32 | errorCode int16 | errorMessage string |
//	         timestamp int64 | offset int64 | leaderId int32 | leaderAddr string ] ]
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

// ListOffsetsResponse is a decoded ListOffsets response body.
type ListOffsetsResponse struct {
	Topics []ListOffsetsTopicResponse
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
}

// ReadFrom decodes the response body.
func (v *ListOffsetsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+2+2+8+8+4+2), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
			p.Timestamp = r.Int64()
			p.Offset = r.Int64()
			p.Leader.readFrom(&r)
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
		}
	}
	return dst
}
