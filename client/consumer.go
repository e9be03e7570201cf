package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// ResetOffset says where a consumer starts a partition that has no committed offset, and where
// it goes after OFFSET_OUT_OF_RANGE.
type ResetOffset int

// Reset policies.
const (
	ResetLatest   ResetOffset = iota // the high watermark: only new records (the default)
	ResetEarliest                    // the log start offset
)

// ErrNoGroup is returned by commit calls of a consumer without ConsumerOptions.Group.
var ErrNoGroup = errors.New("client: consumer has no group")

// ConsumerOptions configures a Consumer. Zero fields take the documented defaults.
type ConsumerOptions struct {
	// Group names the consumer group whose committed offsets are used as starting positions and
	// written by Commit. Optional; Thorstream v1 has no group membership, only offset storage.
	Group string
	// FetchMaxWait is how long the broker may hold a Fetch waiting for FetchMinBytes. Default 500ms.
	FetchMaxWait time.Duration
	// FetchMinBytes is the data a Fetch waits for. Default 1.
	FetchMinBytes int32
	// FetchMaxBytes bounds one Fetch response (the first batch is always whole). Default 50 MiB.
	FetchMaxBytes int32
	// PartitionMaxBytes bounds one partition in a Fetch response. Default 1 MiB.
	PartitionMaxBytes int32
	// ResetOffset applies when there is no committed offset, and after OFFSET_OUT_OF_RANGE.
	ResetOffset ResetOffset
}

func (o *ConsumerOptions) setDefaults() {
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = 500 * time.Millisecond
	}
	if o.FetchMinBytes <= 0 {
		o.FetchMinBytes = 1
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = 50 << 20
	}
	if o.PartitionMaxBytes <= 0 {
		o.PartitionMaxBytes = 1 << 20
	}
}

// Consumer fetches records of assigned partitions. Poll, Seek*, Subscribe, Assign and Commit are
// meant for one goroutine; Position and Close may be called from any.
type Consumer struct {
	client *Client
	opts   ConsumerOptions

	mu          sync.Mutex // guards the fields below
	subscribed  []string
	cursors     map[TopicPartition]*cursor
	order       []TopicPartition // assigned partitions, sorted
	metaChecked time.Time
	closed      bool
}

// cursor is one assigned partition's position.
type cursor struct {
	offset int64 // next offset to fetch; -1 until resolved
	// resetTo, when offset is -1: TimestampEarliest or TimestampLatest, or 0 for "the group's
	// committed offset, else ResetOffset".
	resetTo int64
}

// NewConsumer returns a Consumer reading through c.
func NewConsumer(c *Client, opts ConsumerOptions) *Consumer {
	opts.setDefaults()
	return &Consumer{client: c, opts: opts, cursors: make(map[TopicPartition]*cursor)}
}

// Subscribe assigns every partition of topics, now and as they appear in metadata.
func (c *Consumer) Subscribe(topics ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribed = append(c.subscribed, topics...)
	c.metaChecked = time.Time{}
}

// Assign adds partitions to the assignment.
func (c *Consumer) Assign(tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		c.assignLocked(tp)
	}
}

func (c *Consumer) assignLocked(tp TopicPartition) *cursor {
	cur := c.cursors[tp]
	if cur == nil {
		cur = &cursor{offset: -1}
		c.cursors[tp] = cur
		c.order = append(c.order, tp)
		sort.Slice(c.order, func(i, j int) bool {
			a, b := c.order[i], c.order[j]
			return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
		})
	}
	return cur
}

// Unassign removes partitions from the assignment (a subscription adds them back when its
// topics' metadata is next refreshed).
func (c *Consumer) Unassign(tps ...TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if c.cursors[tp] == nil {
			continue
		}
		delete(c.cursors, tp)
		for i, o := range c.order {
			if o == tp {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
	}
}

// Assignment returns the assigned partitions.
func (c *Consumer) Assignment() []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]TopicPartition(nil), c.order...)
}

// Seek sets the next offset to fetch from tp (assigning tp if needed).
func (c *Consumer) Seek(tp TopicPartition, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.assignLocked(tp).offset = offset
}

// SeekToBeginning moves tps to their log start offsets (resolved by the next Poll).
func (c *Consumer) SeekToBeginning(tps ...TopicPartition) { c.seekTo(TimestampEarliest, tps) }

// SeekToEnd moves tps to their high watermarks (resolved by the next Poll).
func (c *Consumer) SeekToEnd(tps ...TopicPartition) { c.seekTo(TimestampLatest, tps) }

func (c *Consumer) seekTo(where int64, tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		cur := c.assignLocked(tp)
		cur.offset, cur.resetTo = -1, where
	}
}

// SeekToTimestamp moves tp to the first offset whose timestamp is at or after ts (ms), or to the
// end if there is none.
func (c *Consumer) SeekToTimestamp(ctx context.Context, tp TopicPartition, ts int64) error {
	off, err := c.client.ListOffsets(ctx, tp.Topic, tp.Partition, ts)
	if err != nil {
		return err
	}
	if off < 0 {
		c.seekTo(TimestampLatest, []TopicPartition{tp})
		return nil
	}
	c.Seek(tp, off)
	return nil
}

// Position is the next offset Poll fetches from tp; -1 if not yet known (before the first Poll)
// or not assigned.
func (c *Consumer) Position(tp TopicPartition) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.cursors[tp]; cur != nil {
		return cur.offset
	}
	return -1
}

// Commit commits the current position of every assigned partition whose position is known.
func (c *Consumer) Commit(ctx context.Context) error {
	c.mu.Lock()
	offsets := make(map[TopicPartition]int64, len(c.cursors))
	for tp, cur := range c.cursors {
		if cur.offset >= 0 {
			offsets[tp] = cur.offset
		}
	}
	c.mu.Unlock()
	return c.CommitOffsets(ctx, offsets)
}

// CommitOffsets commits the given offsets (the next offsets to consume) for the group.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if c.opts.Group == "" {
		return ErrNoGroup
	}
	return c.client.CommitOffsets(ctx, c.opts.Group, offsets)
}

// Committed returns the group's committed offset of tp, -1 if none.
func (c *Consumer) Committed(ctx context.Context, tp TopicPartition) (int64, error) {
	if c.opts.Group == "" {
		return -1, ErrNoGroup
	}
	m, err := c.client.FetchCommitted(ctx, c.opts.Group, []TopicPartition{tp})
	if err != nil {
		return -1, err
	}
	return m[tp], nil
}

// Close stops the consumer; it does not close the Client or commit.
func (c *Consumer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Poll fetches until it has records, an error, or ctx ends. It sends one Fetch per leader for
// all assigned partitions with a known position and waits up to FetchMaxWait for each.
func (c *Consumer) Poll(ctx context.Context) ([]*Record, error) {
	for {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.refreshSubscription(ctx); err != nil {
			return nil, err
		}
		if err := c.resolvePositions(ctx); err != nil {
			return nil, err
		}
		recs, fetched, err := c.fetchOnce(ctx)
		if len(recs) > 0 || err != nil {
			return recs, err
		}
		if !fetched {
			// Nothing could be fetched (no assignment, or no leader): wait before looking again.
			t := time.NewTimer(c.opts.FetchMaxWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			c.mu.Lock()
			c.metaChecked = time.Time{}
			c.mu.Unlock()
		}
	}
}

// refreshSubscription assigns new partitions of subscribed topics.
func (c *Consumer) refreshSubscription(ctx context.Context) error {
	c.mu.Lock()
	topics := append([]string(nil), c.subscribed...)
	due := len(topics) > 0 && time.Since(c.metaChecked) > c.client.opts.MetadataMaxAge
	c.mu.Unlock()
	if !due {
		return nil
	}
	counts := make([]int32, len(topics))
	for i, t := range topics {
		c.client.invalidate(t)
		n, err := c.client.partitionCount(ctx, t, false)
		if err != nil && errcode.Of(err) != errcode.UnknownTopicOrPartition {
			return err
		}
		counts[i] = n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range topics {
		for p := int32(0); p < counts[i]; p++ {
			c.assignLocked(TopicPartition{t, p})
		}
	}
	c.metaChecked = time.Now()
	return nil
}

// resolvePositions gives every cursor without an offset one: the committed offset (if it should
// and there is one), else the reset policy's.
func (c *Consumer) resolvePositions(ctx context.Context) error {
	c.mu.Lock()
	var needCommitted []TopicPartition
	var needList []TopicPartition
	for _, tp := range c.order {
		cur := c.cursors[tp]
		if cur.offset >= 0 {
			continue
		}
		if cur.resetTo == 0 && c.opts.Group != "" {
			needCommitted = append(needCommitted, tp)
		} else {
			needList = append(needList, tp)
		}
	}
	c.mu.Unlock()
	if len(needCommitted) > 0 {
		committed, err := c.client.FetchCommitted(ctx, c.opts.Group, needCommitted)
		if err != nil {
			return err
		}
		c.mu.Lock()
		for _, tp := range needCommitted {
			cur := c.cursors[tp]
			if off := committed[tp]; off >= 0 {
				cur.offset = off
			} else {
				needList = append(needList, tp)
			}
		}
		c.mu.Unlock()
	}
	for _, tp := range needList {
		c.mu.Lock()
		where := c.cursors[tp].resetTo
		c.mu.Unlock()
		if where == 0 {
			where = c.resetTimestamp()
		}
		off, err := c.client.ListOffsets(ctx, tp.Topic, tp.Partition, where)
		if err != nil {
			if retryable(err) {
				continue // the next Poll tries again
			}
			return err
		}
		c.mu.Lock()
		if cur := c.cursors[tp]; cur.offset < 0 {
			cur.offset, cur.resetTo = off, 0
		}
		c.mu.Unlock()
	}
	return nil
}

func (c *Consumer) resetTimestamp() int64 {
	if c.opts.ResetOffset == ResetEarliest {
		return TimestampEarliest
	}
	return TimestampLatest
}

// fetchRequest is the Fetch sent to one broker in a Poll round.
type fetchRequest struct {
	broker *brokerConn
	req    proto.FetchRequest
	result chan fetchResult
}

type fetchResult struct {
	body []byte
	err  error
}

// fetchOnce sends one Fetch per leader and decodes the answers. fetched is false when no
// request was answered (nothing to fetch, no leader, or brokers unreachable): Poll then waits
// before trying again instead of spinning.
func (c *Consumer) fetchOnce(ctx context.Context) (recs []*Record, fetched bool, err error) {
	c.mu.Lock()
	type want struct {
		tp     TopicPartition
		offset int64
	}
	var wants []want
	for _, tp := range c.order {
		if cur := c.cursors[tp]; cur.offset >= 0 {
			wants = append(wants, want{tp, cur.offset})
		}
	}
	c.mu.Unlock()

	byBroker := make(map[*brokerConn]*fetchRequest)
	var reqs []*fetchRequest
	for _, w := range wants {
		b, err := c.client.fetchLeader(ctx, w.tp.Topic, w.tp.Partition)
		if err != nil {
			if retryable(err) {
				continue
			}
			return nil, false, err
		}
		fr := byBroker[b]
		if fr == nil {
			fr = &fetchRequest{broker: b, result: make(chan fetchResult, 1), req: proto.FetchRequest{
				MaxWaitMs: int32(c.opts.FetchMaxWait / time.Millisecond),
				MinBytes:  c.opts.FetchMinBytes,
				MaxBytes:  c.opts.FetchMaxBytes,
			}}
			byBroker[b] = fr
			reqs = append(reqs, fr)
		}
		topics := fr.req.Topics
		if len(topics) == 0 || string(topics[len(topics)-1].Name) != w.tp.Topic {
			fr.req.Topics = append(fr.req.Topics, proto.FetchTopic{Name: []byte(w.tp.Topic)})
		}
		t := &fr.req.Topics[len(fr.req.Topics)-1]
		t.Partitions = append(t.Partitions, proto.FetchPartition{Partition: w.tp.Partition, FetchOffset: w.offset, PartitionMaxBytes: c.opts.PartitionMaxBytes})
	}
	for _, fr := range reqs {
		fr := fr
		err := fr.broker.send(ctx, proto.KeyFetch, fr.req.AppendTo, c.opts.FetchMaxWait, true, func(body []byte, err error) {
			fr.result <- fetchResult{body, err}
		})
		if err != nil {
			fr.result <- fetchResult{nil, err}
		}
	}
	var firstErr error
	answered := 0
	for _, fr := range reqs {
		var res fetchResult
		select {
		case res = <-fr.result:
		case <-ctx.Done():
			return recs, answered > 0, ctx.Err()
		}
		if res.err != nil {
			if !retryable(res.err) && firstErr == nil {
				firstErr = res.err
			}
			continue
		}
		answered++
		out, err := c.handleFetch(fr, res.body)
		recs = append(recs, out...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return recs, answered > 0, firstErr
}

// handleFetch decodes one Fetch response, advancing positions.
func (c *Consumer) handleFetch(fr *fetchRequest, body []byte) ([]*Record, error) {
	var resp proto.FetchResponse
	if err := resp.ReadFrom(body); err != nil {
		return nil, fr.broker.brokerError(fmt.Errorf("%w: Fetch: %v", errProtocol, err))
	}
	var recs []*Record
	var firstErr error
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			tp := TopicPartition{t.Name, p.Partition}
			c.mu.Lock()
			cur := c.cursors[tp]
			c.mu.Unlock()
			if cur == nil {
				continue
			}
			code := errcode.Code(p.ErrorCode)
			switch {
			case code == errcode.OffsetOutOfRange:
				c.mu.Lock()
				cur.offset, cur.resetTo = -1, c.resetTimestamp()
				c.mu.Unlock()
				continue
			case code != errcode.None:
				c.client.onPartitionError(t.Name, p.Partition, code, p.Leader)
				if !code.Retryable() && firstErr == nil {
					firstErr = fr.broker.brokerError(&errcode.Error{Code: code, Message: fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage)})
				}
				continue
			}
			c.mu.Lock()
			from := cur.offset
			c.mu.Unlock()
			out, next, err := decodePartition(recs, t.Name, p.Partition, p.Records, from)
			recs = out
			c.mu.Lock()
			if cur.offset == from {
				cur.offset = next
			}
			c.mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fr.broker.brokerError(fmt.Errorf("%s/%d: %w", t.Name, p.Partition, err))
			}
		}
	}
	return recs, firstErr
}

// decodePartition appends the records at or after from in data (whole batches; a truncated last
// batch is ignored) and returns the next offset to fetch. Records alias data.
func decodePartition(recs []*Record, topic string, partition int32, data []byte, from int64) ([]*Record, int64, error) {
	next := from
	for len(data) >= batch.LengthPrefix {
		size, err := batch.Size(data)
		if err != nil {
			return recs, next, err
		}
		if size > len(data) {
			break // partial batch at the end of a size-limited response
		}
		raw := data[:size:size]
		data = data[size:]
		h, err := batch.ParseHeader(raw)
		if err != nil {
			return recs, next, err
		}
		if h.NextOffset() <= next {
			continue // wholly before the position (the broker returns whole batches)
		}
		if h.IsControl() {
			next = h.NextOffset()
			continue
		}
		section := raw[batch.HeaderSize:]
		if h.Codec() != batch.CodecNone {
			section, err = decompress(&h, raw)
			if err != nil {
				return recs, next, err
			}
		}
		err = batch.DecodeRecords(&h, section, func(r *batch.Record) error {
			if r.Offset < next {
				return nil
			}
			rec := &Record{
				Topic:     topic,
				Partition: partition,
				Offset:    r.Offset,
				Key:       r.Key,
				Value:     r.Value,
				Timestamp: time.UnixMilli(r.Timestamp),
			}
			if len(r.Headers) > 0 {
				rec.Headers = append([]batch.RecordHeader(nil), r.Headers...)
			}
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return recs, next, err
		}
		next = h.NextOffset()
	}
	return recs, next, nil
}
