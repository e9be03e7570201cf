package groups

import (
	"container/heap"
	"time"
)

// A timer is one deadline of the shard: a member's session, a group's join phase (initial delay or
// rebalance timeout), a group's pending-sync timeout, the offsets expiry pass. Each owner keeps
// one timer object and reschedules it in place, so the heap holds at most one entry per owner and
// a member heartbeating in a tight loop costs no memory. Timers fire from Shard.Tick, in deadline
// order (ties in scheduling order), so a run is a pure function of its inputs.
type timer struct {
	when  time.Time
	seq   uint64
	index int // position in the heap, -1 when not scheduled
	fire  func(now time.Time)
}

func newTimer(fire func(now time.Time)) *timer { return &timer{index: -1, fire: fire} }

func (t *timer) scheduled() bool { return t != nil && t.index >= 0 }

// timerHeap is a min-heap of scheduled timers ordered by (when, seq).
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}

// timers is the shard's timer wheel.
type timers struct {
	heap timerHeap
	seq  uint64
}

// schedule (re)arms t to fire at when.
func (ts *timers) schedule(t *timer, when time.Time) {
	ts.seq++
	t.when, t.seq = when, ts.seq
	if t.index >= 0 {
		heap.Fix(&ts.heap, t.index)
		return
	}
	heap.Push(&ts.heap, t)
}

// cancel disarms t; a nil or unscheduled timer is fine.
func (ts *timers) cancel(t *timer) {
	if t == nil || t.index < 0 {
		return
	}
	heap.Remove(&ts.heap, t.index)
}

// next is the earliest deadline.
func (ts *timers) next() (time.Time, bool) {
	if len(ts.heap) == 0 {
		return time.Time{}, false
	}
	return ts.heap[0].when, true
}

// popDue removes and returns the earliest timer if it is due at now.
func (ts *timers) popDue(now time.Time) *timer {
	if len(ts.heap) == 0 || ts.heap[0].when.After(now) {
		return nil
	}
	return heap.Pop(&ts.heap).(*timer)
}
