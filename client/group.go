package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// A Consumer with ConsumerOptions.Group that subscribes is a member of its group: Kafka's classic
// consumer protocol (eager rebalancing, the range assignor run by the leader member), over the
// binary protocol's JoinGroup, SyncGroup, Heartbeat and LeaveGroup.
//
// Poll drives the membership: it joins, and rejoins when told to, before it fetches. A rejoin
// first revokes every partition (committing their positions when AutoCommit is on, then calling
// OnRevoke), then joins and syncs, then takes the new assignment (OnAssign). A goroutine
// heartbeats every HeartbeatInterval while the member is in a generation; when the
// coordinator answers that the group rebalances or that the membership is gone, it marks the
// member for a rejoin and wakes a Poll waiting for records. Join, sync, heartbeat, leave and
// member commits go to the group's coordinator on a connection of the consumer's own: a
// JoinGroup is held by the coordinator until every member has rejoined, and must not delay other
// requests of the client (another consumer's heartbeats among them).

// offsetsTopic is the internal topic whose partitions place groups on coordinators.
const offsetsTopic = "__consumer_offsets"

// groupAttempts bounds the retries of a member's commit.
const groupAttempts = 10

// consumerIDs numbers the consumers of this process, for their group connections.
var consumerIDs atomic.Uint64

// groupPartition is where Kafka places a group: abs(Java's String.hashCode) % partitions.
func groupPartition(group string, partitions int) int {
	var h int32
	for _, r := range group {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	switch {
	case h == math.MinInt32:
		h = 0 // Kafka's Utils.abs
	case h < 0:
		h = -h
	}
	return int(h) % partitions
}

// coordinatorAddr finds the broker that coordinates group: the leader of its partition of the
// offsets topic, as Kafka places groups (the binary protocol's FindCoordinator is its Metadata).
// Any broker when metadata has no offsets topic.
func (c *Client) coordinatorAddr(ctx context.Context, group string) (string, error) {
	tm, err := c.topicMetadata(ctx, offsetsTopic, false)
	switch {
	case err == nil && len(tm.info.Partitions) > 0:
		c.mu.Lock()
		id := tm.info.Partitions[groupPartition(group, len(tm.info.Partitions))].Leader
		addr, ok := c.brokers[id]
		c.mu.Unlock()
		if id >= 0 && ok {
			return addr, nil
		}
		c.invalidate(offsetsTopic)
		return "", &errcode.Error{Code: errcode.CoordinatorNotAvailable, Message: fmt.Sprintf("group %s: its offsets partition has no leader", group)}
	case err != nil && errcode.Of(err) != errcode.UnknownTopicOrPartition:
		return "", err
	}
	// No offsets topic yet (a single node has one from its start; a cluster creates it in the
	// background): any broker, which answers NOT_COORDINATOR (and the topic's metadata is
	// looked up again) until it coordinates the group.
	b, err := c.anyBroker(ctx)
	if err != nil {
		return "", err
	}
	return b.addr, nil
}

// dropConn closes the connection stored under key and forgets it.
func (c *Client) dropConn(key string) {
	c.mu.Lock()
	b := c.conns[key]
	delete(c.conns, key)
	c.mu.Unlock()
	if b != nil {
		b.close()
	}
}

// membership is a Consumer's membership of its group.
type membership struct {
	c          *Consumer
	group      string
	instanceID *string
	connKey    string // prefix of the consumer's own coordinator connection
	log        *zap.Logger

	// stopCtx ends with Close: it bounds the heartbeat goroutine's requests.
	stopCtx context.Context
	stop    context.CancelFunc
	wake    chan struct{} // the heartbeat goroutine asks a waiting Poll to rejoin (buffered 1)
	done    chan struct{} // closed when the heartbeat goroutine ends

	mu          sync.Mutex // guards the fields below
	memberID    string
	generation  int32 // -1 while not in a generation
	leader      bool
	joining     bool // a JoinGroup or SyncGroup is in flight: no heartbeats
	rejoin      bool // the group rebalances, or the membership was lost: the next Poll rejoins
	lost        bool // the generation is gone (the member was removed or fenced): nothing to commit with it
	fatal       error
	closed      bool
	coordinator string           // address, "" until looked up
	joinedWith  []string         // the subscription the member joined with, sorted
	groupTopics map[string]int32 // the leader's: partition counts the assignment was computed from
	checkedAt   time.Time        // the leader's last look at groupTopics
	beating     bool             // the heartbeat goroutine runs
	// lastGeneration is the last generation the member was in, for its subscription.
	lastGeneration int32

	// pending is the JoinGroup or SyncGroup Poll left waiting (Poll's goroutine only).
	pending *pendingCall
}

func newMembership(c *Consumer) *membership {
	ctx, cancel := context.WithCancel(context.Background())
	m := &membership{
		c:          c,
		group:      c.opts.Group,
		connKey:    "group-" + strconv.FormatUint(consumerIDs.Add(1), 10),
		log:        c.client.log.With(zap.String("group", c.opts.Group)),
		stopCtx:    ctx,
		stop:       cancel,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		generation: -1,

		lastGeneration: -1,
	}
	if c.opts.InstanceID != "" {
		id := c.opts.InstanceID
		m.instanceID = &id
	}
	return m
}

// state is a snapshot of the membership.
func (m *membership) state() (memberID string, generation int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memberID, m.generation
}

// coordinatorConn returns the consumer's connection to the group's coordinator, looking the
// coordinator up when it is not known. After Close only Close's own requests may use it.
func (m *membership) coordinatorConn(ctx context.Context, closing bool) (*brokerConn, error) {
	m.mu.Lock()
	addr, closed := m.coordinator, m.closed
	m.mu.Unlock()
	if closed && !closing {
		return nil, ErrClosed
	}
	if addr == "" {
		var err error
		if addr, err = m.c.client.coordinatorAddr(ctx, m.group); err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.coordinator = addr
		m.mu.Unlock()
	}
	return m.c.client.connFor(m.connKey+"|"+addr, addr)
}

// forgetCoordinator drops the coordinator after an error that says it moved or failed; the next
// request looks it up again on a new connection.
func (m *membership) forgetCoordinator() {
	m.mu.Lock()
	addr := m.coordinator
	m.coordinator = ""
	m.mu.Unlock()
	m.c.client.invalidate(offsetsTopic)
	if addr != "" {
		m.c.client.dropConn(m.connKey + "|" + addr)
	}
}

// coordinatorMoved reports the codes after which the coordinator must be looked up again.
func coordinatorMoved(err error) bool {
	switch errcode.Of(err) {
	case errcode.NotCoordinator, errcode.CoordinatorNotAvailable, errcode.NetworkException, errcode.RequestTimedOut:
		return true
	}
	return false
}

// groupRoundTrip sends one group request to the coordinator and returns the response body.
func (m *membership) groupRoundTrip(ctx context.Context, key, version int16, body func([]byte) []byte, wait time.Duration, closing bool) ([]byte, *brokerConn, error) {
	b, err := m.coordinatorConn(ctx, closing)
	if err != nil {
		return nil, nil, err
	}
	resp, err := b.roundTripVersion(ctx, key, version, body, wait)
	if err != nil && coordinatorMoved(err) {
		m.forgetCoordinator()
	}
	return resp, b, err
}

// onMemberError applies what a group error in a response to a request of generation says about
// the membership. It reports whether the member must rejoin.
func (m *membership) onMemberError(code errcode.Code, generation int32, msg string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if generation != m.generation || m.joining {
		return false // an answer about a generation the member has left already
	}
	switch code {
	case errcode.RebalanceInProgress:
		m.rejoin = true
	case errcode.IllegalGeneration:
		m.rejoin, m.lost = true, true
	case errcode.UnknownMemberID:
		m.rejoin, m.lost = true, true
		m.memberID = ""
	case errcode.FencedInstanceID:
		m.rejoin, m.lost = true, true
		m.fatal = &errcode.Error{Code: code, Message: fmt.Sprintf("group %s: another consumer has instance id %s: %s", m.group, stringOr(m.instanceID), msg)}
	default:
		return false
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

func stringOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// needsJoin reports whether Poll must (re)join before fetching, and the error that ends the
// membership for good.
func (m *membership) needsJoin(subscribed []string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fatal != nil {
		return false, m.fatal
	}
	if m.generation >= 0 && !m.rejoin && !slices.Equal(subscribed, m.joinedWith) {
		m.rejoin = true // the subscription changed
	}
	return m.generation < 0 || m.rejoin, nil
}

// ensureActive makes the consumer a member of a current generation with its assignment, joining
// or rejoining as needed. It runs on Poll's goroutine.
func (m *membership) ensureActive(ctx context.Context) error {
	subscribed := m.c.subscription()
	need, err := m.needsJoin(subscribed)
	if err != nil || !need {
		return err
	}
	m.c.revokeForRejoin(ctx)
	oldID, _ := m.state()
	tps, generation, err := m.joinAndSync(ctx, subscribed)
	if err != nil {
		return err
	}
	newID, _ := m.state()
	m.c.takeAssignment(tps, generation, oldID != "" && oldID == newID)
	m.mu.Lock()
	start := !m.beating && !m.closed
	m.beating = m.beating || start
	m.mu.Unlock()
	if start {
		go m.heartbeatLoop()
	}
	return nil
}

// pendingCall is a JoinGroup or SyncGroup the coordinator has not answered yet when Poll's
// context ended: the next Poll waits for its answer rather than sending another (which would
// only make the coordinator answer the first with an error, or fence it for a static member).
// Only Poll's goroutine touches it.
type pendingCall struct {
	key        int16
	conn       *brokerConn
	result     chan callResult // buffered: the answer never waits for a reader
	subscribed []string        // a JoinGroup's subscription
	join       *proto.JoinGroupResponse
}

type callResult struct {
	body []byte
	err  error
}

// call sends a JoinGroup or SyncGroup, or resumes waiting for the one in flight.
func (m *membership) call(ctx context.Context, p *pendingCall, body func([]byte) []byte) ([]byte, *brokerConn, error) {
	if m.pending == nil || m.pending.key != p.key || !slices.Equal(m.pending.subscribed, p.subscribed) {
		m.pending = nil
		b, err := m.coordinatorConn(ctx, false)
		if err != nil {
			return nil, nil, err
		}
		result := make(chan callResult, 1)
		p.conn, p.result = b, result
		// The coordinator holds a JoinGroup until every member has rejoined, and a follower's
		// SyncGroup until the leader's: at most the rebalance timeout.
		err = b.sendVersion(ctx, p.key, proto.Version, body, m.c.opts.RebalanceTimeout, true, func(body []byte, err error) {
			result <- callResult{body, err}
		})
		if err != nil {
			if coordinatorMoved(err) {
				m.forgetCoordinator()
			}
			return nil, b, err
		}
		m.pending = p
	}
	inFlight := m.pending
	select {
	case r := <-inFlight.result:
		m.pending = nil
		if r.err != nil && coordinatorMoved(r.err) {
			m.forgetCoordinator()
		}
		return r.body, inFlight.conn, r.err
	case <-ctx.Done():
		return nil, inFlight.conn, ctx.Err()
	}
}

// joinAndSync runs JoinGroup and SyncGroup until the member has an assignment in a generation, a
// fatal error, or ctx ends.
func (m *membership) joinAndSync(ctx context.Context, subscribed []string) ([]TopicPartition, int32, error) {
	m.mu.Lock()
	previous := m.generation
	if previous < 0 {
		previous = m.lastGeneration
	}
	m.joining, m.generation, m.leader = true, -1, false
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.joining = false
		m.mu.Unlock()
	}()
	opts := &m.c.opts
	meta := appendSubscription(nil, &subscription{Topics: subscribed, Generation: previous})
	backoff := 50 * time.Millisecond
	pause := func() error {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	// retry reports whether a failed JoinGroup or SyncGroup round trip is worth sending again.
	retry := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrClosed) || !retryable(err) {
			return m.fail(what, err)
		}
		return pause()
	}
	for {
		if m.c.isClosed() {
			return nil, -1, ErrClosed
		}
		var jr *proto.JoinGroupResponse
		if m.pending != nil && m.pending.key == proto.KeySyncGroup {
			jr = m.pending.join // a SyncGroup of this join is in flight: wait for it
		} else {
			m.mu.Lock()
			memberID := m.memberID
			m.mu.Unlock()
			join := proto.JoinGroupRequest{
				Group:              m.group,
				SessionTimeoutMs:   int32(opts.SessionTimeout / time.Millisecond),
				RebalanceTimeoutMs: int32(opts.RebalanceTimeout / time.Millisecond),
				MemberID:           memberID,
				InstanceID:         m.instanceID,
				ClientID:           m.c.client.opts.ClientID,
				ProtocolType:       ConsumerProtocolType,
				Protocols:          []proto.JoinGroupProtocol{{Name: RangeAssignor, Metadata: meta}},
			}
			body, b, err := m.call(ctx, &pendingCall{key: proto.KeyJoinGroup, subscribed: subscribed}, join.AppendTo)
			if err != nil {
				if err := retry("JoinGroup", err); err != nil {
					return nil, -1, err
				}
				continue
			}
			jr = new(proto.JoinGroupResponse)
			if err := jr.ReadFrom(body); err != nil {
				return nil, -1, b.brokerError(fmt.Errorf("%w: JoinGroup: %v", errProtocol, err))
			}
			switch code := errcode.Code(jr.ErrorCode); code {
			case errcode.None:
			case errcode.MemberIDRequired:
				m.setMemberID(jr.MemberID)
				continue
			case errcode.UnknownMemberID:
				m.setMemberID("")
				continue
			case errcode.RebalanceInProgress, errcode.IllegalGeneration:
				continue
			case errcode.CoordinatorLoadInProgress, errcode.CoordinatorNotAvailable, errcode.NotCoordinator:
				if code != errcode.CoordinatorLoadInProgress {
					m.forgetCoordinator()
				}
				if err := pause(); err != nil {
					return nil, -1, err
				}
				continue
			default:
				return nil, -1, m.fail("JoinGroup", b.brokerError(&errcode.Error{Code: code, Message: groupMessage(m.group, jr.ErrorMessage)}))
			}
		}
		m.mu.Lock()
		m.memberID = jr.MemberID
		m.leader = jr.Leader == jr.MemberID
		leader := m.leader
		m.mu.Unlock()

		pending := &pendingCall{key: proto.KeySyncGroup, join: jr}
		sync := proto.SyncGroupRequest{
			Group:        m.group,
			Generation:   jr.Generation,
			MemberID:     jr.MemberID,
			InstanceID:   m.instanceID,
			ProtocolType: ConsumerProtocolType,
			ProtocolName: jr.ProtocolName,
		}
		if leader && !jr.SkipAssignment && m.pending == nil {
			var err error
			if sync.Assignments, err = m.assign(ctx, jr.Members); err != nil {
				if ctx.Err() != nil {
					return nil, -1, ctx.Err()
				}
				m.log.Debug("assignment failed, rejoining", zap.Error(err))
				if err := pause(); err != nil {
					return nil, -1, err
				}
				continue
			}
		}
		body, b, err := m.call(ctx, pending, sync.AppendTo)
		if err != nil {
			if err := retry("SyncGroup", err); err != nil {
				return nil, -1, err
			}
			continue
		}
		var sr proto.SyncGroupResponse
		if err := sr.ReadFrom(body); err != nil {
			return nil, -1, b.brokerError(fmt.Errorf("%w: SyncGroup: %v", errProtocol, err))
		}
		switch code := errcode.Code(sr.ErrorCode); code {
		case errcode.None:
		case errcode.UnknownMemberID:
			m.setMemberID("")
			continue
		case errcode.RebalanceInProgress, errcode.IllegalGeneration:
			continue
		case errcode.CoordinatorLoadInProgress, errcode.CoordinatorNotAvailable, errcode.NotCoordinator:
			if code != errcode.CoordinatorLoadInProgress {
				m.forgetCoordinator()
			}
			if err := pause(); err != nil {
				return nil, -1, err
			}
			continue
		default:
			return nil, -1, m.fail("SyncGroup", b.brokerError(&errcode.Error{Code: code, Message: groupMessage(m.group, sr.ErrorMessage)}))
		}
		tps, err := readAssignment(sr.Assignment)
		if err != nil {
			return nil, -1, b.brokerError(err)
		}
		m.mu.Lock()
		m.generation, m.lastGeneration = jr.Generation, jr.Generation
		m.rejoin, m.lost = false, false
		m.joinedWith = subscribed
		m.mu.Unlock()
		select {
		case <-m.wake: // asked for the generation just left
		default:
		}
		m.log.Debug("joined", zap.String("member", jr.MemberID), zap.Int32("generation", jr.Generation),
			zap.Bool("leader", leader), zap.Int("partitions", len(tps)))
		return tps, jr.Generation, nil
	}
}

func (m *membership) setMemberID(id string) {
	m.mu.Lock()
	m.memberID = id
	m.mu.Unlock()
}

// fail records a join error that ends the membership for good (it is returned by every Poll
// from now on), and returns err.
func (m *membership) fail(what string, err error) error {
	switch errcode.Of(err) {
	case errcode.InvalidGroupID, errcode.InvalidSessionTimeout, errcode.InconsistentGroupProtocol,
		errcode.FencedInstanceID, errcode.GroupMaxSizeReached, errcode.UnsupportedVersion:
		err = fmt.Errorf("client: group %s: %s: %w", m.group, what, err)
		m.mu.Lock()
		m.fatal = err
		m.mu.Unlock()
	}
	return err
}

func groupMessage(group, msg string) string {
	if msg == "" {
		return "group " + group
	}
	return "group " + group + ": " + msg
}

// assign is the leader's range assignment of every member's subscription, from fresh metadata.
func (m *membership) assign(ctx context.Context, members []proto.JoinGroupMember) ([]proto.SyncGroupAssignment, error) {
	rms := make([]rangeMember, len(members))
	counts := map[string]int32{}
	for i, jm := range members {
		rms[i] = rangeMember{MemberID: jm.MemberID, InstanceID: jm.InstanceID}
		sub, err := readSubscription(jm.Metadata)
		if err != nil {
			// A member whose subscription does not decode is assigned nothing.
			m.log.Warn("a member's subscription does not decode", zap.String("member", jm.MemberID), zap.Error(err))
			continue
		}
		rms[i].Topics = sub.Topics
		for _, t := range sub.Topics {
			counts[t] = 0
		}
	}
	for t := range counts {
		m.c.client.invalidate(t)
		n, err := m.c.client.partitionCount(ctx, t, false)
		if err != nil && errcode.Of(err) != errcode.UnknownTopicOrPartition {
			return nil, err
		}
		counts[t] = n
	}
	plan := rangeAssign(rms, counts)
	out := make([]proto.SyncGroupAssignment, 0, len(members))
	for _, jm := range members {
		out = append(out, proto.SyncGroupAssignment{MemberID: jm.MemberID, Assignment: appendAssignment(nil, plan[jm.MemberID])})
	}
	m.mu.Lock()
	m.groupTopics, m.checkedAt = counts, time.Now()
	m.mu.Unlock()
	return out, nil
}

// checkMetadata is the leader's watch on the group's topics: when one of them changed its
// partition count since the assignment, the group rebalances (the leader rejoins).
func (m *membership) checkMetadata(ctx context.Context) {
	m.mu.Lock()
	due := m.leader && m.generation >= 0 && !m.rejoin && time.Since(m.checkedAt) > m.c.client.opts.MetadataMaxAge
	topics := make([]string, 0, len(m.groupTopics))
	for t := range m.groupTopics {
		topics = append(topics, t)
	}
	counts := m.groupTopics
	m.mu.Unlock()
	if !due {
		return
	}
	sort.Strings(topics)
	changed := false
	for _, t := range topics {
		m.c.client.invalidate(t)
		n, err := m.c.client.partitionCount(ctx, t, false)
		if err != nil && errcode.Of(err) != errcode.UnknownTopicOrPartition {
			return // looked at again next time
		}
		changed = changed || n != counts[t]
	}
	m.mu.Lock()
	m.checkedAt = time.Now()
	if changed {
		m.rejoin = true
	}
	m.mu.Unlock()
}

// heartbeatLoop heartbeats every HeartbeatInterval until Close.
func (m *membership) heartbeatLoop() {
	defer close(m.done)
	interval := max(m.c.opts.HeartbeatInterval, time.Millisecond)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stopCtx.Done():
			return
		case <-t.C:
		}
		m.heartbeat()
		t.Reset(interval)
	}
}

// heartbeat sends one Heartbeat while the member is in a generation.
func (m *membership) heartbeat() {
	m.mu.Lock()
	if m.joining || m.generation < 0 || m.fatal != nil || m.closed {
		m.mu.Unlock()
		return
	}
	req := proto.HeartbeatRequest{Group: m.group, Generation: m.generation, MemberID: m.memberID, InstanceID: m.instanceID}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.stopCtx, m.c.opts.SessionTimeout)
	defer cancel()
	body, _, err := m.groupRoundTrip(ctx, proto.KeyHeartbeat, proto.Version, req.AppendTo, 0, false)
	if err != nil {
		m.log.Debug("heartbeat failed", zap.Error(err))
		return
	}
	var resp proto.HeartbeatResponse
	if err := resp.ReadFrom(body); err != nil {
		m.log.Debug("heartbeat response does not decode", zap.Error(err))
		return
	}
	code := errcode.Code(resp.ErrorCode)
	switch code {
	case errcode.None, errcode.CoordinatorLoadInProgress:
	case errcode.NotCoordinator, errcode.CoordinatorNotAvailable:
		m.forgetCoordinator()
	default:
		if m.onMemberError(code, req.Generation, resp.ErrorMessage) {
			m.log.Debug("rejoining", zap.Stringer("reason", code))
		}
	}
}

// commit commits offsets as a member of the current generation (OffsetCommit version 2).
func (m *membership) commit(ctx context.Context, offsets map[TopicPartition]int64, closing bool) error {
	m.mu.Lock()
	generation, memberID := m.generation, m.memberID
	m.mu.Unlock()
	if generation < 0 {
		return &errcode.Error{Code: errcode.RebalanceInProgress, Message: fmt.Sprintf("group %s: the consumer is not in a generation (it is joining)", m.group)}
	}
	req := proto.OffsetCommitRequest{Version: 2, Group: m.group, Generation: generation, MemberID: memberID, InstanceID: m.instanceID,
		Topics: commitTopics(offsets)}
	return retry(ctx, groupAttempts, func() error {
		body, b, err := m.groupRoundTrip(ctx, proto.KeyOffsetCommit, 2, req.AppendTo, 0, closing)
		if err != nil {
			return err
		}
		var resp proto.OffsetCommitResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: OffsetCommit: %v", errProtocol, err))
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					continue
				}
				code := errcode.Code(p.ErrorCode)
				m.onMemberError(code, generation, p.ErrorMessage)
				if code == errcode.NotCoordinator || code == errcode.CoordinatorNotAvailable {
					m.forgetCoordinator()
				}
				return b.brokerError(&errcode.Error{Code: code, Message: fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage)})
			}
		}
		return nil
	})
}

// commitTopics groups offsets by topic, in topic and partition order.
func commitTopics(offsets map[TopicPartition]int64) []proto.OffsetCommitTopic {
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	sortPartitions(tps)
	var topics []proto.OffsetCommitTopic
	for _, tp := range tps {
		if len(topics) == 0 || topics[len(topics)-1].Name != tp.Topic {
			topics = append(topics, proto.OffsetCommitTopic{Name: tp.Topic})
		}
		t := &topics[len(topics)-1]
		t.Partitions = append(t.Partitions, proto.OffsetCommitPartition{Partition: tp.Partition, Offset: offsets[tp]})
	}
	return topics
}

func sortPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		a, b := tps[i], tps[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
}

// close ends the membership: heartbeats stop, a JoinGroup or SyncGroup in flight fails, and a
// dynamic member leaves the group (a static one keeps its place until its session times out, as
// Kafka's static members do). commit, when not nil, runs first, while the member still is one.
func (m *membership) close(commit func(ctx context.Context) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	beating := m.beating
	addr := m.coordinator
	m.mu.Unlock()
	m.stop()
	if beating {
		<-m.done
	}
	if addr != "" {
		// Fails a JoinGroup or SyncGroup that Poll may be waiting in.
		m.c.client.dropConn(m.connKey + "|" + addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.c.client.opts.RequestTimeout)
	defer cancel()
	var errs []error
	if commit != nil {
		errs = append(errs, commit(ctx))
	}
	errs = append(errs, m.leave(ctx))
	m.mu.Lock()
	addr = m.coordinator
	m.mu.Unlock()
	if addr != "" {
		m.c.client.dropConn(m.connKey + "|" + addr)
	}
	return errors.Join(errs...)
}

// leave sends LeaveGroup for a dynamic member.
func (m *membership) leave(ctx context.Context) error {
	m.mu.Lock()
	memberID := m.memberID
	m.generation, m.memberID = -1, ""
	m.mu.Unlock()
	if memberID == "" || m.instanceID != nil {
		return nil
	}
	req := proto.LeaveGroupRequest{Group: m.group, Members: []proto.LeaveGroupMember{{MemberID: memberID, Reason: "the consumer is closing"}}}
	return retry(ctx, adminAttempts, func() error {
		body, b, err := m.groupRoundTrip(ctx, proto.KeyLeaveGroup, proto.Version, req.AppendTo, 0, true)
		if err != nil {
			return err
		}
		var resp proto.LeaveGroupResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: LeaveGroup: %v", errProtocol, err))
		}
		code := errcode.Code(resp.ErrorCode)
		msg := resp.ErrorMessage
		if code == errcode.None && len(resp.Members) > 0 {
			code, msg = errcode.Code(resp.Members[0].ErrorCode), resp.Members[0].ErrorMessage
		}
		switch code {
		case errcode.None, errcode.UnknownMemberID:
			return nil // gone already: its session expired
		case errcode.NotCoordinator, errcode.CoordinatorNotAvailable:
			m.forgetCoordinator()
		}
		return b.brokerError(&errcode.Error{Code: code, Message: groupMessage(m.group, msg)})
	})
}

// canCommit reports whether the member is in a generation it has not lost.
func (m *membership) canCommit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generation >= 0 && !m.lost
}
