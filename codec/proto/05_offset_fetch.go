package proto

// OffsetFetch (key 5), version 1.
//
// Request:
//
//	groupId string | topics [ name string | partitions [ int32 ] ]
//
// A null topics array asks for every offset the group has committed.
//
// Response body:
//
//	topics [ name string | partitions [ partition int32 | offset int64 | metadata string |
//	         errorCode int16 | errorMessage string ] ]
//
// A partition with no committed offset answers offset -1 and no error.

// OffsetFetchRequest is a decoded OffsetFetch request.
type OffsetFetchRequest struct {
	Group  string
	Topics []OffsetFetchTopic // nil: everything the group committed
}

// OffsetFetchTopic names partitions of one topic.
type OffsetFetchTopic struct {
	Name       string
	Partitions []int32
}

// ReadFrom decodes the request body.
func (v *OffsetFetchRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	n := r.ArrayLen(2 + 4)
	if n < 0 {
		v.Topics = nil
	} else {
		v.Topics = growSlice(v.Topics, n)
		if v.Topics == nil {
			// An empty array asks for no offsets and must not read back as nil (everything).
			v.Topics = []OffsetFetchTopic{}
		}
		for i := range v.Topics {
			v.Topics[i].Name = r.String()
			v.Topics[i].Partitions = readInt32s(&r, v.Topics[i].Partitions)
		}
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *OffsetFetchRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	if v.Topics == nil {
		return AppendArrayLen(dst, -1)
	}
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = appendInt32s(dst, t.Partitions)
	}
	return dst
}

// OffsetFetchResponse is a decoded OffsetFetch response body.
type OffsetFetchResponse struct {
	Topics []OffsetFetchTopicResponse
}

// OffsetFetchTopicResponse is one topic of an OffsetFetchResponse.
type OffsetFetchTopicResponse struct {
	Name       string
	Partitions []OffsetFetchPartitionResponse
}

// OffsetFetchPartitionResponse is one partition's committed offset.
type OffsetFetchPartitionResponse struct {
	Partition    int32
	Offset       int64
	Metadata     string
	ErrorCode    int16
	ErrorMessage string
}

// ReadFrom decodes the response body.
func (v *OffsetFetchResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+8+2+2+2), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.Offset = r.Int64()
			p.Metadata = r.String()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
		}
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *OffsetFetchResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt64(dst, p.Offset)
			dst = AppendString(dst, p.Metadata)
			dst = AppendInt16(dst, p.ErrorCode)
			dst = AppendNullableString(dst, p.ErrorMessage, p.ErrorMessage != "")
		}
	}
	return dst
}
