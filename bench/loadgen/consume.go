package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume reads every partition of o.Topic directly (no consumer group) from o.From until
// o.Records have arrived or o.Duration has passed. With o.Records set, a silence of
// o.IdleTimeout ends the run and the missing records count as failed. Latency is each record's
// age on arrival (its producer's timestamp to now), meaningful when reading live data.
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

	m := &meter{}
	start := time.Now()
	progressCtx, stopProgress := context.WithCancel(ctx)
	progressDone := m.report(progressCtx, o.Progress, o.ProgressInterval, ModeConsume, start)
	runCtx, cancel := runContext(ctx, o.Duration)
	defer cancel()

	last := start // when the last counted record arrived
	var seen int64
	for {
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
		if o.Records > 0 && m.records.Load() >= o.Records {
			break
		}
		if o.Records > 0 && now.Sub(last) >= o.IdleTimeout {
			missing := o.Records - m.records.Load()
			m.failed.Add(missing - 1)
			m.failure(fmt.Errorf("no record for %v: %d of %d records received", o.IdleTimeout, m.records.Load(), o.Records))
			break
		}
	}
	elapsed := last.Sub(start)
	if o.Records == 0 || m.records.Load() < o.Records && runCtx.Err() != nil {
		elapsed = time.Since(start) // ended by the clock
	}
	stopProgress()
	<-progressDone

	r := m.result(ModeConsume, o, LatencyRecordAge, elapsed)
	r.Options = resultOptions(ModeConsume, o)
	return r, nil
}
