package proto

// DeleteTopics (key 7), version 1.
//
// Request:
//
//	names [ string ] | timeoutMs int32
//
// Response body: the same as CreateTopics (TopicErrorsResponse):
//
//	topics [ name string | errorCode int16 | errorMessage string ]

// DeleteTopicsRequest is a decoded DeleteTopics request.
type DeleteTopicsRequest struct {
	Names     []string
	TimeoutMs int32
}

// ReadFrom decodes the request body.
func (v *DeleteTopicsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Names = growSlice(v.Names, max(r.ArrayLen(2), 0))
	for i := range v.Names {
		v.Names[i] = r.String()
	}
	v.TimeoutMs = r.Int32()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *DeleteTopicsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Names))
	for _, n := range v.Names {
		dst = AppendString(dst, n)
	}
	return AppendInt32(dst, v.TimeoutMs)
}
