package cluster

import (
	"bytes"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// Helpers of the replication tests: replicas with a settable clock, the leader's and the
// followers' roles, and a follower's fetch loop run by hand (what broker_replication.go's
// fetcher does over the peer connections).

// replDir is the partition directory of every replica these tests open.
const replDir = "/data/t-0"

// newClock is a clock at testNow.
func newClock() *clock {
	c := &clock{}
	c.ms.Store(testNow.UnixMilli())
	return c
}

// newReplReplicaFS opens an empty replica on its own in-memory directory with clk's time
// (fixedNow when nil) and returns it with its file system.
func newReplReplicaFS(t *testing.T, policy FsyncPolicy, clk *clock) (*Replica, vfs.FS) {
	t.Helper()
	fs := vfs.NewMem()
	now := fixedNow
	if clk != nil {
		now = clk.now
	}
	cfg, err := BuildTopicConfig(nil, DefaultDefaults)
	if err != nil {
		t.Fatal(err)
	}
	l, err := partition.Open(partition.Options{FS: fs, Dir: replDir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica(ReplicaOptions{Topic: "t", Log: l, Config: cfg, Fsync: policy, Now: now})
	t.Cleanup(func() { _ = r.Close() })
	return r, fs
}

func newReplReplica(t *testing.T, policy FsyncPolicy, clk *clock) *Replica {
	t.Helper()
	r, _ := newReplReplicaFS(t, policy, clk)
	return r
}

// leaderRole is node 0 leading at epoch (the partition epoch too) with replicas and isr.
func leaderRole(epoch int32, replicas, isr []int32, minISR int) Role {
	return Role{Self: 0, Leader: 0, LeaderEpoch: epoch, PartitionEpoch: epoch, Replicas: replicas, ISR: isr, MinISR: minISR}
}

// followerRole is node self following node 0 at epoch, replicas 0, 1 and 2 all in sync.
func followerRole(self, epoch int32) Role {
	all := []int32{0, 1, 2}
	return Role{Self: self, Leader: 0, LeaderEpoch: epoch, PartitionEpoch: epoch, Replicas: all, ISR: all, MinISR: 2}
}

// stamped is a batch of n records at offset base written in leader epoch epoch, as a leader
// stores it (neither field is covered by the CRC).
func stamped(base int64, epoch int32, n int) []byte {
	b := makeBatch(n, testNow.UnixMilli(), 10)
	batch.SetBaseOffset(b, base)
	batch.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// stampedIdempotent is stamped for a batch of producer pid from sequence seq.
func stampedIdempotent(base int64, epoch int32, pid int64, seq int32, n int) []byte {
	b := idempotentBatch(pid, seq, n)
	batch.SetBaseOffset(b, base)
	batch.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// appendStamped appends already stamped batches to r as replicated ones, fetched in the leader
// epoch r follows (0 for a replica without a role).
func appendStamped(t *testing.T, r *Replica, batches ...[]byte) {
	t.Helper()
	for _, b := range batches {
		if _, err := r.AppendReplicated(b, r.Role().LeaderEpoch); err != nil {
			t.Fatal(err)
		}
	}
}

// submitAcks hands one produce of records to r, answered on c at slot.
func submitAcks(t *testing.T, r *Replica, c *collector, slot int, records []byte, acks int16, timeoutMs int32) {
	t.Helper()
	if err := r.Submit(&AppendRequest{Records: records, Owner: c, Slot: slot, Acks: acks, TimeoutMs: timeoutMs}); err != nil {
		t.Fatal(err)
	}
}

// waitAppended waits until r's log reaches end and its writer has finished the group that took it
// there (held acks registered, immediate answers given).
func waitAppended(t *testing.T, r *Replica, end int64) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); r.LogEndOffset() < end; {
		if time.Now().After(deadline) {
			t.Fatalf("log end %d, want %d", r.LogEndOffset(), end)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	onReplica(t, r, func() {})
}

// produceAcks1 appends one batch of n records with acks=1 and returns its base offset.
func produceAcks1(t *testing.T, r *Replica, n int) int64 {
	t.Helper()
	c := newCollector()
	submitAcks(t, r, c, 0, makeBatch(n, testNow.UnixMilli(), 10), 1, 30000)
	d := c.next(t)
	if d.res.Err != nil {
		t.Fatalf("acks=1 produce: %v", d.res.Err)
	}
	return d.res.BaseOffset
}

// noAnswerYet fails when c has an answer waiting.
func noAnswerYet(t *testing.T, c *collector, what string) {
	t.Helper()
	select {
	case d := <-c.ch:
		t.Fatalf("%s: answered early: slot %d %+v (code %v)", what, d.slot, d.res, codeOf(d.res.Err))
	default:
	}
}

// epochBefore is the leader epoch of the batch that ends at or contains offset-1 in r's log: what
// a follower whose log end is offset sends as its last fetched epoch (-1: empty).
func epochBefore(r *Replica, offset int64) int32 {
	epoch := int32(-1)
	for _, e := range r.log.EpochEntries() {
		if e.StartOffset < offset {
			epoch = e.Epoch
		}
	}
	return epoch
}

// fetchAt is a consistent fetch by a simulated follower of incarnation 1 whose log end is
// offset, durable up to durable.
func fetchAt(t *testing.T, leader *Replica, from int32, offset, durable int64) FollowerFetch {
	t.Helper()
	return fetchAtInc(t, leader, from, 1, offset, durable)
}

func fetchAtInc(t *testing.T, leader *Replica, from int32, inc int64, offset, durable int64) FollowerFetch {
	t.Helper()
	ff := leader.FollowerFetched(from, inc, leader.Role().LeaderEpoch, offset, epochBefore(leader, offset), durable)
	if ff.Code != errcode.None || ff.DivergingEpoch != -1 || ff.DivergingEndOffset != -1 {
		t.Fatalf("fetch by %d at %d: %+v", from, offset, ff)
	}
	return ff
}

// replicateOnce is one fetch of follower (node id) from leader, in the leader epoch the follower
// follows, handled as the fetcher handles the answer: a log start past the follower's restarts
// its log, a divergence truncates it, records are appended and the leader's high watermark taken.
func replicateOnce(t *testing.T, leader, follower *Replica, id int32) FollowerFetch {
	t.Helper()
	offset := follower.LogEndOffset()
	epoch := follower.Role().LeaderEpoch
	ff := leader.FollowerFetched(id, 1, epoch, offset, follower.log.LatestEpoch(), follower.durableEnd())
	switch {
	case ff.Code == errcode.OffsetOutOfRange:
		if err := follower.ResetLog(leader.LogStartOffset(), epoch); err != nil {
			t.Fatal(err)
		}
	case ff.Code != errcode.None:
	case ff.DivergingEpoch != -1 || ff.DivergingEndOffset != -1:
		rp := proto.ReplicaDataPartition{HighWatermark: leader.HighWatermark(), LogStartOffset: leader.LogStartOffset(),
			LogEndOffset: leader.LogEndOffset(), DivergingEpoch: ff.DivergingEpoch, DivergingEndOffset: ff.DivergingEndOffset}
		if err := follower.TruncateDiverged((*fetcher)(nil).truncationOffset(follower, &rp), epoch); err != nil {
			t.Fatal(err)
		}
	default:
		data, err := leader.ReadForFollower(nil, offset, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 {
			if _, err := follower.AppendReplicated(data, epoch); err != nil {
				t.Fatal(err)
			}
		}
		follower.SetFollowerHighWatermark(leader.HighWatermark())
	}
	return ff
}

// replicate fetches until follower has the leader's log and the leader has seen it there.
func replicate(t *testing.T, leader, follower *Replica, id int32) {
	t.Helper()
	for i := 0; i < 100; i++ {
		replicateOnce(t, leader, follower, id)
		if follower.LogEndOffset() == leader.LogEndOffset() && followerAt(leader, id) == leader.LogEndOffset() {
			return
		}
	}
	t.Fatalf("follower %d did not catch up: its log end %d, the leader's %d", id, follower.LogEndOffset(), leader.LogEndOffset())
}

// followerAt is the fetch offset the leader last saw from node id (-1: none).
func followerAt(leader *Replica, id int32) int64 {
	for _, f := range leader.Followers() {
		if f.Node == id {
			return f.FetchOffset
		}
	}
	return -1
}

// logBytes is every batch of r's log, from its start to its log end, back to back.
func logBytes(t *testing.T, r *Replica) []byte {
	t.Helper()
	var out []byte
	for next := r.LogStartOffset(); next < r.LogEndOffset(); {
		before := len(out)
		var err error
		out, err = r.ReadForFollower(out, next, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == before {
			t.Fatalf("no batch at %d below the log end %d", next, r.LogEndOffset())
		}
		for rest := out[before:]; len(rest) > 0; {
			h, err := batch.ParseHeader(rest)
			if err != nil {
				t.Fatal(err)
			}
			next = h.NextOffset()
			rest = rest[h.Size():]
		}
	}
	return out
}

// sameLog fails unless the two replicas hold byte-identical logs with the same epochs.
func sameLog(t *testing.T, leader, follower *Replica) {
	t.Helper()
	if l, f := leader.LogEndOffset(), follower.LogEndOffset(); l != f {
		t.Fatalf("log ends differ: leader %d, follower %d", l, f)
	}
	if l, f := logBytes(t, leader), logBytes(t, follower); !bytes.Equal(l, f) {
		t.Fatalf("logs differ: leader %d bytes, follower %d bytes", len(l), len(f))
	}
	le, fe := leader.log.EpochEntries(), follower.log.EpochEntries()
	if len(le) != len(fe) {
		t.Fatalf("epochs differ: leader %v, follower %v", le, fe)
	}
	for i := range le {
		if le[i] != fe[i] {
			t.Fatalf("epochs differ: leader %v, follower %v", le, fe)
		}
	}
}

// waitHeld waits until r holds n acks=all appends for the high watermark.
func waitHeld(t *testing.T, r *Replica, n int) {
	t.Helper()
	held := func() int {
		r.repl.mu.Lock()
		defer r.repl.mu.Unlock()
		return len(r.repl.acks)
	}
	for deadline := time.Now().Add(waitTimeout); held() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d acks held, want %d", held(), n)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}
