package proto

// Ping (key 9), version 1: a liveness check and round-trip probe.
//
// Request:
//
//	echo int64
//
// Response body:
//
//	echo int64 | nodeId int32
//
// echo is returned unchanged (a client puts a timestamp there to measure round trips).

// PingRequest is a decoded Ping request.
type PingRequest struct {
	Echo int64
}

// ReadFrom decodes the request body.
func (v *PingRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Echo = r.Int64()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *PingRequest) AppendTo(dst []byte) []byte { return AppendInt64(dst, v.Echo) }

// PingResponse is a decoded Ping response body.
type PingResponse struct {
	Echo   int64
	NodeID int32
}

// ReadFrom decodes the response body.
func (v *PingResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Echo = r.Int64()
	v.NodeID = r.Int32()
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *PingResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt64(dst, v.Echo)
	return AppendInt32(dst, v.NodeID)
}
