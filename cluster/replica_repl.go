package cluster

// A replica's part in the replication of its partition (replication factor above one), as in
// Kafka: the leader takes produce, stamps its leader epoch on every batch and tracks where each
// follower is; the high watermark is the smallest durable (fsynced) log end over the in-sync
// replicas, the leader's included; acks=all produce waits for the high watermark to pass its
// batches. Followers append the leader's batches byte for byte (replica_follow.go).

import (
	"slices"
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Errors of replicated produce.
var (
	errNotEnoughReplicas = errcode.New(errcode.NotEnoughReplicas,
		"the partition has fewer in-sync replicas than min.insync.replicas: acks=all writes are refused")
	errNotEnoughAfterAppend = errcode.New(errcode.NotEnoughReplicasAfterAppend,
		"the records were written, but the in-sync replicas fell below min.insync.replicas before they were committed")
	errLeadershipMoved = errcode.New(errcode.NotLeaderOrFollower,
		"this node no longer leads the partition: the records may or may not be committed")
	errProduceTimedOut = errcode.New(errcode.RequestTimedOut,
		"the records were written, but the in-sync replicas did not all have them within the produce timeout")
	errNoController = errcode.New(errcode.NotLeaderOrFollower,
		"this node has not heard from the controller for a session timeout: it may be cut off from the cluster, and takes no writes")
	errFollower = errcode.New(errcode.NotLeaderOrFollower, "this node follows the partition: another node leads it")
)

// Role is what the metadata says of this node's replica of a partition.
type Role struct {
	Self           int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	// MinISR is the topic's min.insync.replicas.
	MinISR int
}

// replicated reports whether the partition has more than one replica.
func (r Role) replicated() bool { return len(r.Replicas) > 1 }

// followerState is where one follower is, as the leader saw it in its fetches.
type followerState struct {
	incarnation  int64
	fetchOffset  int64 // the follower's log end: it has every offset below
	durableEnd   int64 // what of that it has fsynced
	lastFetch    time.Time
	lastFetchLEO int64     // the leader's log end at the last fetch
	caughtUp     time.Time // Kafka's lastCaughtUpTime
}

// pendingAck is an acks=all append written to the leader's log, waiting for the high watermark.
type pendingAck struct {
	req      *AppendRequest
	res      AppendResult
	required int64 // the offset after its batches
	deadline time.Time
}

// replState is a replica's replication state. mu guards every field; it is never held across
// I/O.
type replState struct {
	mu          sync.Mutex
	role        Role
	on          bool // replicated: the role has more than one replica
	leader      bool // this node leads the partition at role.LeaderEpoch
	since       time.Time
	followers   map[int32]*followerState
	pendingAdds []int32 // followers proposed for the ISR, counted for the high watermark already
	// proposing: an ISR change is on its way to the controller, or committed and not applied
	// here yet; no other is proposed before retryAt.
	proposing bool
	retryAt   time.Time
	acks      []pendingAck
	// lease reports whether this node is in touch with the controller (nil: a single node).
	lease func() bool
}

// SetRole applies the metadata's view of the partition. A change of leader epoch, or of
// leadership, answers the acks=all appends still waiting with NOT_LEADER_OR_FOLLOWER (the new
// leader may or may not have them) and forgets the followers' positions.
func (r *Replica) SetRole(role Role, lease func() bool) {
	if role.Leader == role.Self {
		r.SetLeaderEpoch(role.LeaderEpoch)
	}
	var failed []pendingAck
	s := &r.repl
	s.mu.Lock()
	old := s.role
	leader := role.Leader == role.Self
	s.lease = lease
	newTerm := leader != s.leader || old.LeaderEpoch != role.LeaderEpoch
	s.role = role
	s.role.Replicas = slices.Clone(role.Replicas)
	s.role.ISR = slices.Clone(role.ISR)
	s.on = role.replicated()
	if newTerm {
		failed = s.acks
		s.acks = nil
		s.followers = map[int32]*followerState{}
		s.pendingAdds = nil
		s.proposing = false
		s.since = r.now()
	} else if old.PartitionEpoch != role.PartitionEpoch {
		// A committed ISR change: what was proposed is in it now, or was refused.
		s.pendingAdds = nil
		s.proposing = false
	}
	s.leader = leader
	s.mu.Unlock()
	for _, p := range failed {
		p.res.Err = errLeadershipMoved
		p.req.Owner.AppendDone(p.req.Slot, p.res)
	}
	if leader && s.on {
		r.updateHighWatermark()
	}
}

// Role returns the replica's role as the metadata last said.
func (r *Replica) Role() Role {
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return r.repl.role
}

// Replicated reports whether the partition has more than one replica.
func (r *Replica) Replicated() bool {
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return r.repl.on
}

// IsLeader reports whether this node's replica leads the partition (a single node's always does).
func (r *Replica) IsLeader() bool {
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return r.repl.leader || r.repl.role.Replicas == nil
}

// LogEndOffset is the offset the next batch gets.
func (r *Replica) LogEndOffset() int64 { return r.log.EndOffset() }

// durableEnd is what this replica has made durable: its log end when nothing is ever synced.
func (r *Replica) durableEnd() int64 {
	if r.policy.Mode == FsyncNever {
		return r.log.EndOffset()
	}
	return min(r.log.DurableEnd(), r.log.EndOffset())
}

// admitProduce is checked on the writer before a client's records are appended: a follower
// refuses them, a leader cut off from the controller refuses them, and acks=all needs
// min.insync.replicas in the ISR.
func (r *Replica) admitProduce(req *AppendRequest) *errcode.Error {
	s := &r.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.role.Replicas == nil {
		// A single node: its one replica is the ISR.
		if req.Acks == -1 && r.cfg.MinInsyncReplicas > 1 {
			return errNotEnoughReplicas
		}
		return nil
	}
	if !s.leader {
		return errFollower
	}
	if s.lease != nil && !s.lease() {
		return errNoController
	}
	if req.Acks == -1 && len(s.role.ISR) < s.role.MinISR {
		return errNotEnoughReplicas // as Kafka, whatever the replication factor
	}
	return nil
}

// holdAck keeps an appended acks=all request until the high watermark passes required; false:
// the partition is not replicated, answer now.
func (r *Replica) holdAck(req *AppendRequest, res AppendResult, required int64) bool {
	if req.Acks != -1 {
		return false
	}
	s := &r.repl
	s.mu.Lock()
	if !s.on {
		s.mu.Unlock()
		return false
	}
	if !s.leader {
		s.mu.Unlock()
		res.Err = errLeadershipMoved
		req.Owner.AppendDone(req.Slot, res)
		return true
	}
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s.acks = append(s.acks, pendingAck{req: req, res: res, required: required, deadline: r.now().Add(timeout)})
	s.mu.Unlock()
	return true
}

// updateHighWatermark moves the leader's high watermark up to the smallest durable end over the
// ISR (and the followers proposed for it), and answers the acks=all appends it passed.
func (r *Replica) updateHighWatermark() {
	s := &r.repl
	s.mu.Lock()
	if !s.leader || !s.on {
		s.mu.Unlock()
		return
	}
	hw := r.durableEnd()
	for _, set := range [][]int32{s.role.ISR, s.pendingAdds} {
		for _, id := range set {
			if id == s.role.Self {
				continue
			}
			f := s.followers[id]
			if f == nil {
				hw = -1 // not heard from since this node became leader: no advance
				break
			}
			hw = min(hw, f.durableEnd)
		}
	}
	old := r.highWatermark.Load()
	moved := hw > old
	if moved {
		r.highWatermark.Store(hw)
	} else {
		hw = old
	}
	done := r.takeAcks(hw, r.now())
	s.mu.Unlock()
	r.answer(done)
	if moved {
		r.wake()
	}
}

// takeAcks removes the pending acks the high watermark hw passed or whose deadline passed, with
// their outcome set. Called with repl.mu held.
func (r *Replica) takeAcks(hw int64, now time.Time) []pendingAck {
	s := &r.repl
	if len(s.acks) == 0 {
		return nil
	}
	var done []pendingAck
	kept := s.acks[:0]
	for _, p := range s.acks {
		switch {
		case p.required <= hw:
			if len(s.role.ISR) < s.role.MinISR {
				p.res.Err = errNotEnoughAfterAppend
			}
			done = append(done, p)
		case !now.Before(p.deadline):
			p.res.Err = errProduceTimedOut
			done = append(done, p)
		default:
			kept = append(kept, p)
		}
	}
	clear(s.acks[len(kept):])
	s.acks = kept
	return done
}

func (r *Replica) answer(done []pendingAck) {
	for _, p := range done {
		p.req.Owner.AppendDone(p.req.Slot, p.res)
	}
}

// expireAcks answers the acks=all appends whose produce timeout passed.
func (r *Replica) expireAcks() {
	s := &r.repl
	s.mu.Lock()
	done := r.takeAcks(r.highWatermark.Load(), r.now())
	s.mu.Unlock()
	r.answer(done)
}

// failAcks answers every waiting acks=all append with err (the replica is closing).
func (r *Replica) failAcks(err error) {
	s := &r.repl
	s.mu.Lock()
	failed := s.acks
	s.acks = nil
	s.mu.Unlock()
	for _, p := range failed {
		p.res.Err = err
		p.req.Owner.AppendDone(p.req.Slot, p.res)
	}
}

// wake signals the long-polling fetches: consumers look at the high watermark, followers at the
// log end.
func (r *Replica) wake() {
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

// FollowerFetch is what the leader decided about one follower fetch of this partition.
type FollowerFetch struct {
	Code errcode.Code
	// DivergingEpoch and DivergingEndOffset are set (not -1) when the follower's log diverged
	// from the leader's at its last fetched epoch: it truncates to the end offset.
	DivergingEpoch     int32
	DivergingEndOffset int64
}

// FollowerFetched checks one follower fetch against the leader's log and records where the
// follower is: fetchOffset is its log end, lastEpoch the newest epoch in its log, durable what
// it has fsynced, leaderEpoch the leader epoch it follows. A follower whose log diverged gets
// the diverging epoch (KIP-279, KIP-320) and is not counted until it has truncated.
func (r *Replica) FollowerFetched(from int32, incarnation int64, leaderEpoch int32, fetchOffset int64, lastEpoch int32, durable int64) FollowerFetch {
	out := FollowerFetch{DivergingEpoch: -1, DivergingEndOffset: -1}
	s := &r.repl
	s.mu.Lock()
	switch {
	case !s.leader:
		s.mu.Unlock()
		out.Code = errcode.NotLeaderOrFollower
		return out
	case leaderEpoch < s.role.LeaderEpoch:
		s.mu.Unlock()
		out.Code = errcode.FencedLeaderEpoch
		return out
	case leaderEpoch > s.role.LeaderEpoch:
		s.mu.Unlock()
		out.Code = errcode.UnknownLeaderEpoch
		return out
	case !slices.Contains(s.role.Replicas, from):
		s.mu.Unlock()
		out.Code = errcode.NotLeaderOrFollower
		return out
	}
	s.mu.Unlock()
	leo := r.log.EndOffset()
	if fetchOffset < r.log.StartOffset() {
		out.Code = errcode.OffsetOutOfRange
		return out
	}
	if lastEpoch >= 0 {
		end, epoch := r.EndOffsetForEpoch(lastEpoch)
		if epoch < lastEpoch || end < fetchOffset {
			out.DivergingEpoch, out.DivergingEndOffset = epoch, end
			return out
		}
	} else if fetchOffset > leo {
		out.DivergingEpoch, out.DivergingEndOffset = -1, leo
		return out
	}
	if fetchOffset > leo {
		// A log end past the leader's within the same epoch: the follower truncates.
		out.DivergingEpoch, out.DivergingEndOffset = r.LeaderEpoch(), leo
		return out
	}
	now := r.now()
	s.mu.Lock()
	if s.leader && s.role.LeaderEpoch == leaderEpoch {
		f := s.followers[from]
		if f == nil || f.incarnation != incarnation {
			f = &followerState{incarnation: incarnation, caughtUp: s.since}
			if f.caughtUp.IsZero() {
				f.caughtUp = now
			}
			s.followers[from] = f
		}
		switch {
		case fetchOffset >= leo:
			f.caughtUp = now
		case fetchOffset >= f.lastFetchLEO && !f.lastFetch.IsZero():
			f.caughtUp = f.lastFetch
		}
		f.fetchOffset = fetchOffset
		f.durableEnd = min(durable, fetchOffset)
		f.lastFetch, f.lastFetchLEO = now, leo
	}
	s.mu.Unlock()
	r.updateHighWatermark()
	return out
}

// ISRChange is an ISR change the leader wants the controller to commit.
type ISRChange struct {
	LeaderEpoch, PartitionEpoch int32
	ISR                         []int32
	// Incarnations are what the leader saw each follower of ISR fetch with.
	Incarnations map[int32]int64
}

// WantISRChange says whether the ISR should change (KIP-497): members that have not caught up
// with the leader's log end for lagMax leave it; followers that have caught up with the high
// watermark join it. Only one change is on its way at a time; the followers proposed count for
// the high watermark from now on, so a follower joining never lets it pass what the follower
// lacks.
func (r *Replica) WantISRChange(lagMax time.Duration) (ISRChange, bool) {
	s := &r.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	now := r.now()
	if !s.leader || !s.on || (s.proposing && now.Before(s.retryAt)) {
		return ISRChange{}, false
	}
	hw := r.highWatermark.Load()
	epochStart := r.leaderEpochStart()
	isr := make([]int32, 0, len(s.role.Replicas))
	var added []int32
	changed := false
	inc := map[int32]int64{}
	for _, id := range s.role.Replicas {
		f := s.followers[id]
		if f != nil {
			inc[id] = f.incarnation
		}
		in := slices.Contains(s.role.ISR, id)
		switch {
		case id == s.role.Self:
			isr = append(isr, id)
		case in && f == nil && now.Sub(s.since) > lagMax:
			changed = true // never fetched since this node became leader
		case in && f != nil && now.Sub(f.caughtUp) > lagMax:
			changed = true
		case in:
			isr = append(isr, id)
		case f != nil && f.fetchOffset >= hw && f.fetchOffset >= epochStart && now.Sub(f.lastFetch) < lagMax:
			isr = append(isr, id)
			added = append(added, id)
			changed = true
		}
	}
	if !changed {
		return ISRChange{}, false
	}
	s.proposing, s.retryAt = true, now.Add(isrOutcomeWait)
	for _, id := range added {
		if !slices.Contains(s.pendingAdds, id) {
			s.pendingAdds = append(s.pendingAdds, id)
		}
	}
	return ISRChange{LeaderEpoch: s.role.LeaderEpoch, PartitionEpoch: s.role.PartitionEpoch, ISR: isr, Incarnations: inc}, true
}

// ISROutcome is what became of an ISR proposal.
type ISROutcome int

// ISR proposal outcomes.
const (
	// ISRCommitted: the controller committed it at the partition epoch given; the change holds
	// until this replica's role shows that epoch (SetRole).
	ISRCommitted ISROutcome = iota
	// ISRRefused: the controller refused it for good (a member not eligible): the followers it
	// would have added stop counting, and the next check may propose again.
	ISRRefused
	// ISRUncertain: no answer (no controller, a timeout), or refused for a stale epoch, which
	// an earlier proposal of the same change may have caused: the followers it would add keep
	// counting until the metadata says, and it may be proposed again a little later.
	ISRUncertain
)

// isrOutcomeWait bounds how long a proposal in flight, or committed and not yet applied here,
// holds back the next one; isrRetryWait how long an uncertain one does.
const (
	isrOutcomeWait = 5 * time.Second
	isrRetryWait   = time.Second
)

// ISRChangeDone records what became of the ISR proposal WantISRChange returned.
// partitionEpoch is the committed change's.
func (r *Replica) ISRChangeDone(outcome ISROutcome, partitionEpoch int32) {
	s := &r.repl
	s.mu.Lock()
	switch outcome {
	case ISRCommitted:
		if s.role.PartitionEpoch >= partitionEpoch {
			s.proposing = false // the new ISR is here already (SetRole cleared the rest)
		} else {
			s.retryAt = r.now().Add(isrOutcomeWait)
		}
	case ISRRefused:
		s.pendingAdds = nil
		s.proposing = false
	default:
		s.retryAt = r.now().Add(isrRetryWait)
	}
	s.mu.Unlock()
	if outcome == ISRRefused {
		r.updateHighWatermark()
	}
}

// leaderEpochStart is the first offset of the leader's current epoch (its log end when it has
// written nothing in it yet).
func (r *Replica) leaderEpochStart() int64 {
	epoch := r.LeaderEpoch()
	for _, e := range r.log.EpochEntries() {
		if e.Epoch == epoch {
			return e.StartOffset
		}
	}
	return r.log.EndOffset()
}

// FollowerLag is one replica's position as the leader last saw it.
type FollowerLag struct {
	Node        int32
	FetchOffset int64
	DurableEnd  int64
	LastFetch   time.Time
	CaughtUp    time.Time
}

// Followers returns where each follower is, as this leader saw them (nil on a follower).
func (r *Replica) Followers() []FollowerLag {
	s := &r.repl
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leader {
		return nil
	}
	out := make([]FollowerLag, 0, len(s.followers))
	for id, f := range s.followers {
		out = append(out, FollowerLag{Node: id, FetchOffset: f.fetchOffset, DurableEnd: f.durableEnd, LastFetch: f.lastFetch, CaughtUp: f.caughtUp})
	}
	slices.SortFunc(out, func(a, b FollowerLag) int { return int(a.Node - b.Node) })
	return out
}
