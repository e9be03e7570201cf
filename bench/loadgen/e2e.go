package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// timestampBytes is the send time an end-to-end record carries at the start of its value: the
// nanoseconds since the run's base instant, big endian, read off the monotonic clock.
const timestampBytes = 8

// e2ePoll bounds each consumer poll, so the consumer notices the end of the run promptly.
const e2ePoll = 100 * time.Millisecond

// EndToEnd produces timestamped records to o.Topic at o.Rate (default 1000/s) and consumes them
// in the same process from the log end offsets found before the first send. Latency is receipt
// time minus the send time in the value. Records acknowledged but not received within
// o.IdleTimeout after the last send count as failed, as do failed sends.
func EndToEnd(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(ModeEndToEnd); err != nil {
		return nil, err
	}
	o = o.withDefaults(ModeEndToEnd)
	producer, err := newProducer(o)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	if o.Partitions > 0 {
		if err := ensureTopic(ctx, producer, o.Topic, o.Partitions); err != nil {
			return nil, err
		}
	}
	ends, err := listOffsets(ctx, producer, o.Topic, offsetLatest, true)
	if err != nil {
		return nil, err
	}
	from := make(map[int32]kgo.Offset, len(ends))
	for p, end := range ends {
		from[p] = kgo.NewOffset().At(end)
	}
	consumer, err := kgo.NewClient(append(baseOpts(o),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: from}))...)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()

	m := &meter{}                 // received records and their latency; every failure
	var acknowledged atomic.Int64 // records the broker acknowledged
	base := time.Now()
	stopWatch := m.watch(o, ModeEndToEnd, base)

	// The consumer goroutine owns lastReceived; it stops when stop is closed.
	stop := make(chan struct{})
	consumed := make(chan time.Time, 1) // the time of the last record received
	go func() {
		lastReceived := base
		for {
			select {
			case <-stop:
				consumed <- lastReceived
				return
			default:
			}
			pollCtx, cancel := context.WithTimeout(ctx, e2ePoll)
			fetches := consumer.PollFetches(pollCtx)
			cancel()
			fetches.EachError(func(topic string, partition int32, err error) {
				if !isCancel(err) {
					m.failure(fmt.Errorf("fetch %s[%d]: %w", topic, partition, err))
				}
			})
			fetches.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < timestampBytes {
					return // not ours
				}
				now := time.Since(base)
				sent := time.Duration(binary.BigEndian.Uint64(r.Value))
				m.success(len(r.Key)+len(r.Value), now-sent)
				lastReceived = base.Add(now)
			})
		}
	}()

	pad := payload(o.RecordSize)
	value := func() []byte {
		v := make([]byte, o.RecordSize) // owned by the record from here on
		copy(v[timestampBytes:], pad[timestampBytes:])
		binary.BigEndian.PutUint64(v, uint64(time.Since(base)))
		return v
	}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			m.failure(err)
			return
		}
		acknowledged.Add(1)
	}
	sendLoop(ctx, producer, o, base, value, promise)
	_ = producer.Flush(context.WithoutCancel(ctx))

	// Wait for the consumer to catch up with every acknowledged record, or to go quiet.
	want := acknowledged.Load()
	idle := time.NewTimer(o.IdleTimeout)
	defer idle.Stop()
	tick := time.NewTicker(e2ePoll)
	defer tick.Stop()
	for seen := m.records.Load(); seen < want; {
		select {
		case <-ctx.Done():
		case <-idle.C:
		case <-tick.C:
			if now := m.records.Load(); now != seen {
				seen = now
				idle.Reset(o.IdleTimeout)
			}
			continue
		}
		break
	}
	close(stop)
	lastReceived := <-consumed
	if missing := want - m.records.Load(); missing > 0 {
		m.failed.Add(missing - 1)
		m.failure(fmt.Errorf("%d acknowledged records were not received within %v of the last send", missing, o.IdleTimeout))
	}
	stopWatch()

	r := m.result(ModeEndToEnd, o, LatencyEndToEnd, base, lastReceived.Sub(base))
	r.Produced = want
	return r, nil
}
