package core

import (
	"bytes"
	"testing"
)

// feed assembles a frame of size bytes delivered in reads of chunk bytes, as the event loop
// does: Room for what is buffered, copy, Filled. It returns the frame, the largest buffer it had
// before the last read, and how many times it grew.
func feed(t *testing.T, a *Assembly, b *Budget, body []byte, chunk int) (f *Frame, peakBeforeLast, grows int) {
	t.Helper()
	a.Start(len(body), 7)
	sent := 0
	allocated := 0
	for !a.Complete() {
		n := min(chunk, len(body)-sent)
		if n == 0 {
			t.Fatalf("frame incomplete after every byte was delivered (filled %d of %d)", len(body)-a.Missing(), len(body))
		}
		buffered := body[sent : sent+n]
		for len(buffered) > 0 {
			room := a.Room(len(buffered), b)
			if room == nil {
				t.Fatalf("Room refused with budget %d used of %d", b.Used(), b.Limit())
			}
			if a.frame != nil && len(a.frame.buf.B) != allocated {
				if len(a.frame.buf.B) > allocated && allocated > 0 {
					grows++
				}
				allocated = len(a.frame.buf.B)
			}
			// A frame never holds more than frameGrowth times what arrived, or the first chunk.
			if arrived := len(body) - a.Missing() + len(buffered); allocated > max(frameGrowth*arrived, minFrameChunk) && allocated != len(body) {
				t.Fatalf("allocated %d for %d arrived bytes", allocated, arrived)
			}
			if sent+n < len(body) {
				peakBeforeLast = allocated
			}
			c := copy(room, buffered)
			buffered = buffered[c:]
			a.Filled(c)
		}
		sent += n
	}
	f, seq := a.Take()
	if seq != 7 {
		t.Fatalf("seq %d, want 7", seq)
	}
	if a.Active() {
		t.Fatal("assembly still active after Take")
	}
	return f, peakBeforeLast, grows
}

func TestAssemblySizes(t *testing.T) {
	const readBuffer = 256 << 10 // the reactor's default read buffer
	sizes := []int{1, 2, 100, minFrameChunk - 1, minFrameChunk, minFrameChunk + 1, readBuffer - 1, readBuffer,
		readBuffer + 1, maxPooledFrame + 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 64<<20 - 1}
	for _, size := range sizes {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i*7 + i>>8)
		}
		for _, chunk := range []int{size, readBuffer, 1 << 20, 1000} {
			if size == 64<<20-1 && chunk == 1000 {
				continue // 67,000 reads: the other read sizes cover the large frame
			}
			b := NewBudget(128 << 20)
			var a Assembly
			f, _, grows := feed(t, &a, b, body, chunk)
			if !bytes.Equal(f.Bytes(), body) {
				t.Fatalf("size %d, reads of %d: the frame's bytes differ", size, chunk)
			}
			if chunk >= size && grows != 0 {
				t.Errorf("size %d arriving whole grew %d times, want one allocation", size, grows)
			}
			if size <= 1<<20+1 && chunk >= readBuffer && grows > 1 {
				t.Errorf("size %d in reads of %d grew %d times, want at most once", size, chunk, grows)
			}
			if b.Used() != int64(size) {
				t.Errorf("size %d: budget charged %d, want the frame's size", size, b.Used())
			}
			f.Release()
			if b.Used() != 0 {
				t.Errorf("size %d: budget holds %d after the frame's release", size, b.Used())
			}
		}
	}
}

// TestAssemblyAllocatesAsBytesArrive: a client that announces 64 MiB and sends a byte at a time
// costs the first chunk, not the frame's size.
func TestAssemblyAllocatesAsBytesArrive(t *testing.T) {
	b := NewBudget(256 << 20)
	var a Assembly
	a.Start(64<<20-1, 1)
	for i := 0; i < 100; i++ {
		room := a.Room(1, b)
		if len(room) == 0 {
			t.Fatal("no room for one byte")
		}
		room[0] = byte(i)
		a.Filled(1)
	}
	if b.Used() != minFrameChunk {
		t.Fatalf("100 bytes of a 64 MiB frame hold %d bytes of budget, want %d", b.Used(), minFrameChunk)
	}
	a.Abort()
	if b.Used() != 0 {
		t.Fatalf("abort left %d bytes charged", b.Used())
	}
}

// TestAssemblyWithinBudget: when the budget cannot cover the next growth step the frame grows
// only to what has arrived, and when it cannot cover that either Room refuses until the budget
// frees up; nothing is ever allocated past the budget.
func TestAssemblyWithinBudget(t *testing.T) {
	const limit = 1 << 20
	b := NewBudget(limit)
	var a Assembly
	a.Start(4<<20, 1)
	room := a.Room(300<<10, b)
	if len(room) != 300<<10 || b.Used() != 300<<10 {
		t.Fatalf("first room %d, used %d", len(room), b.Used())
	}
	a.Filled(len(room))
	// 4x growth would be 1.2 MiB: past the budget, so only what arrived is allocated.
	room = a.Room(200<<10, b)
	if len(room) != 200<<10 || b.Used() != 500<<10 {
		t.Fatalf("second room %d, used %d", len(room), b.Used())
	}
	a.Filled(len(room))
	other := b.AcquireUpTo(limit) // someone else takes the rest
	if room = a.Room(10, b); room != nil {
		t.Fatalf("Room gave %d bytes with the budget spent", len(room))
	}
	if b.Used() != limit {
		t.Fatalf("used %d, want %d", b.Used(), limit)
	}
	b.Release(other)
	if room = a.Room(10, b); len(room) == 0 {
		t.Fatal("no room after the budget freed up")
	}
	a.Abort()
	if b.Used() != 0 {
		t.Fatalf("abort left %d bytes charged", b.Used())
	}
}
