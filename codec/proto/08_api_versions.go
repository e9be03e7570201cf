package proto

// ApiVersions (key 8), version 1. A client may send it with any version: the broker always
// answers in version 1's format, so a client can learn what the broker speaks before anything
// else.
//
// Request: empty.
//
// Response body:
//
//	apis [ apiKey int16 | minVersion int16 | maxVersion int16 ] | nodeId int32 | software string

// APIVersionsRequest is an ApiVersions request (no fields).
type APIVersionsRequest struct{}

// ReadFrom decodes the request body.
func (v *APIVersionsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *APIVersionsRequest) AppendTo(dst []byte) []byte { return dst }

// APIVersionsResponse is a decoded ApiVersions response body.
type APIVersionsResponse struct {
	APIs     []APIRange
	NodeID   int32
	Software string
}

// ReadFrom decodes the response body.
func (v *APIVersionsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.APIs = growSlice(v.APIs, max(r.ArrayLen(6), 0))
	for i := range v.APIs {
		v.APIs[i] = APIRange{Key: r.Int16(), MinVersion: r.Int16(), MaxVersion: r.Int16()}
	}
	v.NodeID = r.Int32()
	v.Software = r.String()
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *APIVersionsResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.APIs))
	for _, a := range v.APIs {
		dst = AppendInt16(dst, a.Key)
		dst = AppendInt16(dst, a.MinVersion)
		dst = AppendInt16(dst, a.MaxVersion)
	}
	dst = AppendInt32(dst, v.NodeID)
	return AppendString(dst, v.Software)
}
