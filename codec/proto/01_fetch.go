package proto

// Fetch (key 1), version 1.
//
// Request:
//
//	maxWaitMs int32 | minBytes int32 | maxBytes int32 |
//	topics [ name string | partitions [ partition int32 | fetchOffset int64 | partitionMaxBytes int32 ] ]
//
// The broker answers once minBytes are available across the request or maxWaitMs has passed
// (long poll). Every partition in the request is answered. The first batch of the response is
// returned whole even when it is larger than maxBytes or partitionMaxBytes, so a consumer always
// progresses.
//
// Response body:
//
//	throttleTimeMs int32 |
//	topics [ name string | partitions [ partition int32 | errorCode int16 | errorMessage string |
//	         highWatermark int64 | logStartOffset int64 | leaderId int32 | leaderAddr string |
//	         records bytes ] ]
//
// records comes last in each partition so the broker can send stored batches with writev: the
// response is a chain of small encoded pieces and the stored batch bytes between them.

// FetchRequest is a decoded Fetch request. Name aliases the frame.
type FetchRequest struct {
	MaxWaitMs int32
	MinBytes  int32
	MaxBytes  int32
	Topics    []FetchTopic
}

// FetchTopic is one topic of a FetchRequest.
type FetchTopic struct {
	Name       []byte
	Partitions []FetchPartition
}

// FetchPartition asks for one partition from an offset.
type FetchPartition struct {
	Partition         int32
	FetchOffset       int64
	PartitionMaxBytes int32
}

// ReadFrom decodes a Fetch request body, reusing v's slices.
func (v *FetchRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.MaxWaitMs = r.Int32()
	v.MinBytes = r.Int32()
	v.MaxBytes = r.Int32()
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.StringBytes()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+8+4), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.FetchOffset = r.Int64()
			p.PartitionMaxBytes = r.Int32()
		}
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *FetchRequest) AppendTo(dst []byte) []byte {
	dst = AppendInt32(dst, v.MaxWaitMs)
	dst = AppendInt32(dst, v.MinBytes)
	dst = AppendInt32(dst, v.MaxBytes)
	dst = AppendArrayLen(dst, len(v.Topics))
	for i := range v.Topics {
		t := &v.Topics[i]
		dst = AppendStringBytes(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt64(dst, p.FetchOffset)
			dst = AppendInt32(dst, p.PartitionMaxBytes)
		}
	}
	return dst
}

// FetchResponse is a decoded Fetch response body. Records alias the frame.
type FetchResponse struct {
	ThrottleTimeMs int32
	Topics         []FetchTopicResponse
}

// FetchTopicResponse is one topic of a FetchResponse.
type FetchTopicResponse struct {
	Name       string
	Partitions []FetchPartitionResponse
}

// FetchPartitionResponse is one partition's data.
type FetchPartitionResponse struct {
	Partition      int32
	ErrorCode      int16
	ErrorMessage   string
	HighWatermark  int64
	LogStartOffset int64
	Leader         LeaderHint
	Records        []byte
}

// AppendFetchResponseStart encodes the part of a response body before the first topic.
func AppendFetchResponseStart(dst []byte, throttleTimeMs int32, topicCount int) []byte {
	dst = AppendInt32(dst, throttleTimeMs)
	return AppendArrayLen(dst, topicCount)
}

// AppendFetchTopicStart encodes a topic's name and partition count.
func AppendFetchTopicStart(dst []byte, name []byte, partitionCount int) []byte {
	dst = AppendStringBytes(dst, name)
	return AppendArrayLen(dst, partitionCount)
}

// AppendFetchPartitionHead encodes one partition up to and including the records length; the
// caller sends recordsLen bytes of records after it (nil records when recordsLen is -1).
func AppendFetchPartitionHead(dst []byte, p *FetchPartitionResponse, recordsLen int) []byte {
	dst = AppendInt32(dst, p.Partition)
	dst = AppendInt16(dst, p.ErrorCode)
	dst = AppendNullableString(dst, p.ErrorMessage, p.ErrorMessage != "")
	dst = AppendInt64(dst, p.HighWatermark)
	dst = AppendInt64(dst, p.LogStartOffset)
	dst = p.Leader.appendTo(dst)
	return AppendInt32(dst, int32(recordsLen))
}

// AppendTo encodes the whole response body, copying records (tests and small responses).
func (v *FetchResponse) AppendTo(dst []byte) []byte {
	dst = AppendFetchResponseStart(dst, v.ThrottleTimeMs, len(v.Topics))
	for i := range v.Topics {
		t := &v.Topics[i]
		dst = AppendFetchTopicStart(dst, []byte(t.Name), len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n := len(p.Records)
			if p.Records == nil {
				n = -1
			}
			dst = AppendFetchPartitionHead(dst, p, n)
			dst = append(dst, p.Records...)
		}
	}
	return dst
}

// ReadFrom decodes a Fetch response body.
func (v *FetchResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ThrottleTimeMs = r.Int32()
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+2+2+8+8+4+2+4), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
			p.HighWatermark = r.Int64()
			p.LogStartOffset = r.Int64()
			p.Leader.readFrom(&r)
			p.Records = r.Bytes()
		}
	}
	return r.Complete()
}
