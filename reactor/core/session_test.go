package core

import (
	"errors"
	"fmt"
	"net"
	"testing"
)

// marked returns a response whose bytes are its name.
func marked(name string) *Response {
	r := NewResponse()
	r.Head().B = append(r.Head().B, name...)
	r.SetSingle()
	return r
}

func TestSessionOrdering(t *testing.T) {
	cases := []struct {
		name  string
		order []int    // completion order of requests 0..n-1
		nil_  []bool   // requests whose response is nil (acks=0)
		want  []string // frames in the order they must leave
	}{
		{"in order", []int{0, 1, 2}, nil, []string{"r0", "r1", "r2"}},
		{"reversed", []int{2, 1, 0}, nil, []string{"r0", "r1", "r2"}},
		{"shuffled", []int{3, 1, 0, 4, 2}, nil, []string{"r0", "r1", "r2", "r3", "r4"}},
		{"nil skipped", []int{2, 0, 1, 3}, []bool{false, true, false, true}, []string{"r0", "r2"}},
		{"all nil", []int{1, 0}, []bool{true, true}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newFakeTransport()
			s := NewSession(tr, Limits{})
			seqs := make([]uint64, len(tc.order))
			for i := range seqs {
				seq, ok := s.Begin(10)
				if !ok {
					t.Fatal("Begin refused")
				}
				seqs[i] = seq
			}
			for _, i := range tc.order {
				var r *Response
				if tc.nil_ == nil || !tc.nil_[i] {
					r = marked(fmt.Sprintf("r%d", i))
				}
				s.Complete(seqs[i], r)
			}
			var got []string
			for len(tr.frames) > 0 {
				got = append(got, string(<-tr.frames))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("sent %v, want %v", got, tc.want)
			}
			if s.InFlight() != 0 {
				t.Fatalf("%d in flight after all completed", s.InFlight())
			}
		})
	}
}

func TestSessionHoldsLaterResponsesUntilTheEarlierOne(t *testing.T) {
	tr := newFakeTransport()
	s := NewSession(tr, Limits{})
	a, _ := s.Begin(1)
	b, _ := s.Begin(1)
	s.Complete(b, marked("b"))
	if len(tr.frames) != 0 {
		t.Fatal("a later response left before an earlier one")
	}
	if s.InFlight() != 2 {
		t.Fatalf("in flight %d, want 2", s.InFlight())
	}
	s.Complete(a, marked("a"))
	if got := string(<-tr.frames) + string(<-tr.frames); got != "ab" {
		t.Fatalf("sent %q", got)
	}
}

func TestSessionCapsPauseAndWake(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		tr := newFakeTransport()
		s := NewSession(tr, Limits{MaxInFlight: 2})
		a, _ := s.Begin(1)
		b, ok := s.Begin(1)
		if !ok {
			t.Fatal("second Begin refused")
		}
		if _, ok := s.Begin(1); ok {
			t.Fatal("Begin accepted past MaxInFlight")
		}
		if tr.wakes.Load() != 0 {
			t.Fatal("woken while full")
		}
		s.Complete(a, marked("a"))
		if tr.wakes.Load() != 1 {
			t.Fatalf("the Complete that made room called Wake %d times", tr.wakes.Load())
		}
		c, ok := s.Begin(1)
		if !ok {
			t.Fatal("Begin refused after room was made")
		}
		// Not paused any more: completing does not wake again.
		s.Complete(b, marked("b"))
		s.Complete(c, marked("c"))
		if tr.wakes.Load() != 1 {
			t.Fatalf("Wake called %d times, want 1", tr.wakes.Load())
		}
		// The ring wraps correctly.
		for i := 0; i < 10; i++ {
			seq, ok := s.Begin(1)
			if !ok {
				t.Fatal("Begin refused")
			}
			s.Complete(seq, marked("x"))
		}
		if n := len(tr.frames); n != 13 {
			t.Fatalf("%d frames sent, want 13", n)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		tr := newFakeTransport()
		s := NewSession(tr, Limits{MaxInFlightBytes: 100})
		a, _ := s.Begin(60)
		if _, ok := s.Begin(50); ok {
			t.Fatal("Begin accepted past MaxInFlightBytes")
		}
		b, ok := s.Begin(40)
		if !ok {
			t.Fatal("a frame that fits was refused")
		}
		s.Complete(a, nil) // nil responses free room too
		if tr.wakes.Load() != 1 {
			t.Fatalf("Wake called %d times", tr.wakes.Load())
		}
		s.Complete(b, nil)
		// With nothing in flight a frame larger than the cap is accepted.
		big, ok := s.Begin(1000)
		if !ok {
			t.Fatal("an oversized frame was refused with nothing in flight")
		}
		if _, ok := s.Begin(1); ok {
			t.Fatal("accepted a frame behind an oversized one")
		}
		s.Complete(big, nil)
		if tr.wakes.Load() != 2 {
			t.Fatalf("Wake called %d times, want 2", tr.wakes.Load())
		}
	})
}

func TestSessionCloseReleasesResponses(t *testing.T) {
	tr := newFakeTransport()
	s := NewSession(tr, Limits{MaxInFlight: 2})
	a, _ := s.Begin(1)
	b, _ := s.Begin(1)
	if _, ok := s.Begin(1); ok { // pause
		t.Fatal("Begin accepted past the cap")
	}
	rb := marked("b")
	s.Complete(b, rb) // waits behind a
	s.Close()
	if !s.Closed() {
		t.Fatal("Closed() = false")
	}
	ra := marked("a")
	s.Complete(a, ra)
	if len(tr.frames) != 0 {
		t.Fatal("a closed session wrote responses")
	}
	// Written released the buffers of both responses.
	if ra.head != nil || rb.head != nil {
		t.Fatal("responses of a closed session were not released")
	}
	if tr.wakes.Load() != 0 {
		t.Fatal("a closed session woke the transport")
	}
	if s.InFlight() != 0 {
		t.Fatalf("%d in flight", s.InFlight())
	}
}

func TestSessionWritevErrorReleases(t *testing.T) {
	tr := newFakeTransport()
	tr.failWrite = errors.New("queue full")
	s := NewSession(tr, Limits{})
	seq, _ := s.Begin(1)
	r := marked("x")
	s.Complete(seq, r)
	if r.head != nil {
		t.Fatal("a response the transport refused was not released")
	}
	_ = net.ErrClosed
}

func TestFrameRefcount(t *testing.T) {
	f := NewFrame(16)
	if len(f.Bytes()) != 16 {
		t.Fatalf("frame of %d bytes", len(f.Bytes()))
	}
	f.Retain()
	f.Release()
	if f.buf == nil {
		t.Fatal("released while a reference remained")
	}
	f.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("releasing too often did not panic")
		}
	}()
	var g Frame // no reference held
	g.Release()
}

func TestSessionOutOfOrderCompleteDoesNotWake(t *testing.T) {
	tr := newFakeTransport()
	s := NewSession(tr, Limits{MaxInFlight: 2})
	a, _ := s.Begin(1)
	b, _ := s.Begin(1)
	if _, ok := s.Begin(1); ok {
		t.Fatal("Begin accepted past the cap")
	}
	s.Complete(b, marked("b")) // the head (a) is still pending: no room made
	if tr.wakes.Load() != 0 {
		t.Fatal("Wake called although nothing left the session")
	}
	s.Complete(a, marked("a"))
	if tr.wakes.Load() != 1 {
		t.Fatalf("Wake called %d times after room was made, want 1", tr.wakes.Load())
	}
}
