package core

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Frame is one request frame body (after the size prefix) copied once out of the event loop's
// read buffer into a pooled buffer. It is reference counted: the loop holds one reference while
// it decodes, and every asynchronous user (a produce waiting for its appends, a fetch goroutine)
// takes one more. The last Release returns the buffer to the pool.
type Frame struct {
	buf  *bytebufferpool.ByteBuffer
	refs atomic.Int32
}

var framePool = sync.Pool{New: func() any { return new(Frame) }}

// maxPooledFrame is the largest frame whose buffer goes back to the pool. Larger frames (batches
// of up to a megabyte per partition) are rare per second and would otherwise keep megabytes idle
// in the pool, doubling the broker's memory under load; the garbage collector reclaims them.
const maxPooledFrame = 256 << 10

// NewFrame returns a frame of size bytes with one reference, for the caller to fill.
func NewFrame(size int) *Frame {
	f := framePool.Get().(*Frame)
	if size > maxPooledFrame {
		f.buf = &bytebufferpool.ByteBuffer{B: make([]byte, size)}
	} else {
		f.buf = bytebufferpool.Get()
		if cap(f.buf.B) < size {
			f.buf.B = make([]byte, size)
		}
		f.buf.B = f.buf.B[:size]
	}
	f.refs.Store(1)
	return f
}

// Bytes is the frame body. It is valid until the last Release.
func (f *Frame) Bytes() []byte { return f.buf.B }

// Retain takes one more reference.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release drops one reference; the last one returns the buffer to the pool.
func (f *Frame) Release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		if cap(f.buf.B) <= maxPooledFrame {
			bytebufferpool.Put(f.buf)
		}
		f.buf = nil
		framePool.Put(f)
	case n < 0:
		panic("core: frame released more often than retained")
	}
}
