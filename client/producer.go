package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// AcksNone asks for acks=0 in ProducerOptions.Acks (the zero value means the default, all).
const AcksNone int16 = math.MinInt16

// Acks values for ProducerOptions.Acks.
const (
	AcksLeader int16 = 1
	AcksAll    int16 = -1
)

// ErrProducerClosed fails records produced after Close, and records Close could not deliver.
var ErrProducerClosed = errors.New("client: producer closed")

// Bounds of the record bytes in one Produce request: per partition and in all. Smaller requests
// keep the pipeline between producer, network and broker flowing; larger ones cost fewer round
// trips. A batch larger than either is still sent, alone.
const (
	maxPartitionRequestBytes = 1 << 20
	maxRequestBytes          = 4 << 20
)

// ProducerOptions configures a Producer. Zero fields take the documented defaults.
type ProducerOptions struct {
	// Acks is AcksAll (-1, the default), AcksLeader (1) or AcksNone (acks=0: the broker sends no
	// response, records complete once written, with Offset -1).
	Acks int16
	// Linger is how long a partition's batch waits for more records once it has one. Default
	// 5ms; negative: send at once.
	Linger time.Duration
	// BatchBytes is the size at which a partition's batch is sent without waiting. Default 16 KiB.
	BatchBytes int
	// MaxInFlight bounds unanswered Produce requests per broker. Default 5.
	MaxInFlight int
	// Retries is how many times a batch that failed with a retryable error is sent again.
	// Default 10; negative: never.
	Retries int
	// RetryBackoff is the wait before a partition's failed batches are sent again. Default 100ms.
	RetryBackoff time.Duration
	// DeliveryTimeout bounds the time from Produce to the record's callback. Default 2 minutes.
	DeliveryTimeout time.Duration
	// MaxBufferedBytes bounds the records held by the producer; Produce blocks (up to its ctx)
	// beyond it. Default 32 MiB.
	MaxBufferedBytes int64
}

func (o *ProducerOptions) setDefaults() {
	switch o.Acks {
	case 0:
		o.Acks = AcksAll
	case AcksNone:
		o.Acks = proto.AcksNone
	}
	if o.Linger == 0 {
		o.Linger = 5 * time.Millisecond
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 16 << 10
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 5
	}
	if o.Retries == 0 {
		o.Retries = 10
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 2 * time.Minute
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = 32 << 20
	}
}

// Producer batches records per partition and sends them to partition leaders.
//
// Each partition has an open batch (a batch.Builder) that Produce appends to, and a queue of
// sealed batches. A batch is sealed when it reaches BatchBytes, when its Linger has passed, or on
// Flush. One sender goroutine sends, per broker, one Produce request carrying every partition that
// has sealed batches and none in flight: at most one request per partition is in flight, so a
// batch that fails with a retryable error goes back to the head of its partition's queue and is
// re-sent before anything produced after it. Per-partition order is kept under retries.
//
// A Producer is safe for concurrent use.
type Producer struct {
	client *Client
	opts   ProducerOptions

	mu          sync.Mutex // guards the fields below; taken before Client.mu
	topics      map[string]*topicState
	active      []*partState // partitions with an open, queued or in-flight batch
	inFlight    map[*brokerConn]int
	buffered    int64         // estimated bytes of records not yet completed
	outstanding int           // records not yet completed
	drained     chan struct{} // closed when outstanding reaches 0; made by a waiting Flush
	space       chan struct{} // closed when buffered drops; made by a blocked Produce
	flushing    int           // Flush calls in progress: seal open batches at once
	closing     bool
	freeBatches []*pendingBatch
	rng         uint64

	wake chan struct{} // capacity 1: "state changed, look again"
	quit chan struct{}
	done chan struct{} // closed when the sender exits
}

// topicState is the producer's view of one topic. Guarded by Producer.mu.
type topicState struct {
	name       string
	partitions []*partState
	sticky     int32 // partition that keyless records go to; -1: pick one
	lastSticky int32 // the previous sticky partition, avoided by the next pick
}

// partState is one partition's batches. Guarded by Producer.mu.
type partState struct {
	topic    *topicState
	id       int32
	open     *pendingBatch   // being filled by Produce, nil if none
	queue    []*pendingBatch // sealed, oldest first, not in flight
	inFlight bool            // a request with this partition's batches is unanswered
	retryAt  time.Time       // do not send before (backoff after an error)
	active   bool            // listed in Producer.active
}

// pendingBatch is one RecordBatch and its records' callbacks. Owned by the producer from Produce
// until completion, then recycled (Builder buffers are reused).
type pendingBatch struct {
	builder batch.Builder
	records []pendingRecord
	bytes   []byte // the finished batch, set when sealed; aliases builder
	opened  time.Time
	// openedMillis is opened in milliseconds: the timestamp of records produced without one.
	openedMillis int64
	deadline     time.Time // delivery timeout of its first record
	attempts     int
	buffered     int64 // estimated bytes accounted in Producer.buffered
}

type pendingRecord struct {
	rec  *Record
	done func(*Record, error)
}

// NewProducer returns a Producer sending through c. Close it to stop its sender.
func NewProducer(c *Client, opts ProducerOptions) *Producer {
	opts.setDefaults()
	p := &Producer{
		client:   c,
		opts:     opts,
		topics:   make(map[string]*topicState),
		inFlight: make(map[*brokerConn]int),
		rng:      uint64(time.Now().UnixNano()) | 1,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go p.run()
	return p
}

// NewRecord returns a record for topic whose partition the producer chooses (Partition -1).
func NewRecord(topic string, key, value []byte) *Record {
	return &Record{Topic: topic, Partition: -1, Key: key, Value: value}
}

func (p *Producer) wakeSender() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Produce adds rec to its partition's batch and returns; done (may be nil) is called once the
// record is acknowledged or has failed, with rec's Partition and Offset filled in.
//
// The partition is rec.Partition when >= 0; otherwise murmur2 of the key, as Kafka's default
// partitioner; otherwise (no key) the topic's sticky partition, which changes each time its batch
// is sealed. Produce blocks only to load the topic's metadata the first time and when
// MaxBufferedBytes are buffered, up to ctx.
//
// done runs on a connection's reader goroutine, on the sender goroutine (acks=0, routing
// failures) or on the caller's (early failures): it must be quick and must not block, in
// particular not on Produce or Flush. Callbacks of one partition run in record order.
func (p *Producer) Produce(ctx context.Context, rec *Record, done func(*Record, error)) {
	if done == nil {
		done = func(*Record, error) {}
	}
	if rec.Topic == "" {
		done(rec, ErrNoTopic)
		return
	}
	p.mu.Lock()
	ts, err := p.topicLocked(ctx, rec.Topic)
	if err != nil {
		p.mu.Unlock()
		done(rec, err)
		return
	}
	size := int64(batch.EstimateRecordSize(rec.Key, rec.Value, rec.Headers))
	for p.buffered > 0 && p.buffered+size > p.opts.MaxBufferedBytes && !p.closing {
		if p.space == nil {
			p.space = make(chan struct{})
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			done(rec, ctx.Err())
			return
		}
		p.mu.Lock()
	}
	if p.closing {
		p.mu.Unlock()
		done(rec, ErrProducerClosed)
		return
	}
	n := int32(len(ts.partitions))
	var ps *partState
	switch {
	case rec.Partition >= 0:
		if rec.Partition >= n {
			p.mu.Unlock()
			done(rec, &errcode.Error{Code: errcode.UnknownTopicOrPartition, Message: fmt.Sprintf("%s/%d: topic has %d partitions", rec.Topic, rec.Partition, n)})
			return
		}
		ps = ts.partitions[rec.Partition]
	case rec.Key != nil:
		ps = ts.partitions[keyPartition(rec.Key, n)]
	default:
		ps = ts.partitions[p.stickyLocked(ts)]
		if ps.open != nil && p.full(ps.open, size) {
			// Kafka's sticky partitioner: the record that would start a new batch moves on to
			// the next sticky partition instead.
			p.sealLocked(ps)
			ps = ts.partitions[p.stickyLocked(ts)]
		}
	}
	if ps.open != nil && p.full(ps.open, size) {
		p.sealLocked(ps)
	}
	b := ps.open
	if b == nil {
		b = p.newBatchLocked(time.Now())
		ps.open = b
		if !ps.active {
			ps.active = true
			p.active = append(p.active, ps)
		}
		p.wakeSender() // the sender arms the linger timer for this batch
	}
	// A record without a timestamp gets its batch's opening time: at most Linger before the
	// Produce call (the batch is sent by then), and one clock reading per batch instead of one
	// per record, which costs a tenth of the producer's time on some virtual machines.
	tsMillis := b.openedMillis
	if !rec.Timestamp.IsZero() {
		tsMillis = rec.Timestamp.UnixMilli()
	}
	rec.Partition = ps.id
	b.builder.Append(rec.Key, rec.Value, tsMillis, rec.Headers)
	b.records = append(b.records, pendingRecord{rec: rec, done: done})
	b.buffered += size
	p.buffered += size
	p.outstanding++
	if b.builder.Size() >= p.opts.BatchBytes {
		p.sealLocked(ps)
		p.wakeSender()
	}
	p.mu.Unlock()
}

// full reports whether adding a record of size bytes would take b past BatchBytes.
func (p *Producer) full(b *pendingBatch, size int64) bool {
	return b.builder.Len() > 0 && int64(b.builder.Size())+size > int64(p.opts.BatchBytes)
}

// topicLocked returns the topic's state, loading its partition count on first use (dropping mu
// meanwhile).
func (p *Producer) topicLocked(ctx context.Context, topic string) (*topicState, error) {
	if ts := p.topics[topic]; ts != nil {
		return ts, nil
	}
	p.mu.Unlock()
	var n int32
	err := retry(ctx, adminAttempts, func() error {
		var err error
		n, err = p.client.partitionCount(ctx, topic, true)
		return err
	})
	p.mu.Lock()
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, &errcode.Error{Code: errcode.UnknownTopicOrPartition, Message: topic + ": no partitions"}
	}
	if ts := p.topics[topic]; ts != nil {
		return ts, nil // loaded concurrently
	}
	ts := &topicState{name: topic, sticky: -1, lastSticky: -1, partitions: make([]*partState, n)}
	for i := range ts.partitions {
		ts.partitions[i] = &partState{topic: ts, id: int32(i)}
	}
	p.topics[topic] = ts
	return ts, nil
}

// stickyLocked returns the topic's sticky partition, choosing a new one (different from the
// previous when possible) if none is set.
func (p *Producer) stickyLocked(ts *topicState) int32 {
	if ts.sticky >= 0 {
		return ts.sticky
	}
	n := uint64(len(ts.partitions))
	// xorshift64: cheap, and the choice needs no quality beyond spreading.
	p.rng ^= p.rng << 13
	p.rng ^= p.rng >> 7
	p.rng ^= p.rng << 17
	if n == 1 || ts.lastSticky < 0 {
		ts.sticky = int32(p.rng % n)
	} else {
		// Any partition but the previous one, as Kafka's sticky partitioner.
		ts.sticky = int32((uint64(ts.lastSticky) + 1 + p.rng%(n-1)) % n)
	}
	return ts.sticky
}

func (p *Producer) newBatchLocked(now time.Time) *pendingBatch {
	var b *pendingBatch
	if n := len(p.freeBatches); n > 0 {
		b = p.freeBatches[n-1]
		p.freeBatches = p.freeBatches[:n-1]
	} else {
		b = new(pendingBatch)
	}
	b.builder.Reset()
	b.opened = now
	b.openedMillis = now.UnixMilli()
	b.deadline = now.Add(p.opts.DeliveryTimeout)
	return b
}

// sealLocked finishes a partition's open batch and queues it; the sticky partition moves on.
func (p *Producer) sealLocked(ps *partState) {
	b := ps.open
	if b == nil {
		return
	}
	b.bytes = b.builder.Finish()
	ps.queue = append(ps.queue, b)
	ps.open = nil
	if ps.topic.sticky == ps.id {
		ps.topic.sticky, ps.topic.lastSticky = -1, ps.id
	}
}

func (p *Producer) recycleLocked(b *pendingBatch) {
	clear(b.records)
	b.records = b.records[:0]
	b.bytes = nil
	b.attempts = 0
	b.buffered = 0
	if len(p.freeBatches) < 256 {
		p.freeBatches = append(p.freeBatches, b)
	}
}

// ProduceSync produces recs and waits for all of them; it returns the first error.
func (p *Producer) ProduceSync(ctx context.Context, recs ...*Record) error {
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	wg.Add(len(recs))
	for _, r := range recs {
		p.Produce(ctx, r, func(_ *Record, err error) {
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
			wg.Done()
		})
	}
	p.mu.Lock()
	p.flushing++
	p.mu.Unlock()
	p.wakeSender()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-ctx.Done():
		return ctx.Err()
	}
	return firstErr
}

// Flush sends every buffered record at once and waits until all have completed (or ctx ends).
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.outstanding == 0 {
		p.mu.Unlock()
		return nil
	}
	p.flushing++
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	drained := p.drained
	p.mu.Unlock()
	p.wakeSender()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes (for at most DeliveryTimeout), stops the sender and fails whatever is left with
// ErrProducerClosed. It does not close the Client.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closing = true
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DeliveryTimeout)
	err := p.Flush(ctx)
	cancel()
	close(p.quit)
	<-p.done
	p.mu.Lock()
	var left []*pendingBatch
	for _, ps := range p.active {
		if ps.open != nil {
			p.sealLocked(ps)
		}
		left = append(left, ps.queue...)
		ps.queue = nil
	}
	p.mu.Unlock()
	p.complete(left, ErrProducerClosed)
	return err
}

// produceRequest is one Produce request in flight to one broker.
type produceRequest struct {
	broker *brokerConn
	parts  []sentPartition // grouped by topic
	acks   int16
	size   int // record bytes
}

type sentPartition struct {
	ps      *partState
	batches []*pendingBatch
	size    int // total bytes of batches
}

// readyPartition is a partition with batches to send, found under mu and routed without it.
type readyPartition struct {
	ps     *partState
	broker *brokerConn
	err    error
}

// run is the sender goroutine: it seals lingering batches and sends ready partitions.
func (p *Producer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var ready []readyPartition
	for {
		now := time.Now()
		p.mu.Lock()
		var expired []*pendingBatch
		ready, expired = p.collectLocked(ready[:0], now)
		p.mu.Unlock()
		p.complete(expired, &errcode.Error{Code: errcode.RequestTimedOut, Message: "delivery timeout"})

		if len(ready) > 0 {
			p.route(ready)
			p.mu.Lock()
			reqs := p.buildLocked(ready, time.Now())
			p.mu.Unlock()
			for _, r := range reqs {
				p.sendRequest(r)
			}
		}

		p.mu.Lock()
		next := p.nextWakeLocked()
		p.mu.Unlock()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.quit:
			timer.Stop()
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// collectLocked seals batches whose linger passed (or all, when flushing), drops idle partitions
// from the active list, takes expired queued batches out and lists partitions ready to send.
func (p *Producer) collectLocked(ready []readyPartition, now time.Time) ([]readyPartition, []*pendingBatch) {
	var expired []*pendingBatch
	keep := p.active[:0]
	for _, ps := range p.active {
		if ps.open != nil && (p.flushing > 0 || p.closing || p.opts.Linger < 0 || !now.Before(ps.open.opened.Add(p.opts.Linger))) {
			p.sealLocked(ps)
		}
		if !ps.inFlight {
			for len(ps.queue) > 0 && now.After(ps.queue[0].deadline) {
				expired = append(expired, ps.queue[0])
				ps.queue = ps.queue[1:]
			}
		}
		if ps.open == nil && len(ps.queue) == 0 && !ps.inFlight {
			ps.active = false
			continue
		}
		keep = append(keep, ps)
		if !ps.inFlight && len(ps.queue) > 0 && !now.Before(ps.retryAt) {
			ready = append(ready, readyPartition{ps: ps})
		}
	}
	clear(p.active[len(keep):])
	p.active = keep
	return ready, expired
}

// nextWakeLocked is when the sender must look again without being woken: the earliest linger
// expiry or retry backoff end. Zero: nothing scheduled.
func (p *Producer) nextWakeLocked() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, ps := range p.active {
		if ps.open != nil {
			consider(ps.open.opened.Add(max(p.opts.Linger, 0)))
		}
		if !ps.inFlight && len(ps.queue) > 0 {
			consider(ps.retryAt)
			consider(ps.queue[0].deadline)
		}
	}
	return next
}

// route finds each ready partition's leader, loading metadata if needed. It runs without mu.
func (p *Producer) route(ready []readyPartition) {
	ctx, cancel := context.WithTimeout(context.Background(), p.client.opts.RequestTimeout)
	defer cancel()
	for i := range ready {
		r := &ready[i]
		r.broker, r.err = p.client.leader(ctx, r.ps.topic.name, r.ps.id)
	}
}

// buildLocked turns routed partitions into at most one request per broker, within MaxInFlight.
func (p *Producer) buildLocked(ready []readyPartition, now time.Time) []*produceRequest {
	var reqs []*produceRequest
	byBroker := make(map[*brokerConn]*produceRequest)
	var failed []*pendingBatch
	var failErr error
	for _, r := range ready {
		ps := r.ps
		if ps.inFlight || len(ps.queue) == 0 {
			continue
		}
		if r.err != nil {
			if retryable(r.err) {
				ps.retryAt = now.Add(p.opts.RetryBackoff)
			} else {
				failed = append(failed, ps.queue...)
				failErr = r.err
				ps.queue = nil
			}
			continue
		}
		req := byBroker[r.broker]
		if req != nil && req.size >= maxRequestBytes {
			continue // the next request takes it
		}
		if req == nil {
			if p.inFlight[r.broker] >= p.opts.MaxInFlight {
				continue // woken again when one of its responses arrives
			}
			req = &produceRequest{broker: r.broker, acks: p.opts.Acks}
			byBroker[r.broker] = req
			reqs = append(reqs, req)
			p.inFlight[r.broker]++
		}
		sp := sentPartition{ps: ps}
		n := 0
		for n < len(ps.queue) && (n == 0 || sp.size+len(ps.queue[n].bytes) <= maxPartitionRequestBytes) {
			b := ps.queue[n]
			b.attempts++
			sp.size += len(b.bytes)
			n++
		}
		sp.batches = append([]*pendingBatch(nil), ps.queue[:n]...)
		clear(ps.queue[:n])
		ps.queue = ps.queue[n:]
		ps.inFlight = true
		req.parts = append(req.parts, sp)
		req.size += sp.size
	}
	if len(failed) > 0 {
		// Completion needs mu released; hand it to a goroutine (rare: a non-retryable
		// routing error such as an invalid topic).
		go p.complete(failed, failErr)
	}
	for _, req := range reqs {
		// Group the request's partitions by topic, keeping each topic's partitions in order.
		parts := req.parts
		for i := 1; i < len(parts); i++ {
			for j := i; j > 0 && parts[j].ps.topic.name < parts[j-1].ps.topic.name; j-- {
				parts[j], parts[j-1] = parts[j-1], parts[j]
			}
		}
	}
	return reqs
}

// appendBody encodes the Produce request body, copying the batches into the frame.
func (r *produceRequest) appendBody(timeoutMs int32) func([]byte) []byte {
	return func(dst []byte) []byte {
		dst = proto.AppendInt16(dst, r.acks)
		dst = proto.AppendInt32(dst, timeoutMs)
		topics := 0
		for i := range r.parts {
			if i == 0 || r.parts[i].ps.topic != r.parts[i-1].ps.topic {
				topics++
			}
		}
		dst = proto.AppendArrayLen(dst, topics)
		for i := 0; i < len(r.parts); {
			t := r.parts[i].ps.topic
			j := i
			for j < len(r.parts) && r.parts[j].ps.topic == t {
				j++
			}
			dst = proto.AppendString(dst, t.name)
			dst = proto.AppendArrayLen(dst, j-i)
			for _, sp := range r.parts[i:j] {
				dst = proto.AppendInt32(dst, sp.ps.id)
				dst = proto.AppendInt32(dst, int32(sp.size))
				for _, b := range sp.batches {
					dst = append(dst, b.bytes...)
				}
			}
			i = j
		}
		return dst
	}
}

// sendRequest writes r; its response is handled on the connection's reader goroutine.
func (p *Producer) sendRequest(r *produceRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), p.client.opts.DialTimeout)
	defer cancel()
	timeoutMs := int32(p.client.opts.RequestTimeout / time.Millisecond)
	if r.acks == proto.AcksNone {
		err := r.broker.send(ctx, proto.KeyProduce, r.appendBody(timeoutMs), 0, false, nil)
		p.handleResponse(r, nil, err)
		return
	}
	err := r.broker.send(ctx, proto.KeyProduce, r.appendBody(timeoutMs), 0, false, func(body []byte, err error) {
		p.handleResponse(r, body, err)
	})
	if err != nil {
		p.handleResponse(r, nil, err)
	}
}

// partitionResult is one partition's outcome in a response.
type partitionResult struct {
	found      bool
	code       errcode.Code
	message    string
	baseOffset int64
	leader     proto.LeaderHint
}

// handleResponse settles a request: offsets for successes, requeue for retryable errors, failure
// otherwise. body is nil for acks=0 and when err is set; it is valid only during the call.
func (p *Producer) handleResponse(r *produceRequest, body []byte, err error) {
	results := make([]partitionResult, len(r.parts))
	switch {
	case err != nil:
	case r.acks == proto.AcksNone:
		for i := range results {
			results[i] = partitionResult{found: true, baseOffset: -1}
		}
	default:
		var resp proto.ProduceResponse
		if derr := resp.ReadFrom(body); derr != nil {
			err = r.broker.brokerError(fmt.Errorf("%w: Produce: %v", errProtocol, derr))
			break
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				for i := range r.parts {
					sp := &r.parts[i]
					if sp.ps.id == pr.Partition && sp.ps.topic.name == t.Name {
						results[i] = partitionResult{found: true, code: errcode.Code(pr.ErrorCode),
							message: pr.ErrorMessage, baseOffset: pr.BaseOffset, leader: pr.Leader}
						break
					}
				}
			}
		}
	}

	type completion struct {
		batches []*pendingBatch
		err     error
		base    int64
	}
	var completions []completion
	now := time.Now()
	p.mu.Lock()
	p.inFlight[r.broker]--
	for i := range r.parts {
		sp := &r.parts[i]
		ps := sp.ps
		ps.inFlight = false
		res := results[i]
		var perr error
		switch {
		case err != nil:
			perr = err
			res.code = errcode.Of(err)
			if res.code == errcode.UnknownServerError {
				res.code = errcode.NetworkException // a transport failure: the batch may be re-sent
			}
		case !res.found:
			res.code = errcode.UnknownServerError
			perr = r.broker.brokerError(fmt.Errorf("%w: Produce: no answer for %s/%d", errProtocol, ps.topic.name, ps.id))
		case res.code != errcode.None:
			perr = r.broker.brokerError(&errcode.Error{Code: res.code, Message: res.message})
		}
		if perr == nil {
			completions = append(completions, completion{batches: sp.batches, base: res.baseOffset})
			continue
		}
		p.client.onPartitionError(ps.topic.name, ps.id, res.code, res.leader)
		if res.code.Retryable() && !p.closing && p.canRetry(sp.batches, now) {
			// Back to the head of the queue, ahead of anything produced since: order holds.
			ps.queue = append(sp.batches, ps.queue...)
			ps.retryAt = now.Add(p.opts.RetryBackoff)
			continue
		}
		completions = append(completions, completion{batches: sp.batches, err: perr})
	}
	p.mu.Unlock()
	p.wakeSender()
	for _, c := range completions {
		p.completeWithOffsets(c.batches, c.base, c.err)
	}
}

// canRetry reports whether every batch may be sent again.
func (p *Producer) canRetry(batches []*pendingBatch, now time.Time) bool {
	for _, b := range batches {
		if b.attempts > p.opts.Retries || now.After(b.deadline) {
			return false
		}
	}
	return true
}

// complete fails (or, with err nil, acknowledges without offsets) batches.
func (p *Producer) complete(batches []*pendingBatch, err error) {
	if len(batches) > 0 {
		p.completeWithOffsets(batches, -1, err)
	}
}

// completeWithOffsets runs the callbacks of batches, which were appended as one run starting at
// base (-1: unknown), then releases them. Called without mu.
func (p *Producer) completeWithOffsets(batches []*pendingBatch, base int64, err error) {
	offset := base
	var n int
	var bytes int64
	for _, b := range batches {
		for i := range b.records {
			pr := &b.records[i]
			if err == nil {
				pr.rec.Offset = offset
				if offset >= 0 {
					offset++
				}
			}
			pr.done(pr.rec, err)
		}
		n += len(b.records)
		bytes += b.buffered
	}
	p.mu.Lock()
	for _, b := range batches {
		p.recycleLocked(b)
	}
	p.outstanding -= n
	p.buffered -= bytes
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
	if p.outstanding == 0 && p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
	p.mu.Unlock()
}
