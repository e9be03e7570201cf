package proto

// Peer (key 20), version 1: one message from one Thorstream node of a cluster to another
// (consensus messages, heartbeats). It is fire-and-forget: the receiving broker never answers
// it, and a Peer request takes no place in the connection's response order.
//
// Request:
//
//	from int32 | kind int8 | payload bytes
//
// No response.
//
// from is the sending node's id; kind says what payload holds (0 is the hello a node sends first
// on each connection it opens, with an empty payload; the other kinds belong to the cluster
// code). A broker that takes no peer traffic, or that cannot decode the frame, closes the
// connection without an answer.

// PeerRequest is a decoded Peer request.
type PeerRequest struct {
	From int32
	Kind int8
	// Payload aliases the request body; null decodes as nil.
	Payload []byte
}

// PeerHeaderLen is the bytes of a Peer request body before the payload's bytes: from, kind and
// the payload's length.
const PeerHeaderLen = 4 + 1 + 4

// ReadFrom decodes the request body.
func (v *PeerRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.From = r.Int32()
	v.Kind = r.Int8()
	v.Payload = r.Bytes()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *PeerRequest) AppendTo(dst []byte) []byte {
	dst = AppendInt32(dst, v.From)
	dst = AppendInt8(dst, v.Kind)
	return AppendBytes(dst, v.Payload)
}
