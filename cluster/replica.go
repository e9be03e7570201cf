package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/partition"
)

// ErrInboxFull is returned by Submit when a partition's writer is behind: the caller answers with
// a retryable error instead of blocking an event loop.
var ErrInboxFull = errcode.New(errcode.RequestTimedOut, "partition writer is busy, retry")

// ErrReplicaClosed is returned by Submit once the partition is closing (topic deleted, broker
// stopping); clients refresh metadata and retry.
var ErrReplicaClosed = errcode.New(errcode.NotLeaderOrFollower, "partition is closing")

// Completer receives the outcome of appends. The produce transaction that owns a request
// implements it, so handing work to a replica allocates no closure. AppendDone runs on the
// replica's goroutine and must not block.
type Completer interface {
	AppendDone(slot int, res AppendResult)
}

// AppendRequest asks a replica to append one partition's records (one or more record batches
// back to back). Records belong to the caller until AppendDone is called for the request; the
// replica patches baseOffset and partitionLeaderEpoch in place.
type AppendRequest struct {
	Records []byte
	Owner   Completer
	Slot    int
	// Acks is the produce's acks (-1: all in-sync replicas, 1: the leader, 0: none) and
	// TimeoutMs its timeout, how long an acks=all append waits for the in-sync replicas.
	Acks      int16
	TimeoutMs int32
	queued    int64 // when Submit took it, for metrics (metrics.go); 0 when they are off
}

// AppendResult is the outcome of one AppendRequest.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Err            error // an *errcode.Error, or nil
}

// FsyncMode says when a replica makes appended data durable.
type FsyncMode int

// Fsync modes.
const (
	FsyncAlways   FsyncMode = iota // fdatasync before acknowledging (group commit)
	FsyncInterval                  // fdatasync at most every Interval; acknowledge after the write
	FsyncNever                     // leave it to the OS (and to Close)
)

// FsyncPolicy is a FsyncMode and, for FsyncInterval, its period.
type FsyncPolicy struct {
	Mode     FsyncMode
	Interval time.Duration
}

func (p FsyncPolicy) String() string {
	switch p.Mode {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return fmt.Sprintf("interval:%d", p.Interval.Milliseconds())
	default:
		return "never"
	}
}

// maxGroup bounds how many requests one group commit takes from the inbox.
const maxGroup = 256

// Replica is the single owner of one partition's log: one goroutine drains its inbox in groups,
// validates and appends the batches with one write, syncs per policy, advances the high
// watermark and completes the requests. Readers (Fetch, ListOffsets) call the read methods from
// any goroutine.
type Replica struct {
	topic     string
	partition int32
	log       *partition.Log
	cfg       *TopicConfig
	sharedCfg atomic.Pointer[TopicConfig] // cfg, for the cleaner's goroutine
	cleaner   *cleaner.Cleaner            // compacts the log while the topic asks for it; nil: none
	policy    FsyncPolicy
	logger    *zap.Logger
	now       func() time.Time

	inbox   chan *AppendRequest
	control chan func() // writer-side operations other than appends (DeleteRecords)
	stop    chan struct{}
	done    chan struct{}

	// producers is the idempotent producers' state (writer goroutine only).
	producers *producerStates

	highWatermark atomic.Int64
	// leaderEpoch is stamped on appended batches; the metadata sets it when leadership changes.
	leaderEpoch atomic.Int32

	// waiters are long-polling fetches to wake when the high watermark moves (the fetch
	// purgatory). waiterCount lets the writer skip the lock when nobody waits.
	waitersMu   sync.Mutex
	waiters     map[*Waiter]struct{}
	waiterCount atomic.Int32
	// fenced holds the storage error that stopped the partition taking writes.
	fenced atomic.Pointer[errcode.Error]

	// Writer-goroutine scratch, reused across groups. The skipper keeps a 32 KiB buffer; the
	// stream keeps nothing between batches (its decoders go back to shared pools).
	skipper batch.RecordSkipper
	stream  compress.Stream
	group   []*AppendRequest
	results []AppendResult
	iovecs  [][]byte
	dirty   bool

	retentionEvery    time.Duration
	internal          bool
	lastCorruptionLog atomic.Int64 // unix nanoseconds of the last corruption report

	// Producer-state snapshots (writer goroutine only).
	snapshotEvery         int64
	appendedSinceSnapshot int64

	// submitMu orders Submit against Close: once closing is set under the write lock no request
	// enters the inbox, so the goroutine's final drain answers every accepted request. Submit
	// holds the read lock only around a non-blocking channel send.
	submitMu sync.RWMutex
	closing  bool
	closeLog sync.Once

	metrics *replicaMetrics // nil: off (metrics.go)

	// repl is the partition's replication state (replica_repl.go); zero on a single node.
	repl replState
	// ends holds, per request of the group being appended, the offset after its batches.
	ends []int64
}

// ReplicaOptions configures a Replica.
type ReplicaOptions struct {
	Topic          string
	Partition      int32
	Log            *partition.Log
	Config         *TopicConfig
	Fsync          FsyncPolicy
	InboxSize      int           // default 1024
	LeaderEpoch    int32         // epoch stamped on appended batches
	RetentionCheck time.Duration // default 30 s
	// Internal marks a partition of an internal topic (committed offsets): clients do not write
	// to it, the broker does.
	Internal bool
	// ProducerSnapshotBytes is how much a partition appends between snapshots of its producer
	// state, each taken right after a sync; default 64 MiB. Start-up after a crash then reads
	// only the batches appended since the last snapshot, not the whole log.
	ProducerSnapshotBytes int64
	// ProducerIDExpiration is Kafka's producer.id.expiration.ms: a producer's idempotence state
	// is dropped after this long without a batch from it (checked with RetentionCheck); default
	// DefaultProducerIDExpiration (one day).
	ProducerIDExpiration time.Duration
	// MaxProducers bounds the producer ids the partition tracks; default DefaultMaxProducers.
	MaxProducers int
	// Cleaner compacts the log while the topic's cleanup.policy includes compact; nil: never.
	Cleaner *cleaner.Cleaner
	Logger  *zap.Logger
	Now     func() time.Time
	Metrics *Metrics // nil: none
}

// NewReplica starts the replica goroutine for an opened log.
func NewReplica(o ReplicaOptions) *Replica {
	if o.InboxSize <= 0 {
		o.InboxSize = 1024
	}
	if o.RetentionCheck <= 0 {
		o.RetentionCheck = 30 * time.Second
	}
	if o.ProducerSnapshotBytes <= 0 {
		o.ProducerSnapshotBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Replica{
		topic:          o.Topic,
		partition:      o.Partition,
		log:            o.Log,
		cfg:            o.Config,
		policy:         o.Fsync,
		logger:         o.Logger.With(zap.String("topic", o.Topic), zap.Int32("partition", o.Partition)),
		now:            o.Now,
		inbox:          make(chan *AppendRequest, o.InboxSize),
		control:        make(chan func()),
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
		retentionEvery: o.RetentionCheck,
		internal:       o.Internal,
		snapshotEvery:  o.ProducerSnapshotBytes,
		metrics:        o.Metrics.forReplica(o.Topic, o.Log),
	}
	r.waiters = map[*Waiter]struct{}{}
	r.leaderEpoch.Store(o.LeaderEpoch)
	r.sharedCfg.Store(o.Config)
	producers, err := loadProducerStates(o.Log, o.MaxProducers, o.ProducerIDExpiration, o.Now().UnixMilli())
	if err != nil {
		r.logger.Warn("could not rebuild all producer state: duplicates of batches sent before the restart may not be recognised", zap.Error(err))
	}
	r.producers = producers
	// A single node's log is all committed: everything recovered from disk was synced or is
	// accepted as the recovered state.
	r.highWatermark.Store(o.Log.EndOffset())
	go r.run()
	if o.Cleaner != nil {
		r.cleaner = o.Cleaner
		o.Cleaner.Add(r)
	}
	return r
}

// ReportCorruption logs a stored batch that failed validation on read (at most once a minute per
// partition: a consumer retrying the same offset must not flood the log).
func (r *Replica) ReportCorruption(fetchOffset int64, err error) {
	now := r.now().UnixNano()
	last := r.lastCorruptionLog.Load()
	if now-last < int64(time.Minute) || !r.lastCorruptionLog.CompareAndSwap(last, now) {
		return
	}
	r.logger.Error("corrupt batch in the log: reads stop before it; restore the partition from a replica or a backup, or move the segment away",
		zap.Int64("fetch_offset", fetchOffset), zap.Error(err))
}

// Internal reports whether the partition belongs to an internal topic, written by the broker only.
func (r *Replica) Internal() bool { return r.internal }

// Topic is the replica's topic name.
func (r *Replica) Topic() string { return r.topic }

// Partition is the replica's partition number.
func (r *Replica) Partition() int32 { return r.partition }

// Submit hands req to the replica without blocking. It returns ErrInboxFull when the inbox is
// full, and the storage error when the partition is fenced.
func (r *Replica) Submit(req *AppendRequest) error {
	if e := r.fenced.Load(); e != nil {
		return e
	}
	r.submitMu.RLock()
	defer r.submitMu.RUnlock()
	if r.closing {
		return ErrReplicaClosed
	}
	r.noteQueued(req)
	select {
	case r.inbox <- req:
		return nil
	default:
		return ErrInboxFull
	}
}

// HighWatermark is the offset below which records are committed and visible to consumers.
func (r *Replica) HighWatermark() int64 { return r.highWatermark.Load() }

// LogStartOffset is the first offset still in the log.
func (r *Replica) LogStartOffset() int64 { return r.log.StartOffset() }

// LeaderEpoch is the epoch the replica stamps on appended batches.
func (r *Replica) LeaderEpoch() int32 { return r.leaderEpoch.Load() }

// SetLeaderEpoch sets the epoch stamped on batches appended from now on (the metadata's leader
// epoch of the partition). Batches already accepted keep the epoch they were stamped with.
func (r *Replica) SetLeaderEpoch(e int32) { r.leaderEpoch.Store(e) }

// EndOffsetForEpoch answers OffsetForLeaderEpoch from the leader epoch cache: the largest epoch
// <= epoch and its end offset (the next epoch's first offset, the log end offset for the latest);
// (-1, -1) when epoch is newer than the replica's. The replica's current epoch counts as begun at
// the log end offset even before a batch is written in it, as Kafka's leader records its epoch on
// election.
func (r *Replica) EndOffsetForEpoch(epoch int32) (endOffset int64, epochFound int32) {
	end, found := r.log.EndOffsetForEpoch(epoch)
	if found >= 0 || epoch < 0 || epoch > r.leaderEpoch.Load() {
		return end, found
	}
	// Newer than every cached epoch, and not newer than the current one.
	if latest := r.log.LatestEpoch(); latest >= 0 && epoch < r.leaderEpoch.Load() {
		return r.log.EndOffset(), latest
	}
	return r.log.EndOffset(), epoch
}

// Waiter is a long-polling fetch waiting for any of several partitions to grow. C receives
// (without blocking the writer: it has room for one signal) when a watched high watermark moves.
type Waiter struct {
	C chan struct{}
}

// NewWaiter returns a Waiter.
func NewWaiter() *Waiter { return &Waiter{C: make(chan struct{}, 1)} }

// AddWaiter registers w to be signalled at the next high watermark advance.
func (r *Replica) AddWaiter(w *Waiter) {
	r.waitersMu.Lock()
	if _, ok := r.waiters[w]; !ok {
		r.waiters[w] = struct{}{}
		r.waiterCount.Add(1)
	}
	r.waitersMu.Unlock()
}

// RemoveWaiter unregisters w.
func (r *Replica) RemoveWaiter(w *Waiter) {
	r.waitersMu.Lock()
	if _, ok := r.waiters[w]; ok {
		delete(r.waiters, w)
		r.waiterCount.Add(-1)
	}
	r.waitersMu.Unlock()
}

// Fenced returns the storage error that stopped writes, or nil.
func (r *Replica) Fenced() error {
	if e := r.fenced.Load(); e != nil {
		return e
	}
	return nil
}

// Read appends to dst committed batches starting at offset (see partition.Log.Read).
func (r *Replica) Read(dst []byte, offset int64, maxBytes int, minOne bool) ([]byte, error) {
	return r.log.Read(dst, offset, maxBytes, r.highWatermark.Load(), minOne)
}

// OffsetForTimestamp finds the first committed batch whose max timestamp is at or after ts.
func (r *Replica) OffsetForTimestamp(ts int64) (baseOffset, maxTimestamp int64, found bool, err error) {
	off, maxTs, found, err := r.log.OffsetForTimestamp(ts)
	if err != nil || !found || off >= r.highWatermark.Load() {
		return -1, -1, false, err
	}
	return off, maxTs, true, nil
}

// RecordForTimestamp answers ListOffsets by timestamp as Kafka does: the offset and timestamp of
// the first committed record whose timestamp is at or after ts (found=false when none is). The
// time index finds the batch; inside it the records are walked with a skipping iterator through a
// bounded decompressing stream, stopping at the first match, so a call costs the batch's stored
// bytes and a small buffer, never its decompressed size. A LogAppendTime batch needs no walk:
// its records all carry its max timestamp.
func (r *Replica) RecordForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	base, maxTs, found, err := r.OffsetForTimestamp(ts)
	if err != nil || !found {
		return -1, -1, false, err
	}
	b, err := r.Read(nil, base, 1, true)
	if err != nil || len(b) == 0 {
		return base, maxTs, true, nil
	}
	h, err := batch.ParseHeader(b)
	if err != nil || h.Size() > len(b) || h.LogAppendTime() {
		return base, maxTs, true, nil
	}
	w := recordWalkers.Get().(*recordWalker)
	defer recordWalkers.Put(w)
	defer w.skipper.Release()
	defer w.stream.Release()
	if walkRecords(&w.skipper, &w.stream, &h, b[batch.HeaderSize:h.Size()]) != nil {
		return base, maxTs, true, nil
	}
	for w.skipper.Next() {
		// The batch may start below base when the log start offset lies inside it.
		if off, t := w.skipper.Offset(), w.skipper.Timestamp(); off >= base && t >= ts {
			return off, t, true, nil
		}
	}
	return base, maxTs, true, nil
}

// recordWalker is the state of one walk of a stored batch's records (ListOffsets by timestamp).
type recordWalker struct {
	skipper batch.RecordSkipper
	stream  compress.Stream
}

var recordWalkers = sync.Pool{New: func() any { return new(recordWalker) }}

// MaxTimestamp is the largest record timestamp in the log (-1 when empty).
func (r *Replica) MaxTimestamp() int64 { return r.log.MaxTimestamp() }

// Size is the partition's size on disk in bytes.
func (r *Replica) Size() int64 { return r.log.Size() }

// Close stops the goroutine after it has appended and synced everything already submitted, then
// closes the log.
func (r *Replica) Close() error {
	if r.cleaner != nil {
		r.cleaner.Remove(r) // waits for a pass on this log to stop
	}
	r.submitMu.Lock()
	if !r.closing {
		r.closing = true
		close(r.stop)
	}
	r.submitMu.Unlock()
	<-r.done
	r.failAcks(ErrReplicaClosed)
	var err error
	r.closeLog.Do(func() { err = r.log.Close() })
	return err
}

func (r *Replica) run() {
	defer close(r.done)
	var syncTick <-chan time.Time
	if r.policy.Mode == FsyncInterval {
		t := time.NewTicker(r.policy.Interval)
		defer t.Stop()
		syncTick = t.C
	}
	retention := time.NewTicker(r.retentionEvery)
	defer retention.Stop()
	for {
		select {
		case req := <-r.inbox:
			r.group = append(r.group[:0], req)
			r.drain()
			r.appendGroup()
		case <-syncTick:
			r.syncIfDirty()
		case <-retention.C:
			r.enforceRetention()
		case fn := <-r.control:
			fn()
		case <-r.stop:
			// Finish what was accepted: callers were promised an answer.
			for {
				r.group = r.group[:0]
				r.drain()
				if len(r.group) == 0 {
					break
				}
				r.appendGroup()
			}
			r.syncIfDirty()
			if r.fenced.Load() == nil {
				if err := r.producers.snapshot(r.log); err != nil {
					r.logger.Warn("could not write the producer state snapshot; the next start scans the log instead", zap.Error(err))
				}
			}
			return
		}
	}
}

// drain moves whatever else waits in the inbox into the group, without blocking.
func (r *Replica) drain() {
	for len(r.group) < maxGroup {
		select {
		case req := <-r.inbox:
			r.group = append(r.group, req)
		default:
			return
		}
	}
}

// appendGroup validates every request of the group, patches offsets, appends all accepted
// batches with one write, syncs per policy, advances the high watermark and completes.
func (r *Replica) appendGroup() {
	r.results = r.results[:0]
	r.iovecs = r.iovecs[:0]
	next := r.log.NextOffset()
	nowMs := r.now().UnixMilli()
	logAppendTime := r.cfg.LogAppendTime()
	fenced := r.fenced.Load()
	r.ends = r.ends[:0]
	for _, req := range r.group {
		res := AppendResult{BaseOffset: -1, LogAppendTime: -1}
		if fenced != nil {
			res.Err = fenced
		} else if aerr := r.admitProduce(req); aerr != nil {
			res.Err = aerr
		} else if verr := r.validate(req.Records, nowMs); verr != nil {
			res.Err = verr
		} else if dup, isDup, perr := r.checkProducer(req.Records, nowMs); perr != nil {
			res.Err = perr
		} else if isDup {
			// A retry of a batch already in the log: acknowledge it with its original offset
			// (acks=all: once everything appended so far is committed).
			res.BaseOffset = dup
		} else {
			res.BaseOffset = next
			if logAppendTime {
				res.LogAppendTime = nowMs
			}
			for rest := req.Records; len(rest) > 0; {
				n, _ := batch.Size(rest) // validated above
				b := rest[:n:n]
				rest = rest[n:]
				batch.SetBaseOffset(b, next)
				batch.SetPartitionLeaderEpoch(b, r.leaderEpoch.Load())
				if logAppendTime {
					batch.SetLogAppendTime(b, nowMs)
				}
				h, _ := batch.ParseHeader(b)
				next = h.NextOffset()
				if h.ProducerID >= 0 {
					r.producers.update(&h, nowMs)
				}
				r.iovecs = append(r.iovecs, b)
			}
		}
		r.results = append(r.results, res)
		r.ends = append(r.ends, next)
	}
	if len(r.iovecs) > 0 {
		err := r.log.Append(r.iovecs)
		if err == nil {
			for _, b := range r.iovecs {
				r.appendedSinceSnapshot += int64(len(b))
			}
			r.noteAppended()
			if r.replicatedNow() {
				// Followers fetch what is written before it is synced, so their fetch, append
				// and fsync overlap the leader's fsync; the high watermark counts only what each
				// has synced.
				r.wake()
			}
		}
		if err == nil && r.policy.Mode == FsyncAlways {
			syncStart := r.syncClock()
			if err = r.log.Sync(); err == nil {
				r.noteSynced(syncStart, true)
				r.maybeSnapshot()
			}
		} else if err == nil {
			r.dirty = true
		}
		if err != nil {
			fenced = r.fence(err)
			for i := range r.results {
				if r.results[i].Err == nil {
					r.results[i] = AppendResult{BaseOffset: -1, LogAppendTime: -1, Err: fenced}
				}
			}
		} else if !r.replicatedNow() {
			r.advance(r.log.NextOffset())
		}
	}
	// Drop references to request buffers that go back to their pools.
	clear(r.iovecs)
	r.iovecs = r.iovecs[:0]
	start := r.log.StartOffset()
	held := false
	for i, req := range r.group {
		res := r.results[i]
		res.LogStartOffset = start
		r.group[i] = nil
		if res.Err == nil && r.holdAck(req, res, r.ends[i]) {
			held = true
			continue
		}
		req.Owner.AppendDone(req.Slot, res)
	}
	if held || r.replicatedNow() {
		// Followers long-poll the log end; the leader's own durable end may move the high
		// watermark.
		r.wake()
		r.updateHighWatermark()
	}
}

// replicatedNow reports whether the partition has more than one replica (its high watermark is
// the in-sync replicas', not the log end).
func (r *Replica) replicatedNow() bool {
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return r.repl.on
}

// validate checks every batch of one partition's records like Kafka does. It returns an
// *errcode.Error naming the first problem.
func (r *Replica) validate(records []byte, nowMs int64) *errcode.Error {
	if len(records) == 0 {
		return errcode.New(errcode.InvalidRecord, "no record batches")
	}
	maxBytes := int(r.cfg.MaxMessageBytes)
	for rest := records; len(rest) > 0; {
		n, err := batch.Size(rest)
		if err != nil {
			return errcode.New(errcode.CorruptMessage, "%v", err)
		}
		if n > len(rest) {
			return errcode.New(errcode.CorruptMessage, "batch of %d bytes runs past the %d bytes sent", n, len(rest))
		}
		if n > maxBytes {
			return errcode.New(errcode.MessageTooLarge, "batch of %d bytes exceeds max.message.bytes %d", n, maxBytes)
		}
		one := rest[:n]
		h, err := batch.Validate(one)
		rest = rest[n:]
		if err != nil {
			if errors.Is(err, batch.ErrBadMagic) {
				return errcode.New(errcode.UnsupportedVersion, "%v", err)
			}
			return errcode.New(errcode.CorruptMessage, "%v", err)
		}
		if h.IsControl() {
			return errcode.New(errcode.InvalidRecord, "control batches are written by the broker only")
		}
		if h.RecordCount == 0 {
			return errcode.New(errcode.InvalidRecord, "empty record batch")
		}
		if h.ProducerID >= 0 && h.BaseSequence < 0 {
			// As Kafka: an idempotent producer's batches carry sequence numbers.
			return errcode.New(errcode.InvalidRecord, "invalid sequence number %d in a batch from producer %d", h.BaseSequence, h.ProducerID)
		}
		if verr := r.validateRecords(one, &h); verr != nil {
			return verr
		}
		// The broker overwrites the timestamp of a LogAppendTime topic: the producer's is not
		// checked (as in Kafka).
		if d := r.cfg.MaxTimestampDifferenceMs; d >= 0 && !h.LogAppendTime() && !r.cfg.LogAppendTime() {
			if diff := h.MaxTimestamp - nowMs; diff > d || -diff > d {
				return errcode.New(errcode.InvalidTimestamp, "timestamp %d is more than %d ms from broker time", h.MaxTimestamp, d)
			}
		}
	}
	return nil
}

// checkProducer applies the idempotence rules to a request's batches (validated already). Only
// batches with a producer id are checked; such a request must carry exactly one batch, as Kafka
// requires of every v3+ produce.
func (r *Replica) checkProducer(records []byte, nowMs int64) (dupOffset int64, isDup bool, err *errcode.Error) {
	n, _ := batch.Size(records)
	h, _ := batch.ParseHeader(records)
	if h.IsTransactional() {
		return 0, false, errcode.New(errcode.InvalidRecord, "transactions are not supported")
	}
	if n == len(records) {
		if h.ProducerID < 0 {
			return 0, false, nil
		}
		return r.producers.check(&h, nowMs)
	}
	for rest := records; len(rest) > 0; {
		n, _ := batch.Size(rest)
		h, _ := batch.ParseHeader(rest)
		if h.ProducerID >= 0 {
			return 0, false, errcode.New(errcode.InvalidRecord, "a produce from an idempotent producer must carry one batch per partition")
		}
		if h.IsTransactional() {
			return 0, false, errcode.New(errcode.InvalidRecord, "transactions are not supported")
		}
		rest = rest[n:]
	}
	return 0, false, nil
}

// DeleteRecords raises the log start offset to offset (-1: the high watermark), like Kafka's
// DeleteRecords, and returns the new log start offset. It runs on the replica goroutine and
// blocks the caller (never an event loop) until done.
func (r *Replica) DeleteRecords(offset int64) (int64, error) {
	type result struct {
		start int64
		err   error
	}
	done := make(chan result, 1)
	fn := func() {
		hw := r.highWatermark.Load()
		if offset == -1 {
			offset = hw
		}
		switch {
		case offset < 0 || offset > hw:
			done <- result{-1, errcode.New(errcode.OffsetOutOfRange, "offset %d is outside [log start, high watermark %d]", offset, hw)}
		case offset <= r.log.StartOffset():
			done <- result{r.log.StartOffset(), nil}
		default:
			if err := r.log.AdvanceStartOffset(offset); err != nil {
				done <- result{-1, r.fence(err)}
				return
			}
			done <- result{r.log.StartOffset(), nil}
		}
	}
	select {
	case r.control <- fn:
	case <-r.done:
		return -1, ErrReplicaClosed
	}
	res := <-done
	return res.start, res.err
}

// maxDecompressedBatch bounds what one batch may decompress to: a bigger one is refused with
// CORRUPT_MESSAGE. Validation streams the records (see validateRecords), so this bounds work,
// not memory.
const maxDecompressedBatch = 64 << 20

// validateRecords walks the records of one batch (through a bounded decompressing stream when
// compressed) and checks what the header cannot, like Kafka's validation before it assigns
// offsets: every record is well formed, offset deltas run 0, 1, 2, …, the record count matches
// the records present and no record has more than batch.MaxRecordHeaders headers. Keys, values
// and headers are skipped, never copied: the memory it uses is the skipper's 32 KiB buffer and
// the codec's window, whatever the decompressed size. Problems with the compressed data (corrupt,
// or more than maxDecompressedBatch) give CORRUPT_MESSAGE; problems with the records
// INVALID_RECORD, as in Kafka.
func (r *Replica) validateRecords(one []byte, h *batch.Header) *errcode.Error {
	s := &r.skipper
	if err := walkRecords(s, &r.stream, h, one[batch.HeaderSize:]); err != nil {
		return errcode.New(errcode.CorruptMessage, "%v", err)
	}
	next := int32(0)
	compact := r.cfg.Compact()
	for s.Next() {
		if d := s.OffsetDelta(); d != next {
			s.Release()
			r.stream.Release()
			return errcode.New(errcode.InvalidRecord, "%v: record %d has offset delta %d", errRecordOffsets, next, d)
		}
		if compact && s.KeyNull() {
			s.Release()
			r.stream.Release()
			return errcode.New(errcode.InvalidRecord, "record %d has no key: a compacted topic keeps records by key", next)
		}
		next++
	}
	err := s.Err()
	s.Release()
	r.stream.Release()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, compress.ErrTooLarge) || errors.Is(err, compress.ErrCorrupt):
		return errcode.New(errcode.CorruptMessage, "%v", err)
	default:
		return errcode.New(errcode.InvalidRecord, "%v", err)
	}
}

var errRecordOffsets = errors.New("offset deltas do not run 0, 1, 2, …")

// walkRecords points s at the records section of the batch with header h, through st when the
// batch is compressed (at most maxDecompressedBatch decompressed). An error is the compressed
// data's; st is released then.
func walkRecords(s *batch.RecordSkipper, st *compress.Stream, h *batch.Header, section []byte) error {
	if h.Codec() == batch.CodecNone {
		s.ResetBytes(h, section)
		return nil
	}
	if err := st.Reset(h.Codec(), section, maxDecompressedBatch); err != nil {
		st.Release()
		return err
	}
	s.ResetReader(h, st, maxDecompressedBatch)
	return nil
}

func (r *Replica) syncIfDirty() {
	if !r.dirty || r.fenced.Load() != nil {
		return
	}
	r.dirty = false
	syncStart := r.syncClock()
	if err := r.log.Sync(); err != nil {
		r.fence(err)
		return
	}
	r.noteSynced(syncStart, false)
	r.maybeSnapshot()
	r.updateHighWatermark()
}

// maybeSnapshot writes the producer state once enough has been appended since the last snapshot.
// It runs right after a successful sync, so the snapshot never covers offsets a crash could lose.
// A failed snapshot is only logged: the log itself has everything, start-up just reads more.
func (r *Replica) maybeSnapshot() {
	if r.appendedSinceSnapshot < r.snapshotEvery {
		return
	}
	r.appendedSinceSnapshot = 0
	if err := r.producers.snapshot(r.log); err != nil {
		r.logger.Warn("could not write the producer state snapshot", zap.Error(err))
	}
	r.checkpointRecoveryPoint()
}

// checkpointRecoveryPoint lets a start after a crash validate only what was appended since: it
// runs every ProducerSnapshotBytes appended and on the retention tick. A failure fences the log,
// which the next append reports.
func (r *Replica) checkpointRecoveryPoint() {
	if err := r.log.CheckpointRecoveryPoint(); err != nil {
		r.logger.Warn("could not checkpoint the recovery point", zap.Error(err))
	}
}

func (r *Replica) enforceRetention() {
	if r.fenced.Load() != nil {
		return
	}
	if n := r.producers.expire(r.now().UnixMilli()); n > 0 {
		r.logger.Debug("producer state expired", zap.Int("producers", n), zap.Int("remaining", r.producers.len()))
	}
	r.checkpointRecoveryPoint()
	deleted, err := r.log.EnforceRetention()
	if err != nil {
		r.logger.Warn("retention failed", zap.Error(err))
		return
	}
	if deleted > 0 {
		r.logger.Info("retention deleted segments", zap.Int("segments", deleted),
			zap.Int64("log_start_offset", r.log.StartOffset()))
	}
}

// fence records a storage failure: the partition refuses writes from now on, reads go on.
func (r *Replica) fence(err error) *errcode.Error {
	e := errcode.New(errcode.KafkaStorageError, "partition %s-%d refuses writes after a storage error: %v", r.topic, r.partition, err)
	if r.fenced.CompareAndSwap(nil, e) {
		r.logger.Error("partition fenced after storage error", zap.Error(err))
	}
	return r.fenced.Load()
}

// advance publishes a new high watermark and wakes long-polling fetches.
func (r *Replica) advance(hw int64) {
	r.highWatermark.Store(hw)
	if r.waiterCount.Load() == 0 {
		return
	}
	r.waitersMu.Lock()
	for w := range r.waiters {
		select {
		case w.C <- struct{}{}:
		default:
		}
	}
	r.waitersMu.Unlock()
}
