package core

import (
	"sync/atomic"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

// ErrInternalTopic answers a client's produce to an internal topic, which only the broker writes.
var ErrInternalTopic = errcode.New(errcode.InvalidTopic, "internal topics are written by the broker only")

// ErrUnknownPartition answers a produce or fetch for a partition this node does not host.
var ErrUnknownPartition = errcode.New(errcode.UnknownTopicOrPartition, "this server does not host this topic-partition")

// ErrNotLeader answers a produce or fetch for a partition another node leads; the response's
// leader hint names it.
var ErrNotLeader = errcode.New(errcode.NotLeaderOrFollower, "this node does not lead the partition: another node does")

// ErrLeaderNotAvailable answers a produce or fetch for a partition no node leads right now (its
// node is fenced, or the partition is being opened); clients retry.
var ErrLeaderNotAvailable = errcode.New(errcode.LeaderNotAvailable, "the partition has no leader available right now")

// RouteError is the error of a route without a replica here (rt.Code): one of the sentinels
// above, so answering it allocates nothing.
func RouteError(code errcode.Code) *errcode.Error {
	switch code {
	case errcode.NotLeaderOrFollower:
		return ErrNotLeader
	case errcode.LeaderNotAvailable:
		return ErrLeaderNotAvailable
	default:
		return ErrUnknownPartition
	}
}

// Appends is the fan-out of one produce request to its partitions' replicas, shared by both
// protocols' produce transactions: one AppendRequest and one result per partition, and a
// countdown that calls the owner's finish function when the last partition has answered. It is
// reused with the pooled transaction that embeds it, so a produce allocates nothing here.
//
//	a.Reset(n)          // on the loop, once the partitions are counted
//	a.Submit(slot, ...) // or a.Fail(slot, err), once per slot
//	a.End()             // drops the guard: finish runs after the last answer
type Appends struct {
	Requests []cluster.AppendRequest
	Results  []cluster.AppendResult
	// Acks and TimeoutMs are the produce's: acks=all appends to a replicated partition are
	// answered once the in-sync replicas have them, or after the timeout.
	Acks      int16
	TimeoutMs int32
	pending   atomic.Int32
	// finish runs once, on whichever goroutine delivers the last answer. The owner binds it
	// once, when the pooled transaction is created.
	finish func()
}

// SetFinish sets the function that runs once every partition has answered.
func (a *Appends) SetFinish(f func()) { a.finish = f }

// HasFinish reports whether SetFinish was called (pooled owners bind it on first use).
func (a *Appends) HasFinish() bool { return a.finish != nil }

// Reset sizes the fan-out for n partitions and arms the countdown with a guard of one, so finish
// cannot run before End even if every replica answers at once.
func (a *Appends) Reset(n int) {
	if cap(a.Requests) < n {
		a.Requests = make([]cluster.AppendRequest, n)
		a.Results = make([]cluster.AppendResult, n)
	}
	a.Requests, a.Results = a.Requests[:n], a.Results[:n]
	a.pending.Store(int32(n) + 1)
}

// Submit hands a client's records for slot to the replica rt routes them to, without blocking;
// a route without a replica here fails the slot with its code (RouteError). Internal topics are
// refused: a client must not write the broker's own records.
func (a *Appends) Submit(slot int, rt cluster.Route, records []byte) {
	r := rt.Replica
	if r == nil {
		a.Fail(slot, RouteError(rt.Code))
		return
	}
	if r.Internal() {
		a.Fail(slot, ErrInternalTopic)
		return
	}
	req := &a.Requests[slot]
	*req = cluster.AppendRequest{Records: records, Owner: a, Slot: slot, Acks: a.Acks, TimeoutMs: a.TimeoutMs}
	if err := r.Submit(req); err != nil {
		a.Fail(slot, err)
	}
}

// Fail answers slot with err without appending.
func (a *Appends) Fail(slot int, err error) {
	a.AppendDone(slot, cluster.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: err})
}

// AppendDone records one partition's outcome (cluster.Completer).
func (a *Appends) AppendDone(slot int, res cluster.AppendResult) {
	a.Results[slot] = res
	a.countDown()
}

// End drops the guard taken by Reset.
func (a *Appends) End() { a.countDown() }

func (a *Appends) countDown() {
	if a.pending.Add(-1) == 0 {
		a.finish()
	}
}

// Clear drops references to request buffers before the owner goes back to its pool.
func (a *Appends) Clear() {
	clear(a.Requests)
	clear(a.Results)
}
