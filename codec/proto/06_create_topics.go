package proto

// CreateTopics (key 6), version 1.
//
// Request:
//
//	topics [ name string | numPartitions int32 | replicationFactor int16 | configs [ key string | value string ] ] |
//	timeoutMs int32 | validateOnly int8
//
// numPartitions -1 and replicationFactor -1 take the broker defaults.
//
// Response body:
//
//	topics [ name string | errorCode int16 | errorMessage string ]

// CreateTopicsRequest is a decoded CreateTopics request.
type CreateTopicsRequest struct {
	Topics       []CreateTopic
	TimeoutMs    int32
	ValidateOnly bool
}

// CreateTopic describes one topic to create.
type CreateTopic struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	Configs           []ConfigEntry
}

// ReadFrom decodes the request body.
func (v *CreateTopicsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4+2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.NumPartitions = r.Int32()
		t.ReplicationFactor = r.Int16()
		t.Configs = readConfigs(&r, t.Configs)
	}
	v.TimeoutMs = r.Int32()
	v.ValidateOnly = r.Bool()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *CreateTopicsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendInt32(dst, t.NumPartitions)
		dst = AppendInt16(dst, t.ReplicationFactor)
		dst = appendConfigs(dst, t.Configs)
	}
	dst = AppendInt32(dst, v.TimeoutMs)
	return AppendBool(dst, v.ValidateOnly)
}

// TopicErrorsResponse is the body of CreateTopics and DeleteTopics responses.
type TopicErrorsResponse struct {
	Topics []TopicError
}

// TopicError is one topic's outcome.
type TopicError struct {
	Name         string
	ErrorCode    int16
	ErrorMessage string
}

// ReadFrom decodes the response body.
func (v *TopicErrorsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+2+2), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.ErrorCode = r.Int16()
		t.ErrorMessage = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *TopicErrorsResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendInt16(dst, t.ErrorCode)
		dst = AppendNullableString(dst, t.ErrorMessage, t.ErrorMessage != "")
	}
	return dst
}
