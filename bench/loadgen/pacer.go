package loadgen

import "time"

// pacer spaces sends at a fixed rate without a token bucket: send n is due at start + n/rate,
// so a late send is followed by catch-up sends until the schedule is met again (the rate holds
// over the run, not per instant), and nothing accumulates while the producer is blocked.
// A pacer is owned by the one goroutine that sends.
type pacer struct {
	start    time.Time
	interval float64 // nanoseconds between sends; 0 means unlimited
	sent     int64
	sleep    func(time.Duration)
	now      func() time.Time
}

// minSleep is the shortest wait worth a sleep: shorter ones are left for the next send, since
// timers cannot be relied on below about a millisecond and a busy wait would steal a core.
const minSleep = time.Millisecond

func newPacer(rate float64, start time.Time, now func() time.Time, sleep func(time.Duration)) *pacer {
	p := &pacer{start: start, now: now, sleep: sleep}
	if rate > 0 {
		p.interval = float64(time.Second) / rate
	}
	return p
}

// wait blocks until the next send is due and counts it.
func (p *pacer) wait() {
	if p.interval > 0 {
		due := p.start.Add(time.Duration(float64(p.sent) * p.interval))
		if ahead := due.Sub(p.now()); ahead >= minSleep {
			p.sleep(ahead)
		}
	}
	p.sent++
}
