package groups

// The coordinator runtime: one goroutine per __consumer_offsets partition this node hosts (leads),
// each owning the Shard of that partition. A goroutine replays its partition first, then serves,
// one at a time, the requests routed to it through a bounded queue, the shard's timers (from
// Shard.NextTimer) and the completions of its appends (Persisted, in append order). Requests
// never block their caller: one that finds its partition hosted elsewhere (NOT_COORDINATOR), its
// shard loading, its queue full or the coordinator closed is answered at once, on the caller's
// goroutine, with a retriable error; every other reply runs on the shard's goroutine. A partition
// that moves to another node is unloaded: what its shard holds is answered NOT_COORDINATOR and
// its goroutine ends. Group count never drives goroutine count.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
)

// OffsetsLog is the offsets topic as the coordinator sees it (backed by cluster replicas).
type OffsetsLog interface {
	// Append appends one record batch (uncompressed RecordBatch v2 built with batch.Builder, keys
	// and values from records.go, nil value = tombstone) to partition and calls done once it is
	// durable (fsync on one node; later: below the high watermark) or failed. Never blocks. The
	// batch belongs to the log until done; done may run on any goroutine (also before Append
	// returns) and must not block.
	Append(partition int32, batch []byte, done func(error))
	// Replay calls fn with every batch of partition from its log start to its end, at start-up.
	Replay(partition int32, fn func(batch []byte) error) error
}

// CoordinatorOptions configures a Coordinator.
type CoordinatorOptions struct {
	// Partitions is the offsets topic's partition count: one shard each. It must never change for
	// a data directory, since it places groups (PartitionFor). Default 1.
	Partitions int32
	// Config configures every shard (zero fields: DefaultConfig's).
	Config Config
	// Log is the offsets topic. Required.
	Log OffsetsLog
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default none.
	Logger *zap.Logger
	// Unhosted starts the coordinator hosting no partition: SetHosted hosts each one this node
	// leads, as a node of a cluster does. By default every partition is hosted from the start
	// (a single node leads them all).
	Unhosted bool
	// WantLog, when set, is called (it must not block) when a client looks for a group's
	// coordinator and the offsets topic does not exist yet: it has the topic created.
	WantLog func()
}

// OffsetsTopic is the internal topic that holds committed offsets and group metadata.
const OffsetsTopic = "__consumer_offsets"

// MaxMetadataBytes bounds the metadata string a commit may carry (Kafka's
// offset.metadata.max.bytes default).
const MaxMetadataBytes = 4096

// Runtime limits.
const (
	// shardQueueSize bounds the requests waiting for one shard; beyond it requests are answered
	// COORDINATOR_NOT_AVAILABLE, which clients retry.
	shardQueueSize = 1024
	// maxReplayBatchBytes bounds a compressed batch's records once decompressed during replay.
	maxReplayBatchBytes = 64 << 20
	// replayRetryMin and replayRetryMax bound the wait before a failed replay is tried again.
	replayRetryMin = 200 * time.Millisecond
	replayRetryMax = 30 * time.Second
	// unloadWait bounds how long a shard that lost its partition waits for the appends the log
	// has not answered yet, so that commits made durable meanwhile are answered as done.
	unloadWait = 5 * time.Second
)

// Errors of the runtime.
var (
	// ErrReplay wraps what went wrong replaying an offsets partition.
	ErrReplay = errors.New("groups: replaying the offsets topic")
	// ErrHosted is SetPartitions' answer while some partition is hosted.
	ErrHosted = errors.New("groups: the offsets partitions are hosted: their count cannot change")
)

// Coordinator is the group coordinator of this node: the shards of the offsets partitions it
// hosts, routed to by group id. A partition is hosted while this node leads it (SetHosted): its
// shard replays it first (requests meanwhile: COORDINATOR_LOAD_IN_PROGRESS), and a request for a
// group of a partition not hosted here is answered NOT_COORDINATOR, so that clients look the
// coordinator up again. A nil *Coordinator is a broker without one: it answers every request
// COORDINATOR_NOT_AVAILABLE (at once, on the caller's goroutine), is never Ready and ignores
// DeleteTopic, SetHosted and Close.
type Coordinator struct {
	logger  *zap.Logger
	cfg     Config
	log     OffsetsLog
	now     func() time.Time
	wantLog func()
	// unloadWait is unloadWait (tests shorten it).
	unloadWait time.Duration

	// mu orders request submission against hosting changes and Close: submissions hold the read
	// side while they look their runner up and enqueue, so once a runner is no longer its
	// partition's (or the coordinator is closed) no request enters its queue, and the runner's
	// final drain answers every queued one.
	mu      sync.RWMutex
	closed  bool
	slots   []slot // by offsets partition
	closing chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// slot is one offsets partition's hosting.
type slot struct {
	// runner serves the partition; nil while it is not hosted.
	runner *shardRunner
	// last is the latest runner started for the partition (it may still be unloading): the next
	// one replays only once it has finished.
	last *shardRunner
}

// NewCoordinator returns a coordinator over Partitions offsets partitions. Unless Unhosted, it
// hosts every one of them at once: one goroutine each (a shard), which replays its partition
// first.
func NewCoordinator(o CoordinatorOptions) *Coordinator {
	if o.Partitions <= 0 {
		o.Partitions = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	c := &Coordinator{logger: o.Logger, cfg: o.Config, log: o.Log, now: o.Now, wantLog: o.WantLog, unloadWait: unloadWait,
		slots: make([]slot, o.Partitions), closing: make(chan struct{})}
	if !o.Unhosted {
		for p := range o.Partitions {
			c.SetHosted(p, true)
		}
	}
	return c
}

func (c *Coordinator) newRunner(p int32, prev *shardRunner) *shardRunner {
	return &shardRunner{
		c:         c,
		partition: p,
		cfg:       c.cfg,
		log:       c.log,
		now:       c.now,
		logger:    c.logger.With(zap.Int32("offsets_partition", p)),
		requests:  make(chan shardRequest, shardQueueSize),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		prev:      prev,
		results:   map[uint64]error{},
	}
}

// SetHosted makes this node host offsets partition p (it leads it: its shard replays the
// partition, then serves its groups) or stop hosting it (another node leads it: its groups'
// waiting requests are answered NOT_COORDINATOR and its state is dropped). It never blocks; a
// partition out of range is ignored. A partition hosted again replays once the shard that
// hosted it before has finished.
func (c *Coordinator) SetHosted(p int32, hosted bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || p < 0 || int(p) >= len(c.slots) {
		return
	}
	s := &c.slots[p]
	switch {
	case hosted && s.runner == nil:
		r := c.newRunner(p, s.last)
		s.runner, s.last = r, r
		c.wg.Add(1)
		go r.run()
	case !hosted && s.runner != nil:
		close(s.runner.stop)
		s.runner = nil
	}
}

// Hosted reports whether offsets partition p is hosted here (loaded or loading).
func (c *Coordinator) Hosted(p int32) bool {
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return p >= 0 && int(p) < len(c.slots) && c.slots[p].runner != nil
}

// SetPartitions changes the number of offsets partitions, which places the groups: only while
// none is hosted (a node of a cluster that started before the offsets topic existed learns its
// count from the metadata). ErrHosted otherwise.
func (c *Coordinator) SetPartitions(n int32) error {
	if c == nil || n <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if int(n) == len(c.slots) {
		return nil
	}
	for _, s := range c.slots {
		if s.runner != nil || s.last != nil && !isClosed(s.last.done) {
			return ErrHosted
		}
	}
	c.slots = make([]slot, n)
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// WantLog asks for the offsets topic to be created (a client looked for a coordinator before it
// existed). It never blocks.
func (c *Coordinator) WantLog() {
	if c != nil && c.wantLog != nil {
		c.wantLog()
	}
}

// Closing is closed once Close has begun (never for a nil Coordinator).
func (c *Coordinator) Closing() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.closing
}

// PartitionFor is the offsets partition of group: abs(javaStringHash(group)) % Partitions, as
// Kafka places groups, so Kafka tools agree on where a group lives.
func (c *Coordinator) PartitionFor(group string) int32 {
	if c == nil {
		return 0
	}
	return partitionFor(group, c.Partitions())
}

// PartitionOf is the offsets partition of group among partitions (Kafka's placement).
func PartitionOf(group string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	return partitionFor(group, partitions)
}

// Partitions is the number of offsets partitions (shards).
func (c *Coordinator) Partitions() int32 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return int32(len(c.slots))
}

// Ready reports whether every hosted shard has loaded its partition (true when none is hosted).
func (c *Coordinator) Ready() bool {
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.slots {
		if s.runner != nil && !s.runner.loaded.Load() {
			return false
		}
	}
	return true
}

func partitionFor(group string, partitions int32) int32 {
	h := javaStringHash(group)
	// Kafka's Utils.abs: the absolute value, 0 for MinInt32.
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// javaStringHash is Java's String.hashCode over the string's UTF-16 code units (Kafka decodes the
// group id's UTF-8 into a Java String; Go's range yields U+FFFD for invalid bytes, as Java's
// decoder does for each malformed sequence in the common cases).
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return h
}

// Join handles a JoinGroup request.
func (c *Coordinator) Join(r JoinRequest, reply func(JoinResponse)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.Join(now, r, reply) },
		func(code errcode.Code) { reply(JoinResponse{ErrorCode: code, Generation: -1, MemberID: r.MemberID}) })
}

// Sync handles a SyncGroup request.
func (c *Coordinator) Sync(r SyncRequest, reply func(SyncResponse)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.Sync(now, r, reply) },
		func(code errcode.Code) { reply(SyncResponse{ErrorCode: code}) })
}

// Heartbeat handles a Heartbeat request.
func (c *Coordinator) Heartbeat(r HeartbeatRequest, reply func(errcode.Code)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.Heartbeat(now, r, reply) }, reply)
}

// Leave handles a LeaveGroup request.
func (c *Coordinator) Leave(r LeaveRequest, reply func(LeaveResponse)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.Leave(now, r, reply) },
		func(code errcode.Code) { reply(LeaveResponse{ErrorCode: code}) })
}

// CommitOffsets handles an OffsetCommit request.
func (c *Coordinator) CommitOffsets(r CommitRequest, reply func(CommitResponse)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.CommitOffsets(now, r, reply) },
		func(code errcode.Code) { reply(commitResponse(&r, code)) })
}

// FetchOffsets handles an OffsetFetch request for one group.
func (c *Coordinator) FetchOffsets(r FetchRequest, reply func(FetchResponse)) {
	c.submit(r.Group, func(s *Shard, now time.Time) { s.FetchOffsets(now, r, reply) },
		func(code errcode.Code) { reply(FetchResponse{ErrorCode: code}) })
}

// Describe handles one group of a DescribeGroups request.
func (c *Coordinator) Describe(group string, reply func(DescribedGroup)) {
	c.submit(group, func(s *Shard, now time.Time) { reply(s.Describe(now, group)) },
		func(code errcode.Code) { reply(DescribedGroup{ErrorCode: code, Group: group}) })
}

// List handles a ListGroups request: the groups of every hosted shard in id order (those in one
// of states, case-insensitive, when states is not empty). The code is the first error a shard
// gave (COORDINATOR_LOAD_IN_PROGRESS while one loads), with the groups of the others.
func (c *Coordinator) List(states []string, reply func([]ListedGroup, errcode.Code)) {
	if c == nil {
		reply(nil, errcode.CoordinatorNotAvailable)
		return
	}
	run := func(g *listGather) func(*Shard, time.Time) {
		return func(s *Shard, now time.Time) {
			if !s.Ready() {
				g.add(nil, errcode.CoordinatorLoadInProgress)
				return
			}
			g.add(s.List(now, states), errcode.None)
		}
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		reply(nil, errcode.CoordinatorNotAvailable)
		return
	}
	var hosted []*shardRunner
	for _, s := range c.slots {
		if s.runner != nil {
			hosted = append(hosted, s.runner)
		}
	}
	if len(hosted) == 0 {
		c.mu.RUnlock()
		reply(nil, errcode.None)
		return
	}
	g := &listGather{remaining: len(hosted), reply: reply}
	var refused []errcode.Code
	for _, r := range hosted {
		if code := r.enqueue(run(g), func(code errcode.Code) { g.add(nil, code) }); code != errcode.None {
			refused = append(refused, code)
		}
	}
	c.mu.RUnlock()
	for _, code := range refused {
		g.add(nil, code)
	}
}

// listGather collects the shards' answers to a ListGroups; the last one replies.
type listGather struct {
	mu        sync.Mutex
	remaining int
	groups    []ListedGroup
	code      errcode.Code
	reply     func([]ListedGroup, errcode.Code)
}

func (g *listGather) add(groups []ListedGroup, code errcode.Code) {
	g.mu.Lock()
	g.groups = append(g.groups, groups...)
	if g.code == errcode.None {
		g.code = code
	}
	g.remaining--
	last := g.remaining == 0
	g.mu.Unlock()
	if last {
		slices.SortFunc(g.groups, func(a, b ListedGroup) int {
			switch {
			case a.Group < b.Group:
				return -1
			case a.Group > b.Group:
				return 1
			}
			return 0
		})
		g.reply(g.groups, g.code)
	}
}

// DeleteGroup handles one group of a DeleteGroups request.
func (c *Coordinator) DeleteGroup(group string, reply func(errcode.Code)) {
	c.submit(group, func(s *Shard, now time.Time) { s.DeleteGroup(now, group, reply) }, reply)
}

// DeleteOffsets handles an OffsetDelete request.
func (c *Coordinator) DeleteOffsets(group string, parts []TopicPartition, reply func(OffsetDeleteResponse)) {
	c.submit(group, func(s *Shard, now time.Time) { s.DeleteOffsets(now, group, parts, reply) },
		func(code errcode.Code) { reply(OffsetDeleteResponse{ErrorCode: code}) })
}

// DeleteTopic makes every hosted shard drop the topic's offsets. It never blocks and is never
// refused: a shard still loading drops them once loaded. A shard takes the deletion before any
// request submitted after DeleteTopic returns; the offsets are gone from OffsetFetch once the
// shard's tombstones are durable. (The shards of partitions hosted elsewhere are told by their
// own node.)
func (c *Coordinator) DeleteTopic(topic string) {
	if c == nil {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.slots {
		r := s.runner
		if r == nil {
			continue
		}
		r.mu.Lock()
		r.deletedTopics = append(r.deletedTopics, topic)
		r.topicsPending.Store(true)
		r.mu.Unlock()
		r.signal()
	}
}

// Close stops every shard. Requests still queued are answered COORDINATOR_NOT_AVAILABLE, as are
// those made from now on; replies parked in a shard (a JoinGroup waiting for the rebalance, a
// commit waiting for its append) are not answered: their connections are closing.
func (c *Coordinator) Close() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.closing)
		c.wg.Wait()
	})
}

// submit routes a request to its group's shard: NOT_COORDINATOR when this node does not host the
// group's partition.
func (c *Coordinator) submit(group string, run func(*Shard, time.Time), refuse func(errcode.Code)) {
	if c == nil {
		refuse(errcode.CoordinatorNotAvailable)
		return
	}
	c.mu.RLock()
	var code errcode.Code
	switch {
	case c.closed:
		code = errcode.CoordinatorNotAvailable
	default:
		r := c.slots[partitionFor(group, int32(len(c.slots)))].runner
		if r == nil {
			code = errcode.NotCoordinator
		} else {
			code = r.enqueue(run, refuse)
		}
	}
	c.mu.RUnlock()
	if code != errcode.None {
		refuse(code)
	}
}

// enqueue queues a request for the runner, or says why not (it leaves refuse to the caller, who
// calls it once the coordinator's lock is released). Called with c.mu read-locked, r being its
// partition's runner.
func (r *shardRunner) enqueue(run func(*Shard, time.Time), refuse func(errcode.Code)) errcode.Code {
	if !r.loaded.Load() {
		return errcode.CoordinatorLoadInProgress
	}
	select {
	case r.requests <- shardRequest{run: run, refuse: refuse}:
		return errcode.None
	default:
		return errcode.CoordinatorNotAvailable
	}
}

// shardRequest is one request for a shard: run on its goroutine, or refused with a code.
type shardRequest struct {
	run    func(*Shard, time.Time)
	refuse func(errcode.Code)
}

// completion is the outcome of one append.
type completion struct {
	token uint64
	err   error
}

// shardRunner is the goroutine of one offsets partition while this node hosts it, and what it
// owns. A partition hosted again gets a new runner (and a new shard, replayed from the log).
type shardRunner struct {
	c         *Coordinator
	partition int32
	cfg       Config
	log       OffsetsLog
	now       func() time.Time
	logger    *zap.Logger
	requests  chan shardRequest
	loaded    atomic.Bool
	// stop is closed when the partition is no longer hosted; done once the runner has ended;
	// prev is the runner that hosted the partition before (nil: none), which must end first.
	stop chan struct{}
	done chan struct{}
	prev *shardRunner
	// moved is set once the runner unloads: appends from then on fail at once.
	moved atomic.Bool

	// mu guards what other goroutines hand the runner without blocking: append completions and
	// deleted topics. wake (room for one signal) says there is some.
	mu            sync.Mutex
	completions   []completion
	deletedTopics []string
	topicsPending atomic.Bool // deletedTopics is not empty
	wake          chan struct{}

	// Owned by the runner's goroutine.
	shard   *Shard
	builder batch.Builder
	// appended lists the tokens appended and not yet reported, in append order; results holds
	// the outcomes that arrived ahead of an earlier token's.
	appended []uint64
	results  map[uint64]error
	// eventTime is the time of the event being handled, the timestamp of the batches it appends.
	eventTime time.Time
}

func (r *shardRunner) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *shardRunner) run() {
	defer r.c.wg.Done()
	defer close(r.done)
	if r.prev != nil {
		// The partition's previous shard answers what it holds first: its appends reach the log
		// before this one replays it.
		select {
		case <-r.prev.done:
		case <-r.c.closing:
			return
		case <-r.stop:
			// Unhosted before it began: it still ends after the previous one, so that a runner
			// started after it waits for both.
			select {
			case <-r.prev.done:
			case <-r.c.closing:
			}
			return
		}
		r.prev = nil
	}
	if !r.load() {
		return // closing or unhosted while loading: nothing was queued (requests wait for loaded)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.armTimer(timer)
		select {
		case <-r.c.closing:
			r.drainRequests(errcode.CoordinatorNotAvailable)
			return
		case <-r.stop:
			r.unload()
			return
		case req := <-r.requests:
			if r.topicsPending.Load() {
				r.handOver()
			}
			r.eventTime = r.now()
			req.run(r.shard, r.eventTime)
		case <-r.wake:
			r.handOver()
		case <-timer.C:
			r.eventTime = r.now()
			r.shard.Tick(r.eventTime)
		}
	}
}

// armTimer sets timer to the shard's next deadline, or stops it.
func (r *shardRunner) armTimer(timer *time.Timer) {
	next, ok := r.shard.NextTimer()
	if !ok {
		timer.Stop()
		return
	}
	timer.Reset(max(next.Sub(r.now()), 0))
}

// drainRequests answers every queued request with code, once no more can be queued (the
// coordinator is closed or the partition is no longer hosted).
func (r *shardRunner) drainRequests(code errcode.Code) {
	for {
		select {
		case req := <-r.requests:
			req.refuse(code)
		default:
			return
		}
	}
}

// unload ends the hosting of a partition this node no longer leads: queued requests and the
// JoinGroup and SyncGroup requests parked in the shard are answered NOT_COORDINATOR; the appends the log has not answered yet are waited for (a while), so
// a commit that became durable is answered as done; then the shard answers every request it
// holds NOT_COORDINATOR, and its state is dropped.
func (r *shardRunner) unload() {
	r.moved.Store(true)
	r.drainRequests(errcode.NotCoordinator)
	// Members waiting in a rebalance learn of the move at once.
	r.shard.answerParked()
	if len(r.appended) > 0 {
		deadline := time.NewTimer(r.c.unloadWait)
		defer deadline.Stop()
	wait:
		for len(r.appended) > 0 {
			select {
			case <-r.wake:
				r.handOver()
			case <-deadline.C:
				r.logger.Warn("the offsets log did not answer some appends before the partition moved: their requests are answered NOT_COORDINATOR",
					zap.Int("appends", len(r.appended)))
				break wait
			case <-r.c.closing:
				return
			}
		}
	}
	r.eventTime = r.now()
	r.shard.Unload(r.eventTime)
	r.shard = nil
	r.logger.Info("offsets partition unloaded: another node coordinates its groups")
}

// handOver takes what other goroutines queued: append outcomes, reported to the shard in append
// order, and deleted topics.
func (r *shardRunner) handOver() {
	r.mu.Lock()
	done, topics := r.completions, r.deletedTopics
	r.completions, r.deletedTopics = nil, nil
	r.topicsPending.Store(false)
	r.mu.Unlock()
	if len(done) == 0 && len(topics) == 0 {
		return
	}
	r.eventTime = r.now()
	for _, d := range done {
		r.results[d.token] = d.err
	}
	for len(r.appended) > 0 {
		tok := r.appended[0]
		err, ok := r.results[tok]
		if !ok {
			break
		}
		delete(r.results, tok)
		r.appended = r.appended[1:]
		r.shard.Persisted(r.eventTime, tok, err)
	}
	for _, topic := range topics {
		r.shard.DeleteTopic(r.eventTime, topic)
	}
}

// Append is the shard's Writer: the records become one batch appended to the partition. Once
// the partition moved, the append fails at once (NOT_COORDINATOR for the requests waiting on it).
func (r *shardRunner) Append(records []Record, token uint64) {
	r.appended = append(r.appended, token)
	done := func(err error) {
		r.mu.Lock()
		r.completions = append(r.completions, completion{token: token, err: err})
		r.mu.Unlock()
		r.signal()
	}
	if r.moved.Load() {
		done(errcode.New(errcode.NotLeaderOrFollower, "offsets partition %d moved to another node", r.partition))
		return
	}
	r.builder.Reset()
	ts := r.eventTime.UnixMilli()
	for _, rec := range records {
		r.builder.Append(rec.Key, rec.Value, ts, nil)
	}
	// The log owns its own copy until done: the builder's buffer is reused by the next batch.
	b := slices.Clone(r.builder.Finish())
	r.log.Append(r.partition, b, done)
}

// load replays the partition into a new shard until it succeeds, the coordinator closes or the
// partition is no longer hosted, waiting longer after each failure. It reports whether the shard
// is loaded.
func (r *shardRunner) load() bool {
	wait := replayRetryMin
	for {
		started := r.now()
		shard := NewShard(r.partition, r.cfg, r)
		records, skipped, err := r.replay(shard)
		if err == nil {
			r.shard = shard
			r.eventTime = r.now()
			// Topics deleted while the shard loaded: the shard drops their offsets as it loads.
			r.mu.Lock()
			topics := r.deletedTopics
			r.deletedTopics = nil
			r.topicsPending.Store(false)
			r.mu.Unlock()
			for _, topic := range topics {
				shard.DeleteTopic(r.eventTime, topic)
			}
			shard.Loaded(r.eventTime)
			r.loaded.Store(true)
			r.logger.Debug("offsets partition loaded", zap.Int("records", records), zap.Int("skipped", skipped),
				zap.Duration("took", r.now().Sub(started)))
			return true
		}
		r.logger.Error("could not replay the offsets partition: its groups wait (COORDINATOR_LOAD_IN_PROGRESS) and it is tried again",
			zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-r.c.closing:
			return false
		case <-r.stop:
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, replayRetryMax)
	}
}

// replay feeds every record of the partition to shard. A batch or record that does not decode is
// logged and skipped: the coordinator must start whatever the offsets log holds.
func (r *shardRunner) replay(shard *Shard) (records, skipped int, err error) {
	var scratch []byte
	load := func(rec *batch.Record) error {
		records++
		if err := shard.Load(rec.Key, rec.Value); err != nil {
			skipped++
			r.logger.Warn("skipped an undecodable record of the offsets topic", zap.Error(err))
		}
		return nil
	}
	err = r.log.Replay(r.partition, func(b []byte) error {
		// The CRC first: a batch damaged on disk could otherwise decode as other offsets.
		h, err := batch.ValidateStored(b)
		var section []byte
		if err == nil {
			h, section, err = compress.DecompressBatch(b, scratch[:0], maxReplayBatchBytes)
		}
		if err == nil && h.IsControl() {
			return nil
		}
		if err == nil {
			if h.Codec() != batch.CodecNone {
				scratch = section
			}
			err = batch.DecodeRecords(&h, section, load)
		}
		if err != nil {
			skipped++
			r.logger.Warn("skipped an undecodable batch of the offsets topic", zap.Int64("offset", h.BaseOffset), zap.Error(err))
		}
		return nil
	})
	if err != nil {
		return records, skipped, fmt.Errorf("%w: partition %d: %w", ErrReplay, r.partition, err)
	}
	return records, skipped, nil
}
