package proto

import "fmt"

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
// from is the sending node's id; kind says what payload holds (0 is the hello, the first Peer
// request on every connection; the other kinds belong to the cluster code). A connection's
// hello binds it to one node: the receiver hands on no Peer request of a connection before its
// hello has been accepted, nor any with another from after it. The hello's payload is empty on
// a cluster without a secret, a PeerHello (below) on one with a secret. A broker that takes no
// peer traffic, that cannot decode the frame, or that refuses it by these rules closes the
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

// PeerHello is the payload of a hello on a cluster whose nodes share a secret: it proves that
// the sender knows the secret and that the hello is fresh.
//
//	nonce [16]byte | unixMillis int64 | mac [32]byte
//
// nonce is random, never used twice; unixMillis is the sender's clock when it opened the
// connection; mac is HMAC-SHA256 keyed with the secret over
//
//	"thorstream-peer-v1" | from int32 | to int32 | nonce | unixMillis int64
//
// where from is the request's from and to the receiving node's id (reactor/peer computes and
// checks it).
type PeerHello struct {
	Nonce      [16]byte
	UnixMillis int64
	MAC        [32]byte
}

// PeerHelloLen is the bytes of an encoded PeerHello.
const PeerHelloLen = 16 + 8 + 32

// ReadFrom decodes a hello's payload; anything but PeerHelloLen bytes is malformed.
func (v *PeerHello) ReadFrom(payload []byte) error {
	if len(payload) != PeerHelloLen {
		return fmt.Errorf("%w: a peer hello of %d bytes, want %d", ErrMalformed, len(payload), PeerHelloLen)
	}
	copy(v.Nonce[:], payload)
	r := NewReader(payload[16:])
	v.UnixMillis = r.Int64()
	copy(v.MAC[:], payload[24:])
	return r.Err()
}

// AppendTo encodes the hello's payload.
func (v *PeerHello) AppendTo(dst []byte) []byte {
	dst = append(dst, v.Nonce[:]...)
	dst = AppendInt64(dst, v.UnixMillis)
	return append(dst, v.MAC[:]...)
}
