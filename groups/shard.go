package groups

// The coordinator shard: every classic group of one __consumer_offsets partition and their
// committed offsets, as a pure state machine in the style of etcd raft's core. A Shard does no
// I/O, starts no goroutine, takes no lock and reads no clock: its owner (one goroutine per
// offsets partition the node leads) feeds it requests, timer ticks and persistence completions,
// each with the current time, and performs the appends the Shard asks for through Writer.
//
// Writes are records first, reply when durable. A request that changes persisted state turns the
// change into __consumer_offsets records; all records one call produces go to Writer.Append as
// one batch, and the replies that depend on them are parked until the owner reports the batch
// with Persisted. What the shard persists, as Kafka does: every offset commit; the group's
// metadata when the leader's SyncGroup completes a generation (assignments included), when a
// static member replaces its old member id without a rebalance, and when the group becomes
// Empty; tombstones when offsets or groups are deleted or expire.
//
// What a failed append undoes (the log keeps the last durable state, and so do reads):
//   - Offset commits are applied to the table only once durable: a failure leaves the previous
//     offsets and answers the partitions with the append's error (see appendErrorCode).
//   - The leader's SyncGroup: the group stays CompletingRebalance until its record is durable;
//     on failure every member waiting in SyncGroup gets the error, the assignments are dropped
//     and the group rebalances (Kafka's behaviour).
//   - A static member's replacement without a rebalance is reverted: the old member id is back
//     and the new join gets the error.
//   - Deletions (DeleteGroups, expiry) leave the group Dead meanwhile; on failure it is Empty
//     again with its offsets.
//   - A group that became Empty stays Empty in memory (its members are gone); the request that
//     emptied it (a LeaveGroup) gets the error. Should the node restart first, the log's last
//     generation comes back and its members expire by session timeout — safe, as Kafka notes.
//
// Persisted must be called once per token, in the order the batches were appended (the order in
// which a log makes them durable): commits are applied in that order, so the table ends as the
// log does.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Config configures a Shard. Zero fields take the default, except MinSessionTimeout and
// InitialRebalanceDelay, where zero is a setting of its own; DefaultConfig has every default.
type Config struct {
	MinSessionTimeout time.Duration // group.min.session.timeout.ms, default 6 s
	MaxSessionTimeout time.Duration // group.max.session.timeout.ms, default 30 min
	// InitialRebalanceDelay batches the first joins of a new (Empty) group: each join during it
	// extends it, up to the rebalance timeout. group.initial.rebalance.delay.ms, default 3 s.
	InitialRebalanceDelay time.Duration
	MaxGroupSize          int           // group.max.size, default math.MaxInt32
	OffsetsRetention      time.Duration // offsets.retention.minutes, default 7 days
	// OffsetsRetentionCheckInterval is how often expired offsets are looked for
	// (offsets.retention.check.interval.ms, default 10 min).
	OffsetsRetentionCheckInterval time.Duration
	MaxMetadataBytes              int // offset.metadata.max.bytes, default 4096
	// MaxProtocolMetadataBytes bounds one member's protocols (names and metadata together) in a
	// JoinGroup and each assignment in a SyncGroup; larger ones are refused with INVALID_REQUEST,
	// so a client cannot pin memory. Default 1 MiB.
	MaxProtocolMetadataBytes int
	// NewMemberJoinTimeout is how long a new member's parked JoinGroup keeps it in the group
	// (group.classic.new.member.join.timeout.ms, default 5 min).
	NewMemberJoinTimeout time.Duration
	// MaxPendingMembers bounds, per group, the member ids handed out with MEMBER_ID_REQUIRED whose
	// owners have not rejoined yet; beyond it the oldest is forgotten (its owner gets
	// UNKNOWN_MEMBER_ID and starts over). Default 1000.
	MaxPendingMembers int
	// Rand is the source of generated member ids (UUIDs); nil means crypto/rand.
	Rand io.Reader
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		InitialRebalanceDelay:         3 * time.Second,
		MaxGroupSize:                  math.MaxInt32,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		MaxMetadataBytes:              MaxMetadataBytes,
		MaxProtocolMetadataBytes:      1 << 20,
		NewMemberJoinTimeout:          5 * time.Minute,
		MaxPendingMembers:             1000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = d.MaxSessionTimeout
	}
	c.MinSessionTimeout = max(c.MinSessionTimeout, 0)
	c.InitialRebalanceDelay = max(c.InitialRebalanceDelay, 0)
	if c.MaxGroupSize <= 0 {
		c.MaxGroupSize = d.MaxGroupSize
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = d.OffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		c.OffsetsRetentionCheckInterval = d.OffsetsRetentionCheckInterval
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = d.MaxMetadataBytes
	}
	c.MaxMetadataBytes = min(c.MaxMetadataBytes, MaxRecordStringBytes)
	if c.MaxProtocolMetadataBytes <= 0 {
		c.MaxProtocolMetadataBytes = d.MaxProtocolMetadataBytes
	}
	if c.NewMemberJoinTimeout <= 0 {
		c.NewMemberJoinTimeout = d.NewMemberJoinTimeout
	}
	if c.MaxPendingMembers <= 0 {
		c.MaxPendingMembers = d.MaxPendingMembers
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Record is one __consumer_offsets record; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Writer is how the shard persists. Append hands over records (the Writer owns them from then
// on) and a token; the shard's owner later calls Shard.Persisted(now, token, err) on the shard
// goroutine once they are durable or have failed. Append must not block and must not call back
// into the Shard.
type Writer interface {
	Append(records []Record, token uint64)
}

// ErrLoaded is returned by Load once Loaded has been called.
var ErrLoaded = errors.New("groups: shard already loaded")

// Shard is the coordinator state of one offsets partition. Its methods must be called from one
// goroutine; reply callbacks run on it, from inside Shard methods, and must not call back into the
// Shard.
type Shard struct {
	partition int32
	cfg       Config
	writer    Writer

	loaded bool
	// Before Loaded: the replayed records, and topics deleted meanwhile.
	loadingGroups map[string]GroupValue
	loadingTopics []string

	groups map[string]*group
	// offsets is the durable table: group -> partition -> committed offset.
	offsets map[string]map[TopicPartition]OffsetValue
	// inflight counts, per key and per group, the commits appended and not yet reported: expiry
	// skips them, and a group with some is not forgotten.
	inflight       map[OffsetKey]int
	inflightGroups map[string]int

	timers  timers
	expiry  *timer
	idCount uint64

	// The batch being built by the current call, with what runs once it is durable (or failed).
	out      []Record
	outDone  []func(now time.Time, err error)
	nextTok  uint64
	inFlight map[uint64][]func(now time.Time, err error)
}

// NewShard returns the shard of offsets partition partition, loading until Loaded.
func NewShard(partition int32, cfg Config, w Writer) *Shard {
	s := &Shard{
		partition:      partition,
		cfg:            cfg.withDefaults(),
		writer:         w,
		loadingGroups:  map[string]GroupValue{},
		groups:         map[string]*group{},
		offsets:        map[string]map[TopicPartition]OffsetValue{},
		inflight:       map[OffsetKey]int{},
		inflightGroups: map[string]int{},
		inFlight:       map[uint64][]func(time.Time, error){},
	}
	s.expiry = newTimer(s.expireOffsets)
	return s
}

// Partition is the offsets partition the shard serves.
func (s *Shard) Partition() int32 { return s.partition }

// Ready reports whether loading has finished; before, requests are answered
// COORDINATOR_LOAD_IN_PROGRESS (and List, which has no error to give, lists nothing).
func (s *Shard) Ready() bool { return s.loaded }

// Persisted reports the outcome of the Append that carried token.
func (s *Shard) Persisted(now time.Time, token uint64, err error) {
	done, ok := s.inFlight[token]
	if !ok {
		return
	}
	delete(s.inFlight, token)
	for _, f := range done {
		f(now, err)
	}
	s.flush(now)
}

// Tick fires every timer due at now.
func (s *Shard) Tick(now time.Time) {
	// A bound on the timers fired per call, against a bug that keeps rescheduling a timer at now:
	// the rest fire at the next Tick, which NextTimer asks for at once.
	for range 1 << 16 {
		t := s.timers.popDue(now)
		if t == nil {
			break
		}
		t.fire(now)
	}
	s.flush(now)
}

// NextTimer is when Tick is next needed, false when no timer is armed.
func (s *Shard) NextTimer() (time.Time, bool) { return s.timers.next() }

// emit adds records to the current call's batch; done (may be nil) runs once they are durable or
// have failed.
func (s *Shard) emit(done func(now time.Time, err error), records ...Record) {
	s.out = append(s.out, records...)
	if done != nil {
		s.outDone = append(s.outDone, done)
	}
}

// afterDurable runs f once everything the current call emitted is durable (at once, with a nil
// error, if it emitted nothing).
func (s *Shard) afterDurable(f func(now time.Time, err error)) {
	s.outDone = append(s.outDone, f)
}

// flush appends the current call's batch, or runs its waiters at once when it is empty. Every
// exported method that can emit ends with it.
func (s *Shard) flush(now time.Time) {
	for len(s.out) == 0 && len(s.outDone) > 0 {
		done := s.outDone
		s.outDone = nil
		for _, f := range done {
			f(now, nil)
		}
	}
	if len(s.out) == 0 {
		return
	}
	s.nextTok++
	records, done := s.out, s.outDone
	s.out, s.outDone = nil, nil
	s.inFlight[s.nextTok] = done
	s.writer.Append(records, s.nextTok)
}

// appendErrorCode is what a client is told when an append failed, as Kafka maps it: the
// coordinator is unavailable or moved, so the client finds it again and retries.
func appendErrorCode(err error) errcode.Code {
	switch c := errcode.Of(err); c {
	case errcode.UnknownTopicOrPartition, errcode.NotEnoughReplicas, errcode.NotEnoughReplicasAfterAppend, errcode.RequestTimedOut:
		return errcode.CoordinatorNotAvailable
	case errcode.NotLeaderOrFollower, errcode.KafkaStorageError:
		return errcode.NotCoordinator
	case errcode.MessageTooLarge, errcode.RecordListTooLarge, errcode.InvalidFetchSize:
		return errcode.UnknownServerError
	case errcode.UnknownServerError:
		// An error without a code (an I/O failure): the partition is no good here.
		return errcode.CoordinatorNotAvailable
	default:
		return c
	}
}

// commitErrorCode maps an append failure for an offset commit; a batch too large is the
// commit's fault (INVALID_COMMIT_OFFSET_SIZE), as Kafka answers.
func commitErrorCode(err error) errcode.Code {
	switch errcode.Of(err) {
	case errcode.MessageTooLarge, errcode.RecordListTooLarge, errcode.InvalidFetchSize:
		return errcode.InvalidCommitOffsetSize
	}
	return appendErrorCode(err)
}

// newMemberID is prefix + "-" + a random UUID, as Kafka generates them (the client id for a
// dynamic member, the instance id for a static one).
func (s *Shard) newMemberID(prefix string) string {
	var b [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		// No randomness: a counter keeps ids unique within the shard.
		s.idCount++
		return prefix + "-" + strconv.FormatInt(int64(s.partition), 10) + "-" + strconv.FormatUint(s.idCount, 10)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var u [36]byte
	hex.Encode(u[0:8], b[0:4])
	u[8] = '-'
	hex.Encode(u[9:13], b[4:6])
	u[13] = '-'
	hex.Encode(u[14:18], b[6:8])
	u[18] = '-'
	hex.Encode(u[19:23], b[8:10])
	u[23] = '-'
	hex.Encode(u[24:], b[10:])
	return prefix + "-" + string(u[:])
}

// removeMember drops a member with its session timer, answering its parked requests.
func (s *Shard) removeMember(g *group, id string) {
	if m := g.remove(id); m != nil {
		s.timers.cancel(m.session)
	}
}

// removePending drops a handed-out member id with its timer.
func (s *Shard) removePending(g *group, id string) {
	if p := g.removePending(id); p != nil {
		s.timers.cancel(p.session)
	}
}

// scheduleSession (re)arms a member's session timer d from now.
func (s *Shard) scheduleSession(now time.Time, g *group, m *member, d time.Duration) {
	if m.session == nil {
		m.session = newTimer(func(now time.Time) { s.expireMember(now, g, m) })
	}
	s.timers.schedule(m.session, now.Add(d))
}

// live reports whether g is still the shard's group of its id and m still its member: a timer or a
// completion may outlive either.
func (s *Shard) live(g *group, m *member) bool {
	if s.groups[g.id] != g {
		return false
	}
	return m == nil || g.members[m.id] == m
}

// forgetIfUnused drops a group that holds nothing: Empty, no members or handed-out ids, no
// offsets (durable or in flight) and no record to delete. Hostile joins with fresh group ids
// therefore leave nothing behind.
func (s *Shard) forgetIfUnused(g *group) {
	if s.groups[g.id] != g || !g.is(stateEmpty) || len(g.members) > 0 || len(g.pending) > 0 || g.hasRecord {
		return
	}
	if len(s.offsets[g.id]) > 0 || s.inflightGroups[g.id] > 0 {
		return
	}
	s.timers.cancel(g.joinTimer)
	s.timers.cancel(g.syncTimer)
	delete(s.groups, g.id)
}

// groupRecord is g's metadata record.
func groupRecord(g *group) Record {
	return Record{Key: AppendGroupKey(nil, GroupKey{Group: g.id}), Value: AppendGroupValue(nil, g.value())}
}

func groupTombstone(id string) Record {
	return Record{Key: AppendGroupKey(nil, GroupKey{Group: id})}
}

// sortedGroupIDs lists the shard's groups in id order, for deterministic passes.
func (s *Shard) sortedGroupIDs() []string {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// tooLong reports a string a record cannot hold.
func tooLong(v string) bool { return len(v) > MaxRecordStringBytes }
