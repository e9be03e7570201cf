package loadgen

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Produce writes o.RecordSize-byte records to o.Topic at o.Rate until o.Records have been sent
// or o.Duration has passed, waits for every acknowledgement, and measures send-to-ack latency
// per record. Record failures are counted in the Result; the error is for a run that could not
// start (bad options wrap ErrOptions).
func Produce(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(ModeProduce); err != nil {
		return nil, err
	}
	o = o.withDefaults(ModeProduce)
	clients := make([]*kgo.Client, o.Producers)
	for i := range clients {
		cl, err := newProducer(o)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		clients[i] = cl
	}
	if o.Partitions > 0 {
		if err := ensureTopic(ctx, clients[0], o.Topic, o.Partitions); err != nil {
			return nil, err
		}
	}

	// value is shared by every record: franz-go only reads it.
	value := payload(o.RecordSize)
	m := &meter{}
	promise := func(r *kgo.Record, err error) {
		switch {
		case err != nil:
			m.failure(err)
		case r.Context == sampled:
			m.success(len(r.Key)+len(r.Value), time.Since(r.Timestamp))
		default:
			m.count(len(r.Key) + len(r.Value))
		}
		recordPool.Put(r)
	}
	start := time.Now()
	stopWatch := m.watch(o, ModeProduce, start)
	// Cancelling ctx stops sending like the end of the run: what was sent is still waited for
	// (at most deliveryTimeout per record).
	var wg sync.WaitGroup
	for i, cl := range clients {
		share := o
		share.Rate = o.Rate / float64(o.Producers)
		share.Records = o.Records / int64(o.Producers)
		if int64(i) < o.Records%int64(o.Producers) {
			share.Records++
		}
		if o.Records > 0 && share.Records == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendLoop(ctx, cl, share, start, func() []byte { return value }, promise)
			_ = cl.Flush(context.WithoutCancel(ctx))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopWatch()

	return m.result(ModeProduce, o, LatencySendToAck, start, elapsed), nil
}

// sendLoop produces records made by value at o.Rate until o.Records are sent, o.Duration has
// passed since start or ctx is done, and returns how many it sent. Each record's Timestamp is
// the moment it is handed to the client (with the monotonic reading: promises measure
// latency from it).
func sendLoop(ctx context.Context, cl *kgo.Client, o Options, start time.Time, value func() []byte, promise func(*kgo.Record, error)) int64 {
	produceCtx := context.WithoutCancel(ctx)
	runCtx, cancel := context.WithCancel(ctx)
	if o.Duration > 0 {
		runCtx, cancel = context.WithDeadline(ctx, start.Add(o.Duration)) // the pacer's clock too
	}
	defer cancel()
	sleep := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-runCtx.Done():
		}
	}
	p := newPacer(o.Rate, start, time.Now, sleep)
	limit := o.Records
	if o.Rate > 0 && o.Duration > 0 {
		// The pacer lets a send go up to minSleep early: without this cap a timed run would
		// send that much more than rate*duration.
		if n := int64(o.Rate * o.Duration.Seconds()); limit == 0 || n < limit {
			limit = n
		}
	}
	var sent int64
	var now time.Time
	for limit == 0 || sent < limit {
		p.wait()
		// Reading the clock costs as much as a good part of a send on some virtual machines: at
		// an unlimited rate it is read for one record in clockEvery, and latency is measured on
		// those records only (a uniform sample, as perf tools do). A paced run measures every
		// record.
		fresh := o.Rate > 0 || sent%clockEvery == 0
		if fresh {
			now = time.Now()
		}
		// The clock, not only runCtx: its timer can fire late on a busy machine.
		if runCtx.Err() != nil || o.Duration > 0 && now.Sub(start) >= o.Duration {
			break
		}
		r := recordPool.Get().(*kgo.Record)
		*r = kgo.Record{Topic: o.Topic, Value: value(), Timestamp: now}
		if fresh {
			r.Context = sampled // its Timestamp is its own send time: its latency is measured
		}
		// Not runCtx: a record accepted before the end must not fail because of it. Produce
		// blocks while the client's buffer is full, which is the back pressure.
		cl.Produce(produceCtx, r, promise)
		sent++
	}
	return sent
}

// clockEvery is the sampling period of an unpaced run's latency: one record in clockEvery.
const clockEvery = 16

// sampled marks (in kgo.Record.Context, which franz-go leaves to the user) the records whose
// latency is measured.
var sampled = context.WithValue(context.Background(), sampledKey{}, true)

type sampledKey struct{}

// recordPool recycles records once their promise has run (franz-go keeps no reference after it):
// at millions of records per second the garbage collector otherwise costs a large share of the
// generator's CPU, which the broker under test would then lack.
var recordPool = sync.Pool{New: func() any { return new(kgo.Record) }}

// payload returns size random upper-case letters, like kafka-producer-perf-test's payload.
func payload(size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(size), 0x7468_6f72)) // deterministic: runs compress alike
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('A' + rng.IntN(26))
	}
	return b
}
