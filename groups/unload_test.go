package groups

import (
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

// TestShardUnloadAnswersNotCoordinator: a shard whose partition moves answers every request it
// holds NOT_COORDINATOR, once each, and appends nothing more: a JoinGroup parked in a rebalance,
// a follower's SyncGroup waiting for the leader, a leader's SyncGroup and a commit waiting for
// their appends.
func TestShardUnloadAnswersNotCoordinator(t *testing.T) {
	h := newShardHarness(t, testConfig())

	// Group "rebalancing": Stable with two members, a third joins; its JoinGroup is parked until
	// the others rejoin.
	h.stableGroup("rebalancing", 2)
	_, parkedJoin := h.newMember(consumerJoin("rebalancing", ""))
	parkedJoin.pending()

	// Group "syncing": both members joined; the follower's SyncGroup waits for the leader's, and
	// the leader's waits for the write of the assignment.
	members, gen := completing(h, "syncing")
	followerSync := h.sync(SyncRequest{Version: 5, Group: "syncing", Generation: gen, MemberID: members[1]})
	leaderSync := h.sync(SyncRequest{Version: 5, Group: "syncing", Generation: gen, MemberID: members[0],
		Assignments: []SyncAssignment{{MemberID: members[0], Assignment: []byte{0}}, {MemberID: members[1], Assignment: []byte{1}}}})

	// A commit waiting for its append.
	commit := h.commit(CommitRequest{Version: 8, Group: "simple", Generation: -1,
		Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{Partition: 0, Offset: 7, LeaderEpoch: -1}}}}})
	for _, r := range []interface{ pending() }{followerSync, leaderSync, commit} {
		r.pending()
	}
	appended := len(h.w.batches)
	if appended != 2 {
		t.Fatalf("%d appends in flight, want 2 (the assignment and the commit)", appended)
	}

	h.s.Unload(h.now)

	if r := parkedJoin.get(); r.ErrorCode != errcode.NotCoordinator || r.Generation != -1 || r.MemberID == "" {
		t.Fatalf("parked JoinGroup: %+v, want NOT_COORDINATOR with the member's id", r)
	}
	if r := followerSync.get(); r.ErrorCode != errcode.NotCoordinator {
		t.Fatalf("follower's SyncGroup: %+v", r)
	}
	if r := leaderSync.get(); r.ErrorCode != errcode.NotCoordinator {
		t.Fatalf("leader's SyncGroup: %+v", r)
	}
	if r := commit.get(); r.Topics[0].Partitions[0].ErrorCode != errcode.NotCoordinator {
		t.Fatalf("commit: %+v", r)
	}
	if len(h.w.batches) != appended {
		t.Fatalf("the unloaded shard appended %d more batches", len(h.w.batches)-appended)
	}
	if _, ok := h.s.NextTimer(); ok {
		t.Fatal("the unloaded shard still has timers armed")
	}
}
