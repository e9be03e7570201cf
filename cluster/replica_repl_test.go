package cluster

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

var rf3 = []int32{0, 1, 2}

// TestReplHighWatermarkMinDurableOverISR: the leader's high watermark is the smallest durable
// end over the in-sync replicas, its own included; a follower not heard from since this node
// became leader holds it where it is; it never comes down, not even when a follower restarts
// behind it. FsyncNever counts the leader's log end as durable.
func TestReplHighWatermarkMinDurableOverISR(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncNever}, nil)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	produceAcks1(t, r, 10)
	hw := func(want int64, when string) {
		t.Helper()
		if got := r.HighWatermark(); got != want {
			t.Fatalf("%s: high watermark %d, want %d", when, got, want)
		}
	}
	hw(0, "no follower heard from")
	fetchAt(t, r, 1, 10, 10)
	hw(0, "follower 2 not heard from since the leadership began")
	fetchAt(t, r, 2, 4, 4)
	hw(4, "follower 2 at 4")
	fetchAt(t, r, 2, 10, 7)
	hw(7, "follower 2 has 10 but fsynced 7")
	fetchAt(t, r, 2, 10, 25) // a durable end past the fetch offset counts as the fetch offset
	hw(10, "every in-sync replica durable at 10 (FsyncNever: the leader's log end)")

	produceAcks1(t, r, 5)
	hw(10, "the leader appended, the followers have not fetched")
	fetchAt(t, r, 1, 15, 15)
	hw(10, "follower 2 still at 10")

	// Follower 1 restarts (a new incarnation) having lost its unsynced tail.
	fetchAtInc(t, r, 1, 2, 6, 6)
	hw(10, "a follower restarted behind the high watermark")
	if f := r.Followers(); len(f) != 2 || f[0].Node != 1 || f[0].FetchOffset != 6 || f[0].DurableEnd != 6 || f[1].Node != 2 || f[1].FetchOffset != 10 {
		t.Fatalf("followers %+v", f)
	}
	fetchAt(t, r, 2, 15, 15)
	hw(10, "follower 1 (restarted) at 6")
	fetchAtInc(t, r, 1, 2, 15, 15)
	hw(15, "both caught up")
}

// TestReplNewLeadershipForgetsFollowers: a new leader epoch forgets where the followers were:
// the high watermark stays (it never comes down) and moves again only once every in-sync
// follower has fetched in the new epoch.
func TestReplNewLeadershipForgetsFollowers(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	produceAcks1(t, r, 4)
	fetchAt(t, r, 1, 4, 4)
	fetchAt(t, r, 2, 4, 4)
	if hw := r.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d, want 4", hw)
	}
	r.SetRole(leaderRole(2, rf3, rf3, 2), nil)
	if f := r.Followers(); len(f) != 0 {
		t.Fatalf("followers after a new leader epoch: %+v, want none", f)
	}
	produceAcks1(t, r, 3)
	fetchAt(t, r, 1, 7, 7)
	if hw := r.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d with follower 2 not heard from in epoch 2, want 4", hw)
	}
	fetchAt(t, r, 2, 7, 7)
	if hw := r.HighWatermark(); hw != 7 {
		t.Fatalf("high watermark %d, want 7", hw)
	}
}

// TestReplFsyncIntervalLeaderTail: with FsyncInterval the leader's unsynced tail is not in the
// high watermark, however far the followers are; the next sync lets it through. FsyncAlways
// syncs before the followers can fetch.
func TestReplFsyncIntervalLeaderTail(t *testing.T) {
	t.Run("unsynced", func(t *testing.T) {
		r := newReplReplica(t, FsyncPolicy{Mode: FsyncInterval, Interval: time.Hour}, nil)
		r.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 1), nil)
		produceAcks1(t, r, 5)
		fetchAt(t, r, 1, 5, 5)
		if d := r.log.DurableEnd(); d != 0 {
			t.Fatalf("durable end %d before any sync, want 0", d)
		}
		if hw := r.HighWatermark(); hw != 0 {
			t.Fatalf("high watermark %d past the leader's durable end 0", hw)
		}
	})
	t.Run("synced by the interval", func(t *testing.T) {
		r := newReplReplica(t, FsyncPolicy{Mode: FsyncInterval, Interval: 20 * time.Millisecond}, nil)
		r.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 1), nil)
		produceAcks1(t, r, 5)
		fetchAt(t, r, 1, 5, 5)
		for deadline := time.Now().Add(waitTimeout); r.HighWatermark() != 5; {
			if time.Now().After(deadline) {
				t.Fatalf("high watermark %d after the interval's sync, want 5 (durable end %d)", r.HighWatermark(), r.log.DurableEnd())
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
	})
	t.Run("always", func(t *testing.T) {
		r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
		r.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 1), nil)
		produceAcks1(t, r, 5)
		fetchAt(t, r, 1, 5, 5)
		if hw := r.HighWatermark(); hw != 5 {
			t.Fatalf("high watermark %d, want 5", hw)
		}
	})
}

// TestReplSingleReplicaIsSingleNode: a partition of one replica keeps the single node's rule:
// the high watermark is the log end right after the append, synced or not, and acks=all is
// answered at once.
func TestReplSingleReplicaIsSingleNode(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncInterval, Interval: time.Hour}, nil)
	r.SetRole(leaderRole(1, []int32{0}, []int32{0}, 1), nil)
	if r.Replicated() || !r.IsLeader() {
		t.Fatalf("replicated %v, leader %v: want a single leading replica", r.Replicated(), r.IsLeader())
	}
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(3, testNow.UnixMilli(), 10), -1, 1000)
	if d := c.next(t); d.res.Err != nil || d.res.BaseOffset != 0 {
		t.Fatalf("acks=all on one replica: %+v", d.res)
	}
	if hw, leo := r.HighWatermark(), r.LogEndOffset(); hw != 3 || leo != 3 {
		t.Fatalf("high watermark %d, log end %d, want 3 and 3", hw, leo)
	}
}

// TestReplAcksAllHeldUntilHighWatermark: acks=all is answered once the high watermark passes the
// batch's end, acks=1 at once.
func TestReplAcksAllHeldUntilHighWatermark(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(3, testNow.UnixMilli(), 10), -1, 30000)
	waitAppended(t, r, 3)
	noAnswerYet(t, c, "acks=all before any follower fetched")
	submitAcks(t, r, c, 1, makeBatch(2, testNow.UnixMilli(), 10), 1, 30000)
	if d := c.next(t); d.slot != 1 || d.res.Err != nil || d.res.BaseOffset != 3 {
		t.Fatalf("acks=1: slot %d %+v, want slot 1 at 3", d.slot, d.res)
	}
	fetchAt(t, r, 1, 5, 5)
	noAnswerYet(t, c, "follower 2 not heard from")
	fetchAt(t, r, 2, 2, 2)
	noAnswerYet(t, c, "high watermark 2, batch ends at 3")
	fetchAt(t, r, 2, 3, 3)
	d := c.next(t)
	if d.slot != 0 || d.res.Err != nil || d.res.BaseOffset != 0 {
		t.Fatalf("acks=all: slot %d %+v (code %v), want slot 0 at 0", d.slot, d.res, codeOf(d.res.Err))
	}
	fetchAt(t, r, 2, 5, 5)
	noAnswerYet(t, c, "after every ack was answered")
}

// TestReplAcksAllNotEnoughReplicas: acks=all with fewer in-sync replicas than
// min.insync.replicas is refused before anything is appended; acks=1 is taken.
func TestReplAcksAllNotEnoughReplicas(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(leaderRole(1, rf3, []int32{0}, 2), nil)
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(3, testNow.UnixMilli(), 10), -1, 30000)
	if d := c.next(t); codeOf(d.res.Err) != errcode.NotEnoughReplicas || d.res.BaseOffset != -1 {
		t.Fatalf("acks=all with ISR 1 < 2: %+v (code %v), want NOT_ENOUGH_REPLICAS", d.res, codeOf(d.res.Err))
	}
	if leo := r.LogEndOffset(); leo != 0 {
		t.Fatalf("log end %d after a refused produce, want 0", leo)
	}
	if base := produceAcks1(t, r, 2); base != 0 {
		t.Fatalf("acks=1 at %d, want 0", base)
	}
}

// TestReplAcksAllNotEnoughAfterAppend: an acks=all append whose ISR shrank below
// min.insync.replicas before the high watermark passed it is answered
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (the records are in the log).
func TestReplAcksAllNotEnoughAfterAppend(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	role := leaderRole(1, rf3, []int32{0, 1}, 2)
	r.SetRole(role, nil)
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(3, testNow.UnixMilli(), 10), -1, 30000)
	waitAppended(t, r, 3)
	noAnswerYet(t, c, "follower 1 not heard from")
	role.ISR, role.PartitionEpoch = []int32{0}, role.PartitionEpoch+1
	r.SetRole(role, nil) // the same leader epoch: the ack stays, the smaller ISR lets the HW pass
	d := c.next(t)
	if codeOf(d.res.Err) != errcode.NotEnoughReplicasAfterAppend || d.res.BaseOffset != 0 {
		t.Fatalf("%+v (code %v), want NOT_ENOUGH_REPLICAS_AFTER_APPEND at 0", d.res, codeOf(d.res.Err))
	}
	if hw := r.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
}

// TestReplAcksAllTimeout: an acks=all append the ISR does not commit within its timeout is
// answered REQUEST_TIMED_OUT once, and not again when the followers catch up; a timeout of 0
// waits the default 30 s.
func TestReplAcksAllTimeout(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(1, testNow.UnixMilli(), 10), -1, 1000)
	submitAcks(t, r, c, 1, makeBatch(1, testNow.UnixMilli(), 10), -1, 0)
	waitAppended(t, r, 2)
	clk.advance(999 * time.Millisecond)
	r.expireAcks()
	noAnswerYet(t, c, "999 ms into a 1000 ms timeout")
	clk.advance(time.Millisecond)
	r.expireAcks()
	if d := c.next(t); d.slot != 0 || codeOf(d.res.Err) != errcode.RequestTimedOut || d.res.BaseOffset != 0 {
		t.Fatalf("slot %d %+v (code %v), want slot 0 REQUEST_TIMED_OUT", d.slot, d.res, codeOf(d.res.Err))
	}
	clk.advance(28999 * time.Millisecond) // 29.999 s after the appends
	r.expireAcks()
	noAnswerYet(t, c, "timeout 0 before 30 s")
	clk.advance(time.Millisecond)
	r.expireAcks()
	if d := c.next(t); d.slot != 1 || codeOf(d.res.Err) != errcode.RequestTimedOut {
		t.Fatalf("slot %d %+v (code %v), want slot 1 REQUEST_TIMED_OUT after the default 30 s", d.slot, d.res, codeOf(d.res.Err))
	}
	fetchAt(t, r, 1, 2, 2)
	fetchAt(t, r, 2, 2, 2)
	if hw := r.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d, want 2", hw)
	}
	noAnswerYet(t, c, "timed out acks after the followers caught up")
}

// TestReplAcksAllLeadershipMoved: a held acks=all append is answered NOT_LEADER_OR_FOLLOWER when
// the metadata makes this node a follower or gives the partition a new leader epoch.
func TestReplAcksAllLeadershipMoved(t *testing.T) {
	for _, tc := range []struct {
		name string
		role Role
	}{
		{"now a follower", Role{Self: 0, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 2, Replicas: rf3, ISR: rf3, MinISR: 2}},
		{"leader epoch bumped", leaderRole(2, rf3, rf3, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
			r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
			c := newCollector()
			submitAcks(t, r, c, 0, makeBatch(2, testNow.UnixMilli(), 10), -1, 30000)
			waitAppended(t, r, 2)
			noAnswerYet(t, c, "before the role changed")
			r.SetRole(tc.role, nil)
			if d := c.next(t); codeOf(d.res.Err) != errcode.NotLeaderOrFollower {
				t.Fatalf("%+v (code %v), want NOT_LEADER_OR_FOLLOWER", d.res, codeOf(d.res.Err))
			}
			fetchers := 0
			if r.IsLeader() {
				fetchAt(t, r, 1, 2, 2)
				fetchAt(t, r, 2, 2, 2)
				fetchers = 2
			}
			noAnswerYet(t, c, "answered once")
			if f := r.Followers(); len(f) != fetchers {
				t.Fatalf("followers %+v", f)
			}
		})
	}
}

// TestReplAcksAllClose: closing the replica answers the held acks=all appends.
func TestReplAcksAllClose(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(2, testNow.UnixMilli(), 10), -1, 30000)
	waitAppended(t, r, 2)
	noAnswerYet(t, c, "before Close")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); codeOf(d.res.Err) != errcode.NotLeaderOrFollower {
		t.Fatalf("%+v (code %v), want NOT_LEADER_OR_FOLLOWER (the replica closed)", d.res, codeOf(d.res.Err))
	}
	noAnswerYet(t, c, "after Close")
}

// TestReplAcksAllDuplicate: a retried idempotent batch under acks=all gets the original offset,
// once the original is committed, and is not appended again.
func TestReplAcksAllDuplicate(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 2), nil)
	c := newCollector()
	submitAcks(t, r, c, 0, idempotentBatch(7, 0, 3), -1, 30000)
	waitAppended(t, r, 3)
	submitAcks(t, r, c, 1, idempotentBatch(7, 0, 3), -1, 30000) // the client's retry
	waitHeld(t, r, 2)
	noAnswerYet(t, c, "original and retry before the follower fetched")
	if leo := r.LogEndOffset(); leo != 3 {
		t.Fatalf("log end %d after a retry, want 3", leo)
	}
	fetchAt(t, r, 1, 3, 3)
	got := map[int]AppendResult{}
	for i := 0; i < 2; i++ {
		d := c.next(t)
		got[d.slot] = d.res
	}
	for slot, res := range got {
		if res.Err != nil || res.BaseOffset != 0 {
			t.Fatalf("slot %d: %+v, want offset 0", slot, res)
		}
	}
	if len(got) != 2 {
		t.Fatalf("answers %v, want slots 0 and 1", got)
	}
	submitAcks(t, r, c, 2, idempotentBatch(7, 0, 3), -1, 30000) // retried once more, after the commit
	if d := c.next(t); d.slot != 2 || d.res.Err != nil || d.res.BaseOffset != 0 {
		t.Fatalf("retry after commit: slot %d %+v, want offset 0", d.slot, d.res)
	}
	if leo := r.LogEndOffset(); leo != 3 {
		t.Fatalf("log end %d, want 3", leo)
	}
}

// TestReplProduceRefused: a follower takes no client produce, nor does a leader out of touch
// with the controller; nothing is appended.
func TestReplProduceRefused(t *testing.T) {
	t.Run("follower", func(t *testing.T) {
		r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
		r.SetRole(followerRole(1, 1), nil)
		for _, acks := range []int16{1, -1} {
			c := newCollector()
			submitAcks(t, r, c, 0, makeBatch(1, testNow.UnixMilli(), 10), acks, 30000)
			if d := c.next(t); codeOf(d.res.Err) != errcode.NotLeaderOrFollower {
				t.Fatalf("acks=%d on a follower: %+v (code %v)", acks, d.res, codeOf(d.res.Err))
			}
		}
		if leo := r.LogEndOffset(); leo != 0 || r.IsLeader() || r.Followers() != nil {
			t.Fatalf("log end %d, leader %v, followers %v", leo, r.IsLeader(), r.Followers())
		}
	})
	t.Run("no lease", func(t *testing.T) {
		r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
		var inContact atomic.Bool
		r.SetRole(leaderRole(1, rf3, rf3, 2), inContact.Load)
		c := newCollector()
		submitAcks(t, r, c, 0, makeBatch(1, testNow.UnixMilli(), 10), 1, 30000)
		if d := c.next(t); codeOf(d.res.Err) != errcode.NotLeaderOrFollower {
			t.Fatalf("leader without a lease: %+v (code %v)", d.res, codeOf(d.res.Err))
		}
		if leo := r.LogEndOffset(); leo != 0 {
			t.Fatalf("log end %d, want 0", leo)
		}
		inContact.Store(true)
		if base := produceAcks1(t, r, 1); base != 0 {
			t.Fatalf("with the lease: offset %d, want 0", base)
		}
	})
}

// epochLeader is a leader at epoch 4 of replicas 0, 1, 2 whose log has epochs 0 (offsets 0-3),
// 2 (4-7) and 4 (8-11), as a follower promoted at epoch 4 would.
func epochLeader(t *testing.T) *Replica {
	t.Helper()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	appendStamped(t, r, stamped(0, 0, 4), stamped(4, 2, 4), stamped(8, 4, 4))
	r.ResetHighWatermark(0)
	r.SetRole(leaderRole(4, rf3, rf3, 2), nil)
	return r
}

// TestReplFollowerFetchedChecks: the leader's answer to a follower's fetch, as Kafka's
// (KIP-320): a stale or unknown leader epoch, a stranger, and the diverging epoch and end offset
// a follower whose log diverged truncates to. A divergent fetch records nothing.
func TestReplFollowerFetchedChecks(t *testing.T) {
	type want struct {
		code     errcode.Code
		divEpoch int32
		divEnd   int64
	}
	ok := want{errcode.None, -1, -1}
	cases := []struct {
		name        string
		from        int32
		leaderEpoch int32
		offset      int64
		lastEpoch   int32
		want        want
	}{
		{"older leader epoch", 1, 3, 12, 4, want{errcode.FencedLeaderEpoch, -1, -1}},
		{"newer leader epoch", 1, 5, 12, 4, want{errcode.UnknownLeaderEpoch, -1, -1}},
		{"not a replica", 9, 4, 12, 4, want{errcode.NotLeaderOrFollower, -1, -1}},
		{"caught up", 1, 4, 12, 4, ok},
		{"empty follower", 1, 4, 0, -1, ok},
		{"at the end of epoch 0", 1, 4, 4, 0, ok},
		{"inside epoch 2", 1, 4, 6, 2, ok},
		{"at the end of epoch 2", 1, 4, 8, 2, ok},
		// Epoch 1 was never the leader's: the largest below it is 0, which ends at 4.
		{"last epoch unknown to the leader", 1, 4, 6, 1, want{errcode.None, 0, 4}},
		{"last epoch 3 unknown to the leader", 1, 4, 10, 3, want{errcode.None, 2, 8}},
		{"ahead within the same epoch", 1, 4, 14, 4, want{errcode.None, 4, 12}},
		{"epoch 2 ended before the fetch offset", 1, 4, 10, 2, want{errcode.None, 2, 8}},
		{"epoch 0 ended before the fetch offset", 2, 4, 7, 0, want{errcode.None, 0, 4}},
		{"no epoch, past the log end", 1, 4, 13, -1, want{errcode.None, -1, 12}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := epochLeader(t)
			ff := r.FollowerFetched(tc.from, 1, tc.leaderEpoch, tc.offset, tc.lastEpoch, tc.offset)
			if got := (want{ff.Code, ff.DivergingEpoch, ff.DivergingEndOffset}); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			recorded := followerAt(r, tc.from)
			if tc.want == ok && recorded != tc.offset {
				t.Fatalf("consistent fetch at %d recorded %d", tc.offset, recorded)
			}
			if tc.want != ok && recorded != -1 {
				t.Fatalf("refused or divergent fetch recorded at %d", recorded)
			}
		})
	}
}

// TestReplFollowerFetchedNewEpochNotWritten: a leader that has written nothing in its epoch yet
// answers as though the epoch began at its log end (Kafka's leader records its epoch when
// elected).
func TestReplFollowerFetchedNewEpochNotWritten(t *testing.T) {
	r := epochLeader(t)
	r.SetRole(leaderRole(6, rf3, rf3, 2), nil)
	if ff := r.FollowerFetched(1, 1, 6, 12, 4, 12); ff.Code != errcode.None || ff.DivergingEpoch != -1 {
		t.Fatalf("follower at the end of epoch 4: %+v, want consistent", ff)
	}
	// Epoch 5 was never written by anyone the leader knows: epoch 4 ends where 6 began, at 12.
	if ff := r.FollowerFetched(2, 1, 6, 13, 5, 13); ff.DivergingEpoch != 4 || ff.DivergingEndOffset != 12 {
		t.Fatalf("follower at epoch 5: %+v, want diverging epoch 4 ending at 12", ff)
	}
}

// TestReplFollowerFetchedOutOfRange: a fetch below the leader's log start is OFFSET_OUT_OF_RANGE,
// whatever the follower's epoch.
func TestReplFollowerFetchedOutOfRange(t *testing.T) {
	r := epochLeader(t)
	fetchAt(t, r, 1, 12, 12)
	fetchAt(t, r, 2, 12, 12)
	if start, err := r.DeleteRecords(6); err != nil || start != 6 {
		t.Fatalf("DeleteRecords: %d %v", start, err)
	}
	for _, lastEpoch := range []int32{-1, 0, 2} {
		if ff := r.FollowerFetched(1, 1, 4, 5, lastEpoch, 5); ff.Code != errcode.OffsetOutOfRange {
			t.Fatalf("fetch at 5 below log start 6 (last epoch %d): %+v", lastEpoch, ff)
		}
	}
	if ff := r.FollowerFetched(1, 1, 4, 6, 2, 6); ff.Code != errcode.None || ff.DivergingEpoch != -1 {
		t.Fatalf("fetch at the log start: %+v", ff)
	}
}

// TestReplFollowerFetchedNotLeader: a follower answers replication fetches NOT_LEADER_OR_FOLLOWER.
func TestReplFollowerFetchedNotLeader(t *testing.T) {
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(followerRole(1, 3), nil)
	if ff := r.FollowerFetched(2, 1, 3, 0, -1, 0); ff.Code != errcode.NotLeaderOrFollower {
		t.Fatalf("%+v, want NOT_LEADER_OR_FOLLOWER", ff)
	}
}

// TestReplFollowerFetchedRecordsPosition: a consistent fetch records the follower's position
// and moves the high watermark.
func TestReplFollowerFetchedRecordsPosition(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 2), nil)
	produceAcks1(t, r, 6)
	clk.advance(time.Second)
	fetchAt(t, r, 1, 6, 4)
	f := r.Followers()
	at := clk.now()
	if len(f) != 1 || f[0] != (FollowerLag{Node: 1, FetchOffset: 6, DurableEnd: 4, LastFetch: at, CaughtUp: at}) {
		t.Fatalf("followers %+v", f)
	}
	if hw := r.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d, want 4 (the follower's durable end)", hw)
	}
}

// TestReplISRShrink: a member that has not caught up with the leader's log end for longer than
// the lag bound leaves the ISR; only one change is proposed at a time; a refused one may be
// proposed again.
func TestReplISRShrink(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	const lagMax = 10 * time.Second
	fetchAtInc(t, r, 1, 11, 0, 0)
	fetchAtInc(t, r, 2, 12, 0, 0)
	start := clk.now()
	for clk.now().Sub(start) < lagMax {
		produceAcks1(t, r, 1)
		clk.advance(500 * time.Millisecond)
		fetchAtInc(t, r, 1, 11, r.LogEndOffset(), r.LogEndOffset())
		fetchAtInc(t, r, 2, 12, 0, 0) // stuck at 0
		if _, ok := r.WantISRChange(lagMax); ok && clk.now().Sub(start) <= lagMax {
			t.Fatalf("ISR change proposed %v into the lag bound", clk.now().Sub(start))
		}
	}
	clk.advance(time.Millisecond)
	ch, ok := r.WantISRChange(lagMax)
	if !ok {
		t.Fatal("no ISR change for follower 2, behind for longer than the lag bound")
	}
	if len(ch.ISR) != 2 || ch.ISR[0] != 0 || ch.ISR[1] != 1 || ch.LeaderEpoch != 1 || ch.PartitionEpoch != 1 ||
		ch.Incarnations[1] != 11 || ch.Incarnations[2] != 12 {
		t.Fatalf("change %+v, want ISR [0 1] at epochs 1/1 with incarnations 11 and 12", ch)
	}
	if _, ok := r.WantISRChange(lagMax); ok {
		t.Fatal("a second change proposed while the first is on its way")
	}
	r.ISRChangeDone(ISRRefused, 0)
	if ch2, ok := r.WantISRChange(lagMax); !ok || len(ch2.ISR) != 2 {
		t.Fatalf("after a refused change: %+v %v, want the same change again", ch2, ok)
	}
}

// TestReplISRNoShrinkWhileCaughtUp: followers that keep fetching the log end, or keep up with a
// busy leader (each fetch reaching the log end the previous one saw), stay in the ISR.
func TestReplISRNoShrinkWhileCaughtUp(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	const lagMax = 10 * time.Second
	prevEnd := int64(0)
	for i := 0; i < 120; i++ { // a minute
		produceAcks1(t, r, 1)
		fetchAt(t, r, 1, r.LogEndOffset(), r.LogEndOffset()) // at the log end
		fetchAt(t, r, 2, prevEnd, prevEnd)                   // one batch behind, never further
		prevEnd = r.LogEndOffset()
		clk.advance(500 * time.Millisecond)
		if ch, ok := r.WantISRChange(lagMax); ok {
			t.Fatalf("after %d s: change %+v proposed for caught-up followers", i/2, ch)
		}
	}
}

// TestReplISRShrinkNeverFetched: a member that never fetched since this node became leader
// leaves the ISR once the lag bound has passed since then.
func TestReplISRShrinkNeverFetched(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	const lagMax = 10 * time.Second
	clk.advance(lagMax)
	fetchAt(t, r, 1, 0, 0)
	if _, ok := r.WantISRChange(lagMax); ok {
		t.Fatal("change proposed at the lag bound, not past it")
	}
	clk.advance(time.Millisecond)
	ch, ok := r.WantISRChange(lagMax)
	if !ok || len(ch.ISR) != 2 || ch.ISR[1] != 1 {
		t.Fatalf("%+v %v, want ISR [0 1]", ch, ok)
	}
}

// TestReplISRExpand: a follower outside the ISR joins it once it has reached the high
// watermark; from the proposal on it counts for the high watermark; a refused proposal drops it.
func TestReplISRExpand(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, []int32{0, 1}, 2), nil)
	const lagMax = 10 * time.Second
	produceAcks1(t, r, 5)
	fetchAt(t, r, 1, 5, 5)
	if hw := r.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d, want 5", hw)
	}
	fetchAtInc(t, r, 2, 7, 3, 3)
	if ch, ok := r.WantISRChange(lagMax); ok {
		t.Fatalf("follower 2 at 3, below the high watermark 5: change %+v", ch)
	}
	fetchAtInc(t, r, 2, 7, 5, 5)
	ch, ok := r.WantISRChange(lagMax)
	if !ok || len(ch.ISR) != 3 || ch.ISR[2] != 2 || ch.Incarnations[2] != 7 {
		t.Fatalf("%+v %v, want ISR [0 1 2] with follower 2 at incarnation 7", ch, ok)
	}
	// Proposed: follower 2 counts for the high watermark.
	produceAcks1(t, r, 5)
	fetchAt(t, r, 1, 10, 10)
	if hw := r.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d past what the proposed member 2 has (5)", hw)
	}
	r.ISRChangeDone(ISRRefused, 0)
	fetchAt(t, r, 1, 10, 10)
	if hw := r.HighWatermark(); hw != 10 {
		t.Fatalf("high watermark %d after the proposal was refused, want 10", hw)
	}
	// The committed change arrives as a role: follower 2 is a member.
	if _, ok := r.WantISRChange(lagMax); ok {
		t.Fatal("follower 2 at 5, below the high watermark 10, proposed")
	}
	fetchAtInc(t, r, 2, 7, 10, 10)
	if _, ok := r.WantISRChange(lagMax); !ok {
		t.Fatal("follower 2 caught up again, not proposed")
	}
	r.ISRChangeDone(ISRCommitted, r.Role().PartitionEpoch+1)
	role := r.Role()
	role.ISR, role.PartitionEpoch = rf3, role.PartitionEpoch+1
	r.SetRole(role, nil)
	produceAcks1(t, r, 1)
	fetchAt(t, r, 1, 11, 11)
	if hw := r.HighWatermark(); hw != 10 {
		t.Fatalf("high watermark %d past member 2's 10", hw)
	}
	fetchAtInc(t, r, 2, 7, 11, 11)
	if hw := r.HighWatermark(); hw != 11 {
		t.Fatalf("high watermark %d, want 11", hw)
	}
}

// TestReplISRExpandNeedsEpochStart: a follower must also have reached the first offset of the
// leader's epoch to join (Kafka's rule), whatever the high watermark.
func TestReplISRExpandNeedsEpochStart(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	appendStamped(t, r, stamped(0, 1, 4), stamped(4, 1, 4)) // log end 8, written in epoch 1
	r.ResetHighWatermark(4)                                 // what the old leader had committed
	r.SetRole(leaderRole(2, rf3, []int32{0, 1}, 2), nil)    // epoch 2 begins at 8
	fetchAt(t, r, 2, 6, 6)
	if ch, ok := r.WantISRChange(10 * time.Second); ok {
		t.Fatalf("follower 2 at 6, past the high watermark 4 but before epoch 2's start 8: change %+v", ch)
	}
	fetchAt(t, r, 2, 8, 8)
	if ch, ok := r.WantISRChange(10 * time.Second); !ok || len(ch.ISR) != 3 {
		t.Fatalf("%+v %v, want follower 2 proposed", ch, ok)
	}
}

// TestReplISRCommittedAddKeepsCounting: a follower whose addition to the ISR was committed keeps
// counting for the high watermark until the new ISR arrives in the metadata. The leader must
// not propose the same change again in between: the controller refuses that repeat (its
// partition epoch is stale), and ISRChangeDone(false) would drop the new member from the high
// watermark while the committed ISR holds it.
func TestReplISRCommittedAddKeepsCounting(t *testing.T) {
	clk := newClock()
	r := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, clk)
	r.SetRole(leaderRole(1, rf3, []int32{0, 1}, 2), nil)
	const lagMax = 10 * time.Second
	produceAcks1(t, r, 5)
	fetchAt(t, r, 1, 5, 5)
	fetchAt(t, r, 2, 5, 5)
	if _, ok := r.WantISRChange(lagMax); !ok {
		t.Fatal("follower 2 not proposed")
	}
	r.ISRChangeDone(ISRCommitted, r.Role().PartitionEpoch+1) // committed; the new role is on its way
	if ch, ok := r.WantISRChange(lagMax); ok {
		t.Errorf("the committed change %+v proposed again before its role arrived", ch)
		r.ISRChangeDone(ISRUncertain, 0) // what a repeat at the stale partition epoch is answered
	}
	produceAcks1(t, r, 5)
	fetchAt(t, r, 1, 10, 10)
	if hw := r.HighWatermark(); hw > 5 {
		t.Fatalf("high watermark %d past what member 2 of the committed ISR has (5)", hw)
	}
}

// TestReplConcurrentAcksAndFollowers: producers submitting acks=all from several goroutines
// while two followers fetch concurrently: every ack is answered exactly once, without error, the
// leader's high watermark never goes down, and the followers end byte-identical to the leader.
func TestReplConcurrentAcksAndFollowers(t *testing.T) {
	leader := newReplReplica(t, FsyncPolicy{Mode: FsyncNever}, nil)
	leader.SetRole(leaderRole(1, rf3, rf3, 2), nil)
	followers := []*Replica{newReplReplica(t, FsyncPolicy{Mode: FsyncNever}, nil), newReplReplica(t, FsyncPolicy{Mode: FsyncNever}, nil)}
	for i, f := range followers {
		f.SetRole(followerRole(int32(i+1), 1), nil)
	}
	const producers, perProducer = 4, 250
	total := producers * perProducer
	cc := &countingCompleter{answers: make([]int, total), results: make([]AppendResult, total), done: make(chan struct{})}
	cc.remaining.Store(int64(total))

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 1)
	fail := func(msg string) {
		select {
		case errs <- msg:
		default:
		}
	}
	var lastHW atomic.Int64
	checkHW := func() {
		hw := leader.HighWatermark()
		for {
			prev := lastHW.Load()
			if hw < prev {
				fail("high watermark went down")
				return
			}
			if hw == prev || lastHW.CompareAndSwap(prev, hw) {
				return
			}
		}
	}
	for i, f := range followers {
		wg.Add(1)
		go func(id int32, f *Replica) {
			defer wg.Done()
			w := NewWaiter()
			leader.AddWaiter(w)
			defer leader.RemoveWaiter(w)
			for !stop.Load() {
				offset := f.LogEndOffset()
				ff := leader.FollowerFetched(id, 1, 1, offset, f.log.LatestEpoch(), f.durableEnd())
				checkHW()
				if ff.Code != errcode.None || ff.DivergingEpoch != -1 || ff.DivergingEndOffset != -1 {
					fail("unexpected fetch answer")
					return
				}
				data, err := leader.ReadForFollower(nil, offset, 64<<10)
				if err != nil {
					fail("leader read: " + err.Error())
					return
				}
				if len(data) > 0 {
					if _, err := f.AppendReplicated(data, 1); err != nil {
						fail("follower append: " + err.Error())
						return
					}
				}
				f.SetFollowerHighWatermark(leader.HighWatermark())
				if len(data) == 0 {
					// The long poll: the leader signals appends and high watermark moves.
					select {
					case <-w.C:
					case <-time.After(2 * time.Millisecond):
					}
				}
			}
		}(int32(i+1), f)
	}
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				req := &AppendRequest{Records: makeBatch(1+i%3, testNow.UnixMilli(), 10), Owner: cc, Slot: p*perProducer + i, Acks: -1, TimeoutMs: 60000}
				for {
					err := leader.Submit(req)
					if err == nil {
						break
					}
					if err != ErrInboxFull {
						fail("submit: " + err.Error())
						return
					}
					time.Sleep(time.Millisecond) // backing off a full inbox, as a client would
				}
				checkHW()
			}
		}(p)
	}
	select {
	case <-cc.done:
	case msg := <-errs:
		stop.Store(true)
		wg.Wait()
		t.Fatal(msg)
	case <-time.After(2 * waitTimeout):
		stop.Store(true)
		wg.Wait()
		t.Fatalf("%d of %d acks unanswered", cc.remaining.Load(), total)
	}
	// Let the followers fetch the last high watermark, then stop them.
	for _, f := range followers {
		for deadline := time.Now().Add(waitTimeout); f.HighWatermark() != leader.LogEndOffset(); {
			if time.Now().After(deadline) {
				t.Fatalf("follower high watermark %d, leader log end %d", f.HighWatermark(), leader.LogEndOffset())
			}
			time.Sleep(time.Millisecond) // polling a condition, with a deadline
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case msg := <-errs:
		t.Fatal(msg)
	default:
	}
	for _, f := range followers {
		if f.LogEndOffset() != leader.LogEndOffset() {
			t.Fatalf("follower log end %d, leader %d", f.LogEndOffset(), leader.LogEndOffset())
		}
		if a, b := logBytes(t, leader), logBytes(t, f); string(a) != string(b) {
			t.Fatal("a follower's log differs from the leader's")
		}
	}
	if err := leader.Close(); err != nil { // would answer any ack still held
		t.Fatal(err)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	seen := map[int64]bool{}
	for slot, n := range cc.answers {
		res := cc.results[slot]
		if n != 1 || res.Err != nil {
			t.Fatalf("slot %d answered %d times, last %+v", slot, n, res)
		}
		if seen[res.BaseOffset] {
			t.Fatalf("offset %d given twice", res.BaseOffset)
		}
		seen[res.BaseOffset] = true
	}
}

// countingCompleter counts the answers of every slot, from any goroutine.
type countingCompleter struct {
	mu        sync.Mutex
	answers   []int
	results   []AppendResult
	remaining atomic.Int64
	done      chan struct{}
}

func (c *countingCompleter) AppendDone(slot int, res AppendResult) {
	c.mu.Lock()
	c.answers[slot]++
	c.results[slot] = res
	first := c.answers[slot] == 1
	c.mu.Unlock()
	if first && c.remaining.Add(-1) == 0 {
		close(c.done)
	}
}
