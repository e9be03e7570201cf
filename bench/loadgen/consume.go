package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume reads every partition of o.Topic directly (no consumer group) from o.From until
// o.Records have arrived or o.Duration has passed. With o.Records set, a silence of
// o.IdleTimeout ends the run and the missing records count as failed. Latency is each record's
// age on arrival (its producer's timestamp to now), meaningful when reading live data.
//
// With neither o.Records nor o.Duration, a run from the beginning reads each partition up to
// the end offset it had when the run started and stops there (records written since are not
// read); a silence of o.IdleTimeout before every partition got there is a failure. A run from
// the end reads until ctx is cancelled.
func Consume(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(ModeConsume); err != nil {
		return nil, err
	}
	o = o.withDefaults(ModeConsume)
	reset := kgo.NewOffset().AtStart()
	if o.From == "end" {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(append(baseOpts(o), kgo.ConsumeTopics(o.Topic), kgo.ConsumeResetOffset(reset))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	var ends *endTracker
	if o.untilEnd(ModeConsume) {
		if ends, err = newEndTracker(ctx, cl, o.Topic); err != nil {
			return nil, err
		}
	}

	m := &meter{}
	start := time.Now()
	stopWatch := m.watch(o, ModeConsume, start)
	runCtx, cancel := runContext(ctx, o.Duration)
	defer cancel()

	last := start // when the last counted record arrived
	var seen int64
	for ends == nil || !ends.done() {
		pollCtx, pollCancel := context.WithTimeout(runCtx, o.IdleTimeout)
		fetches := cl.PollFetches(pollCtx)
		pollCancel()
		if runCtx.Err() != nil {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !isCancel(err) {
				m.failure(fmt.Errorf("fetch %s[%d]: %w", topic, partition, err))
			}
		})
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) {
			if o.Records > 0 && m.records.Load() >= o.Records {
				return
			}
			if ends != nil && !ends.take(r) {
				return
			}
			// The age of one record in clockEvery is sampled: the histogram's lock would
			// otherwise cost a share of a core at millions of records per second.
			if seen%clockEvery == 0 {
				m.success(len(r.Key)+len(r.Value), now.Sub(r.Timestamp))
			} else {
				m.count(len(r.Key) + len(r.Value))
			}
			seen++
			last = now
		})
		if ends != nil {
			if paused := ends.finished(); len(paused) > 0 {
				cl.PauseFetchPartitions(map[string][]int32{o.Topic: paused})
			}
		}
		if o.Records > 0 && m.records.Load() >= o.Records {
			break
		}
		if o.Records > 0 && now.Sub(last) >= o.IdleTimeout {
			missing := o.Records - m.records.Load()
			m.failed.Add(missing - 1)
			m.failure(fmt.Errorf("no record for %v: %d of %d records received", o.IdleTimeout, m.records.Load(), o.Records))
			break
		}
		if ends != nil && !ends.done() && now.Sub(last) >= o.IdleTimeout {
			m.failure(fmt.Errorf("no record for %v: partitions %v stopped short of their end offsets at the start", o.IdleTimeout, ends.short()))
			break
		}
	}
	elapsed := last.Sub(start)
	if ends == nil && (o.Records == 0 || m.records.Load() < o.Records && runCtx.Err() != nil) {
		elapsed = time.Since(start) // ended by the clock or by ctx
	}
	stopWatch()

	return m.result(ModeConsume, o, LatencyRecordAge, start, elapsed), nil
}

// endTracker follows a Consume run that reads every partition up to the end offset it had at
// the start. It is owned by the polling goroutine.
type endTracker struct {
	end     map[int32]int64 // partitions still being read, and their end offsets
	reached []int32         // partitions that got to their end since the last finished call
}

// newEndTracker lists the start and end offsets of topic's partitions; the partitions with
// nothing between the two are done from the outset.
func newEndTracker(ctx context.Context, cl *kgo.Client, topic string) (*endTracker, error) {
	ends, err := listOffsets(ctx, cl, topic, offsetLatest, false)
	if err != nil {
		return nil, err
	}
	starts, err := listOffsets(ctx, cl, topic, offsetEarliest, false)
	if err != nil {
		return nil, err
	}
	t := &endTracker{end: make(map[int32]int64, len(ends))}
	for p, end := range ends {
		if start, ok := starts[p]; !ok || start < end {
			t.end[p] = end
		}
	}
	return t, nil
}

// take reports whether r is below its partition's end offset, and notes the partition done
// when r is its last record.
func (t *endTracker) take(r *kgo.Record) bool {
	end, ok := t.end[r.Partition]
	if !ok || r.Offset >= end {
		return false
	}
	if r.Offset+1 >= end {
		delete(t.end, r.Partition)
		t.reached = append(t.reached, r.Partition)
	}
	return true
}

// finished returns the partitions that got to their end since the last call (to pause them).
func (t *endTracker) finished() []int32 {
	p := t.reached
	t.reached = nil
	return p
}

func (t *endTracker) done() bool { return len(t.end) == 0 }

// short returns the partitions not yet at their end offset, in order.
func (t *endTracker) short() []int32 {
	ps := make([]int32, 0, len(t.end))
	for p := range t.end {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
