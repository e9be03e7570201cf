package core

import "testing"

// TestSessionResponseReservation: a fetch's response is sized against the connection's share
// (less its frames, other reservations and unsent output) and the broker-wide budget, before it
// is read; the connection's part ends with Complete, the budget's when the response is written.
func TestSessionResponseReservation(t *testing.T) {
	shared := NewBudget(100 << 20)
	tr := newFakeTransport()
	s := NewSession(tr, Limits{MaxInFlightBytes: 10 << 20, Shared: shared})

	seq, ok := s.Begin(100)
	if !ok {
		t.Fatal("Begin refused")
	}
	if got, _ := s.ReserveResponse(seq, 50<<20); got != 10<<20-100 {
		t.Fatalf("grant %d, want the share less the frame (%d)", got, 10<<20-100)
	}
	if shared.Used() != 10<<20-100 {
		t.Fatalf("budget used %d", shared.Used())
	}
	// The fetch read 3 MiB: the rest of the grant goes back, the response carries 3 MiB.
	resp := NewResponse()
	s.SettleResponse(seq, resp, 10<<20-100, 3<<20)
	if shared.Used() != 3<<20 {
		t.Fatalf("budget used %d after settling 3 MiB", shared.Used())
	}
	// A pipelined second fetch gets what is left of the share.
	seq2, ok := s.Begin(100)
	if !ok {
		t.Fatal("second Begin refused")
	}
	if got, _ := s.ReserveResponse(seq2, 50<<20); got != 7<<20-200 {
		t.Fatalf("second grant %d, want %d", got, 7<<20-200)
	}
	resp2 := NewResponse()
	s.SettleResponse(seq2, resp2, 7<<20-200, 2<<20)
	if shared.Used() != 5<<20 {
		t.Fatalf("budget used %d, want 5 MiB", shared.Used())
	}
	// Over the share, nothing more is granted; a first batch larger than a grant still counts.
	seq3, ok := s.Begin(100)
	if !ok {
		t.Fatal("third Begin refused")
	}
	if got, _ := s.ReserveResponse(seq3, 50<<20); got != 5<<20-300 {
		t.Fatalf("third grant %d, want %d", got, 5<<20-300)
	}
	resp3 := NewResponse()
	s.SettleResponse(seq3, resp3, 5<<20-300, 6<<20)
	if got, _ := s.ReserveResponse(seq3, 1); got != 0 {
		t.Fatalf("grant %d past the share", got)
	}
	if shared.Used() != 11<<20 {
		t.Fatalf("budget used %d, want 11 MiB", shared.Used())
	}
	for i, r := range []*Response{resp, resp2, resp3} {
		r.SetSingle()
		s.Complete([]uint64{seq, seq2, seq3}[i], r) // written by the fake transport
		<-tr.frames
	}
	if shared.Used() != 0 {
		t.Fatalf("budget used %d after every response was written", shared.Used())
	}
}

// TestSessionUnsentCounts: output waiting for a slow client counts against the connection's
// share and the budget; a spent budget grants nothing.
func TestSessionUnsentCounts(t *testing.T) {
	shared := NewBudget(8 << 20)
	s := NewSession(newFakeTransport(), Limits{MaxInFlightBytes: 4 << 20, Shared: shared})
	s.SetUnsent(3 << 20)
	if shared.Used() != 3<<20 || s.Unsent() != 3<<20 {
		t.Fatalf("unsent 3 MiB: budget used %d", shared.Used())
	}
	seq, _ := s.Begin(16)
	if got, _ := s.ReserveResponse(seq, 4<<20); got != 1<<20-16 {
		t.Fatalf("grant %d with 3 MiB unsent of a 4 MiB share, want %d", got, 1<<20-16)
	}
	resp := NewResponse()
	s.SettleResponse(seq, resp, 1<<20-16, 0)
	s.DropResponse(seq, resp, 0)
	s.SetUnsent(1 << 20)
	if shared.Used() != 1<<20 {
		t.Fatalf("unsent down to 1 MiB: budget used %d", shared.Used())
	}
	taken := shared.AcquireUpTo(8 << 20) // other connections spend the budget
	if got, short := s.ReserveResponse(seq, 1<<20); got != 0 || !short {
		t.Fatalf("grant %d (short %v) with the budget spent", got, short)
	}
	shared.Release(taken)
	s.SetUnsent(0)
	if shared.Used() != 0 {
		t.Fatalf("budget used %d at the end", shared.Used())
	}
}

// TestSessionResponsesLeaveRoomForFrames: fetch responses fill the budget only up to its ceiling,
// and a first batch past the grant is refused when the budget cannot cover it.
func TestSessionResponsesLeaveRoomForFrames(t *testing.T) {
	shared := NewBudget(100)
	s := NewSession(newFakeTransport(), Limits{MaxInFlightBytes: 1000, Shared: shared})
	seq, _ := s.Begin(0)
	got, short := s.ReserveResponse(seq, 1000)
	if got != 75 || !short {
		t.Fatalf("grant %d (short %v), want the ceiling of 75", got, short)
	}
	if !shared.TryAcquire(25) { // frames still have the last quarter
		t.Fatal("no room for frames with responses at the ceiling")
	}
	resp := NewResponse()
	if s.SettleResponse(seq, resp, 75, 90) {
		t.Fatal("a response 15 bytes past its grant was settled with the budget full")
	}
	if shared.Used() != 25 {
		t.Fatalf("budget used %d after the refused settle, want the frames' 25", shared.Used())
	}
	resp.Written(nil)
	shared.Release(25)
	got, _ = s.ReserveResponse(seq, 10)
	resp = NewResponse()
	if !s.SettleResponse(seq, resp, got, 40) { // a first batch past the grant, with room for it
		t.Fatal("a response past its grant was refused with room in the budget")
	}
	if shared.Used() != 40 {
		t.Fatalf("budget used %d, want 40", shared.Used())
	}
	s.DropResponse(seq, resp, 40)
	if shared.Used() != 0 {
		t.Fatalf("budget used %d after the drop", shared.Used())
	}
}
