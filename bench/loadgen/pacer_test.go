package loadgen

import (
	"testing"
	"time"
)

// fakeClock advances only when the pacer sleeps, or when the test says work took time.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) sleep(d time.Duration)   { c.t = c.t.Add(d) }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestPacerHoldsRate(t *testing.T) {
	f := func(rate float64, sends int, workPerSend time.Duration, want time.Duration) {
		t.Helper()
		clock := &fakeClock{t: time.Unix(1000, 0)}
		start := clock.t
		p := newPacer(rate, start, clock.now, clock.sleep)
		for range sends {
			p.wait()
			clock.advance(workPerSend)
		}
		got := clock.t.Sub(start)
		if got < want-minSleep || got > want+minSleep {
			t.Errorf("rate %v, %d sends, work %v: took %v, want %v", rate, sends, workPerSend, got, want)
		}
	}
	f(1000, 5001, 0, 5*time.Second)                          // send 5000 is due at 5 s
	f(100_000, 100_001, 0, time.Second)                      // sub-millisecond interval: batched sleeps
	f(1000, 1001, 2*time.Millisecond, 2002*time.Millisecond) // slower than the rate: no sleeping
	f(0, 1000, time.Microsecond, time.Millisecond)           // unlimited
}

func TestPacerCatchesUpAfterStall(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacer(1000, clock.t, clock.now, clock.sleep)
	p.wait()
	clock.advance(100 * time.Millisecond) // a 100 ms stall: the next 100 sends go without a pause
	before := clock.t
	for range 100 {
		p.wait()
	}
	if clock.t != before {
		t.Fatalf("pacer slept %v while behind schedule", clock.t.Sub(before))
	}
}
