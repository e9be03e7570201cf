package core

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Frame is one request frame body (after the size prefix) copied once out of the event loop's
// read buffer into a pooled buffer. It is reference counted: the loop holds one reference while
// it decodes, and every asynchronous user (a produce waiting for its appends, a fetch goroutine)
// takes one more. The last Release returns the buffer to the pool and its bytes to the budget
// it was charged to.
type Frame struct {
	buf  *bytebufferpool.ByteBuffer
	refs atomic.Int32
	// budget and charged are what the frame's allocation counts against (set by Assembly).
	budget  *Budget
	charged int
}

var framePool = sync.Pool{New: func() any { return new(Frame) }}

// maxPooledFrame is the largest frame whose buffer goes back to the pool. Larger frames (batches
// of up to a megabyte per partition) are rare per second and would otherwise keep megabytes idle
// in the pool, doubling the broker's memory under load; the garbage collector reclaims them.
const maxPooledFrame = 256 << 10

// NewFrame returns a frame of size bytes with one reference, for the caller to fill.
func NewFrame(size int) *Frame {
	f := framePool.Get().(*Frame)
	f.alloc(size)
	f.refs.Store(1)
	return f
}

// alloc gives f a buffer of length n, pooled when n is small enough to go back to the pool.
func (f *Frame) alloc(n int) {
	if n > maxPooledFrame {
		f.buf = &bytebufferpool.ByteBuffer{B: make([]byte, n)}
		return
	}
	f.buf = bytebufferpool.Get()
	if cap(f.buf.B) < n {
		f.buf.B = make([]byte, n)
	}
	f.buf.B = f.buf.B[:n]
}

// grow makes f's buffer n bytes long, keeping its first filled bytes.
func (f *Frame) grow(n, filled int) {
	if n <= cap(f.buf.B) {
		f.buf.B = f.buf.B[:n]
		return
	}
	b := make([]byte, n)
	copy(b, f.buf.B[:filled])
	// The old array, pooled or not, is left to the collector: growing is the slow path of a
	// large frame arriving in pieces.
	f.buf.B = b
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
		f.budget.Release(f.charged)
		f.buf, f.budget, f.charged = nil, nil, 0
		framePool.Put(f)
	case n < 0:
		panic("core: frame released more often than retained")
	}
}

// Frame assembly steps. A frame is allocated as its bytes arrive, never from its announced size
// alone: a client announcing 64 MiB and sending one byte a second costs the broker
// minFrameChunk, not 64 MiB. A frame whose bytes are all buffered is allocated whole, at once.
const (
	// minFrameChunk is the first allocation of a frame that has not arrived yet.
	minFrameChunk = 64 << 10
	// frameGrowth is the factor by which a partly arrived frame's buffer grows: a 1 MiB batch
	// arriving in 256 KiB reads is copied once, and a frame holds at most four times the bytes
	// that arrived (or minFrameChunk), or all of it when that is within a quarter of its size.
	frameGrowth = 4
)

// Assembly is the request frame a connection is reading: its announced size, the sequence number
// its session gave it, and the bytes that have arrived. It belongs to the connection's event
// loop. Its buffer is charged to the budget as it grows; Take hands the charge to the frame.
type Assembly struct {
	frame  *Frame
	size   int
	filled int
	seq    uint64
	active bool
}

// Start begins a frame of size bytes (after the size prefix) with sequence number seq. Nothing
// is allocated until Room is given bytes to read (an empty frame is complete at once).
func (a *Assembly) Start(size int, seq uint64) {
	*a = Assembly{size: size, seq: seq, active: true}
	if size == 0 {
		a.resize(0, nil)
	}
}

// Active reports whether a frame is being read.
func (a *Assembly) Active() bool { return a.active }

// Missing is how many bytes of the frame have not arrived.
func (a *Assembly) Missing() int { return a.size - a.filled }

// Room returns where the next bytes of the frame go when buffered (more than 0) bytes are waiting
// to be read, growing the frame's buffer within budget b: to the whole frame when it has all
// arrived, otherwise by frameGrowth, or only to what has arrived when b is short. It returns nil
// when b cannot cover a single byte more and the buffer is full: the caller stops reading the
// connection until the budget frees up.
func (a *Assembly) Room(buffered int, b *Budget) []byte {
	need := min(a.size, a.filled+buffered)
	allocated := 0
	if a.frame != nil {
		allocated = len(a.frame.buf.B)
	}
	if need > allocated {
		want := max(need, frameGrowth*allocated, minFrameChunk)
		if want+want/4 >= a.size {
			// Close to the whole frame: take it, rather than copying once more for a tail (a
			// 1 MiB batch comes with a few hundred bytes of request around it).
			want = a.size
		}
		switch {
		case b.TryAcquire(want - allocated):
		case b.TryAcquire(need - allocated):
			want = need
		default:
			want = allocated
		}
		if want > allocated {
			a.resize(want, b)
			allocated = want
		}
	}
	if allocated == a.filled {
		return nil
	}
	return a.frame.buf.B[a.filled:allocated]
}

// resize makes the frame's buffer n bytes long; the caller has charged the difference to b.
func (a *Assembly) resize(n int, b *Budget) {
	if a.frame == nil {
		f := framePool.Get().(*Frame)
		f.alloc(n)
		f.refs.Store(1)
		f.budget = b
		a.frame = f
	} else {
		a.frame.grow(n, a.filled)
	}
	a.frame.charged = n
}

// Filled records that n more bytes were read into the slice Room returned, and reports whether
// the frame is complete.
func (a *Assembly) Filled(n int) bool {
	a.filled += n
	return a.Complete()
}

// Complete reports whether every byte of the frame has been read.
func (a *Assembly) Complete() bool { return a.frame != nil && a.filled == a.size }

// Take ends a complete frame and returns it with its sequence number. The caller owns the
// frame's reference; the frame's Release returns its bytes to the budget.
func (a *Assembly) Take() (*Frame, uint64) {
	f, seq := a.frame, a.seq
	*a = Assembly{}
	return f, seq
}

// Abort drops a frame that will not complete (its connection closed).
func (a *Assembly) Abort() {
	if a.frame != nil {
		a.frame.Release()
	}
	*a = Assembly{}
}
