package core

import (
	"sync"

	"github.com/valyala/bytebufferpool"
)

// Response is one encoded response frame, ready to be written with writev: Bufs are its pieces in
// order. It owns up to two pooled buffers (small encoded parts, and record data read from the
// log) until Written is called by the transport after the bytes have left (or the connection
// has closed).
type Response struct {
	Bufs [][]byte
	head *bytebufferpool.ByteBuffer
	data *bytebufferpool.ByteBuffer
	// TransportData is the transport's own per-response state, kept across pool reuse (the gnet
	// transport stores its write callback here so a write allocates no closure).
	TransportData any
	// budget and charged are the broker-wide bytes the response holds until written
	// (Session.SettleResponse).
	budget  *Budget
	charged int
}

var responsePool = sync.Pool{New: func() any { return new(Response) }}

// NewResponse returns an empty response with a pooled head buffer.
func NewResponse() *Response {
	r := responsePool.Get().(*Response)
	r.head = bytebufferpool.Get()
	r.head.B = r.head.B[:0]
	return r
}

// Head is the buffer for encoded response parts.
func (r *Response) Head() *bytebufferpool.ByteBuffer { return r.head }

// Data returns the buffer for record data, acquiring it on first use.
func (r *Response) Data() *bytebufferpool.ByteBuffer {
	if r.data == nil {
		r.data = bytebufferpool.Get()
		r.data.B = r.data.B[:0]
	}
	return r.data
}

// SetSingle makes the whole head buffer the response's only piece.
func (r *Response) SetSingle() {
	r.Bufs = append(r.Bufs[:0], r.head.B)
}

// Size is the number of bytes the response sends.
func (r *Response) Size() int {
	n := 0
	for _, b := range r.Bufs {
		n += len(b)
	}
	return n
}

// Written releases the response's buffers and its bytes in the broker-wide budget. The transport
// calls it exactly once.
func (r *Response) Written(error) {
	r.budget.Release(r.charged)
	r.budget, r.charged = nil, 0
	if r.head != nil {
		bytebufferpool.Put(r.head)
		r.head = nil
	}
	if r.data != nil {
		// Like frames, large fetch data is left to the collector: pooled, a burst of big
		// responses would stay in memory beside the budget that was meant to bound it.
		if cap(r.data.B) <= maxPooledFrame {
			bytebufferpool.Put(r.data)
		}
		r.data = nil
	}
	clear(r.Bufs)
	r.Bufs = r.Bufs[:0]
	responsePool.Put(r)
}
