package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

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
	// written by Commit. Optional. A consumer with a Group that subscribes (Subscribe) is a
	// member of the group: the group's members share the partitions of their subscriptions, as
	// Kafka consumers do (see "Consumer groups" in the package documentation). One that assigns
	// its own partitions (Assign, Seek) only uses the group's committed offsets.
	Group string
	// InstanceID makes the consumer a static member of its group (Kafka's group.instance.id): a
	// consumer restarted with the same InstanceID within the session timeout takes its place back
	// without a rebalance. A static member does not leave the group on Close. Default: dynamic.
	InstanceID string
	// SessionTimeout is how long the group's coordinator keeps a member that sends no heartbeat.
	// It must lie within the broker's bounds (6 s to 30 min by default). Default 45 s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the consumer heartbeats, and so how soon it learns that the
	// group rebalances (Kafka's heartbeat.interval.ms). Default 3 s; at most a third of
	// SessionTimeout.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long a rebalance waits for the members to rejoin; a member that
	// does not Poll within it is removed from the group. Default 60 s.
	RebalanceTimeout time.Duration
	// AutoCommit commits the positions of the assigned partitions every AutoCommitInterval (from
	// Poll, the positions of the records earlier Polls returned), before a rebalance revokes the
	// partitions, and on Close. Default off: positions are committed by Commit and CommitOffsets.
	AutoCommit bool
	// AutoCommitInterval is how often AutoCommit commits. Default 5 s.
	AutoCommitInterval time.Duration
	// OnAssign is called by Poll, on its goroutine, with the partitions the group has just
	// assigned to the consumer, before they are fetched.
	OnAssign func(partitions []TopicPartition)
	// OnRevoke is called by Poll, on its goroutine, with the partitions a rebalance is about to
	// take away (every assigned one: rebalances are eager), after AutoCommit's commit: a consumer
	// that commits by itself commits there (Commit works in it) so that the next owners resume
	// where it stopped. When the membership was lost (the session expired) the commit fails.
	OnRevoke func(partitions []TopicPartition)
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
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 45 * time.Second
	}
	if o.RebalanceTimeout <= 0 {
		o.RebalanceTimeout = 60 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	o.HeartbeatInterval = min(o.HeartbeatInterval, o.SessionTimeout/3)
	if o.AutoCommitInterval <= 0 {
		o.AutoCommitInterval = 5 * time.Second
	}
}

// Consumer fetches records of assigned partitions. Poll, Seek*, Subscribe, Assign and Commit are
// meant for one goroutine; Position and Close may be called from any.
type Consumer struct {
	client *Client
	opts   ConsumerOptions
	// member is the group membership (group.go); nil without a Group. It is used once the
	// consumer subscribes.
	member *membership

	mu          sync.Mutex // guards the fields below
	subscribed  []string
	cursors     map[TopicPartition]*cursor
	order       []TopicPartition // assigned partitions, sorted
	metaChecked time.Time
	closed      bool
	// The positions of the partitions a rebalance revoked, and the generation they were
	// consumed in: a partition the next generation gives back keeps its position (no other
	// member can have had it in between).
	retained    map[TopicPartition]int64
	retainedGen int32
	lastCommit  time.Time // AutoCommit's last commit
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
	cons := &Consumer{client: c, opts: opts, cursors: make(map[TopicPartition]*cursor), retainedGen: -1, lastCommit: time.Now()}
	if opts.Group != "" {
		cons.member = newMembership(cons)
	}
	return cons
}

// Subscribe assigns every partition of topics, now and as they appear in metadata. With a Group,
// the consumer joins the group at the next Poll instead, and the group assigns it a share of the
// partitions of its members' subscriptions; subscribing to more topics later rejoins.
func (c *Consumer) Subscribe(topics ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribed = append(c.subscribed, topics...)
	c.metaChecked = time.Time{}
}

// Assign adds partitions to the assignment. A member of a group (a consumer with a Group that
// subscribed) takes the group's assignment only: Assign does nothing.
func (c *Consumer) Assign(tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inGroupLocked() {
		return
	}
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
// topics' metadata is next refreshed). A member of a group keeps the group's assignment:
// Unassign does nothing.
func (c *Consumer) Unassign(tps ...TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inGroupLocked() {
		return
	}
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

// Seek sets the next offset to fetch from tp (assigning tp if needed; a member of a group only
// seeks partitions the group assigned to it, and ignores others).
func (c *Consumer) Seek(tp TopicPartition, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.seekableLocked(tp); cur != nil {
		cur.offset = offset
	}
}

// seekableLocked is tp's cursor for a seek: assigned first if need be, nil for a partition the
// group has not assigned to a member.
func (c *Consumer) seekableLocked(tp TopicPartition) *cursor {
	if c.inGroupLocked() {
		return c.cursors[tp]
	}
	return c.assignLocked(tp)
}

// inGroupLocked reports whether the consumer is a member of its group: it has a Group and
// subscribed.
func (c *Consumer) inGroupLocked() bool { return c.member != nil && len(c.subscribed) > 0 }

func (c *Consumer) inGroup() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inGroupLocked()
}

// subscription is the subscribed topics, sorted, each once.
func (c *Consumer) subscription() []string {
	c.mu.Lock()
	topics := append([]string(nil), c.subscribed...)
	c.mu.Unlock()
	sort.Strings(topics)
	return slices.Compact(topics)
}

func (c *Consumer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Membership is the consumer's member id in its group and the generation it is a member of: ""
// and -1 before it has joined (and after Close), -1 while it rejoins.
func (c *Consumer) Membership() (memberID string, generation int32) {
	if c.member == nil {
		return "", -1
	}
	return c.member.state()
}

// SeekToBeginning moves tps to their log start offsets (resolved by the next Poll).
func (c *Consumer) SeekToBeginning(tps ...TopicPartition) { c.seekTo(TimestampEarliest, tps) }

// SeekToEnd moves tps to their high watermarks (resolved by the next Poll).
func (c *Consumer) SeekToEnd(tps ...TopicPartition) { c.seekTo(TimestampLatest, tps) }

func (c *Consumer) seekTo(where int64, tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if cur := c.seekableLocked(tp); cur != nil {
			cur.offset, cur.resetTo = -1, where
		}
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
	return c.CommitOffsets(ctx, c.positions())
}

// positions is the known position of every assigned partition.
func (c *Consumer) positions() map[TopicPartition]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	offsets := make(map[TopicPartition]int64, len(c.cursors))
	for tp, cur := range c.cursors {
		if cur.offset >= 0 {
			offsets[tp] = cur.offset
		}
	}
	return offsets
}

// CommitOffsets commits the given offsets (the next offsets to consume) for the group. A member
// of a group commits as the member of its generation: while the group rebalances it gets
// REBALANCE_IN_PROGRESS, and ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID once it has lost its
// membership (the next Poll rejoins). A consumer that assigns its own partitions commits from
// outside group management, which the coordinator accepts while the group has no members.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if c.opts.Group == "" {
		return ErrNoGroup
	}
	if len(offsets) == 0 {
		return nil
	}
	if c.inGroup() {
		return c.member.commit(ctx, offsets, false)
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

// Close stops the consumer; it does not close the Client. With AutoCommit it commits the
// positions first. A member of a group then leaves it (unless static), so that the others take
// its partitions over at once; a Poll waiting in a rebalance returns ErrClosed.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	inGroup := c.inGroupLocked()
	c.mu.Unlock()
	if c.member == nil {
		return nil
	}
	if !inGroup {
		c.member.stop() // never joined: nothing runs
		if !c.opts.AutoCommit {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.client.opts.RequestTimeout)
		defer cancel()
		return c.CommitOffsets(ctx, c.positions())
	}
	var commit func(context.Context) error
	if c.opts.AutoCommit {
		commit = func(ctx context.Context) error {
			if !c.member.canCommit() {
				return nil
			}
			return c.member.commit(ctx, c.positions(), true)
		}
	}
	return c.member.close(commit)
}

// revokeForRejoin takes every assigned partition away before the member rejoins: AutoCommit
// commits their positions (while the generation is still valid), OnRevoke is told, and the
// positions are kept aside for takeAssignment. On Poll's goroutine.
func (c *Consumer) revokeForRejoin(ctx context.Context) {
	c.mu.Lock()
	tps := append([]TopicPartition(nil), c.order...)
	c.mu.Unlock()
	if len(tps) == 0 {
		return
	}
	if c.opts.AutoCommit && c.member.canCommit() {
		if err := c.member.commit(ctx, c.positions(), false); err != nil {
			c.client.log.Debug("committing before a rebalance failed", zap.String("group", c.opts.Group), zap.Error(err))
		}
	}
	if c.opts.OnRevoke != nil {
		c.opts.OnRevoke(tps)
	}
	_, generation := c.member.state()
	retained := c.positions()
	c.mu.Lock()
	c.retained, c.retainedGen = retained, -1
	if c.member.canCommit() {
		c.retainedGen = generation
	}
	c.cursors = make(map[TopicPartition]*cursor)
	c.order = nil
	c.mu.Unlock()
}

// takeAssignment makes tps, the group's assignment for generation, the consumer's. Partitions it
// had in the generation just before, as the same member, keep their positions; the others start
// at the group's committed offsets. On Poll's goroutine.
func (c *Consumer) takeAssignment(tps []TopicPartition, generation int32, sameMember bool) {
	c.mu.Lock()
	keep := sameMember && c.retainedGen >= 0 && generation == c.retainedGen+1
	c.cursors = make(map[TopicPartition]*cursor, len(tps))
	c.order = nil
	for _, tp := range tps {
		cur := c.assignLocked(tp)
		if off, ok := c.retained[tp]; ok && keep {
			cur.offset = off
		}
	}
	c.retained, c.retainedGen = nil, -1
	assigned := append([]TopicPartition(nil), c.order...)
	c.mu.Unlock()
	if c.opts.OnAssign != nil {
		c.opts.OnAssign(assigned)
	}
}

// maybeAutoCommit commits the positions when AutoCommitInterval has passed.
func (c *Consumer) maybeAutoCommit(ctx context.Context) {
	if !c.opts.AutoCommit || c.opts.Group == "" {
		return
	}
	c.mu.Lock()
	due := time.Since(c.lastCommit) >= c.opts.AutoCommitInterval
	if due {
		c.lastCommit = time.Now()
	}
	c.mu.Unlock()
	if !due {
		return
	}
	if err := c.Commit(ctx); err != nil && ctx.Err() == nil {
		c.client.log.Debug("auto-commit failed", zap.String("group", c.opts.Group), zap.Error(err))
	}
}

// wakeChannel is what a Poll waiting for records also waits on: the membership's request to
// rejoin (nil, never ready, outside a group).
func (c *Consumer) wakeChannel() <-chan struct{} {
	if c.inGroup() {
		return c.member.wake
	}
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
		if c.inGroup() {
			if err := c.member.ensureActive(ctx); err != nil {
				return nil, err
			}
			c.member.checkMetadata(ctx)
		} else if err := c.refreshSubscription(ctx); err != nil {
			return nil, err
		}
		c.maybeAutoCommit(ctx)
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
			case <-c.wakeChannel():
				t.Stop()
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
	wake := c.wakeChannel()
	for _, fr := range reqs {
		var res fetchResult
		select {
		case res = <-fr.result:
		case <-ctx.Done():
			return recs, answered > 0, ctx.Err()
		case <-wake:
			// The group rebalances: Poll rejoins now rather than after the long poll. The
			// fetches still out are dropped (positions move only with handled responses).
			return recs, true, firstErr
		}
		if res.err != nil {
			// The connection failed: its partitions may have moved to another leader, which
			// only fresh metadata names (there is no answer to carry a hint).
			code := errcode.Of(res.err)
			for _, t := range fr.req.Topics {
				for _, p := range t.Partitions {
					c.client.onPartitionError(string(t.Name), p.Partition, code, proto.NoLeader)
				}
			}
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
