package proto

// CreatePartitions (key 12), version 1: grow topics to a larger partition count.
//
// Request:
//
//	topics [ name string | count int32 ] | timeoutMs int32 | validateOnly int8
//
// count is the partition count the topic is to have, not the number to add; a count that is not
// larger than the topic's gives INVALID_PARTITIONS (partitions are never removed).
//
// Response body: the same as CreateTopics (TopicErrorsResponse):
//
//	topics [ name string | errorCode int16 | errorMessage string ]

// CreatePartitionsRequest is a decoded CreatePartitions request.
type CreatePartitionsRequest struct {
	Topics       []CreatePartitionsTopic
	TimeoutMs    int32
	ValidateOnly bool
}

// CreatePartitionsTopic is one topic and the partition count it is to have.
type CreatePartitionsTopic struct {
	Name  string
	Count int32
}

// ReadFrom decodes the request body.
func (v *CreatePartitionsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		v.Topics[i].Name = r.String()
		v.Topics[i].Count = r.Int32()
	}
	v.TimeoutMs = r.Int32()
	v.ValidateOnly = r.Bool()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *CreatePartitionsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendInt32(dst, t.Count)
	}
	dst = AppendInt32(dst, v.TimeoutMs)
	return AppendBool(dst, v.ValidateOnly)
}
