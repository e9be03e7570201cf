package groups

import (
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

func oneOffset(topic string, partition int32, offset int64) []CommitTopic {
	return []CommitTopic{{Topic: topic, Partitions: []CommitPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1}}}}
}

func commitCode(h *shardHarness, r CommitRequest) errcode.Code {
	h.t.Helper()
	c := h.commit(r)
	h.persistAll()
	return c.get().Topics[0].Partitions[0].ErrorCode
}

// The commit validation, in Kafka's order, in every state (GROUPS.md).
func TestShardCommitValidation(t *testing.T) {
	h := newShardHarness(t, testConfig())
	stable, sgen := h.stableGroup("stable", 2)
	prep, pgen := h.stableGroup("prep", 2)
	h.join(consumerJoin("prep", prep[0])) // PreparingRebalance, generation pgen still current
	comp, cgen := completing(h, "comp")
	sIDs, stGen := staticGroup(h, "static", 1)
	h.commit(CommitRequest{Group: "empty", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.commit(CommitRequest{Group: "dead", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.persistAll()
	h.s.DeleteGroup(h.now, "dead", func(errcode.Code) {}) // Dead until written

	cases := []struct {
		name string
		req  CommitRequest
		want errcode.Code
	}{
		{"dead", CommitRequest{Group: "dead", Generation: -1}, errcode.CoordinatorNotAvailable}, // first: the deletion completes with it
		{"empty group id", CommitRequest{Generation: -1}, errcode.InvalidGroupID},
		{"generation -1, empty group", CommitRequest{Group: "empty", Generation: -1}, errcode.None},
		{"generation -1 with a member id, empty group", CommitRequest{Group: "empty", Generation: -1, MemberID: "m"}, errcode.None},
		{"generation -1, unknown group (simple group)", CommitRequest{Group: "simple", Generation: -1}, errcode.None},
		{"unknown group, v8", CommitRequest{Version: 8, Group: "nope", Generation: 3, MemberID: "m"}, errcode.IllegalGeneration},
		{"unknown group, v9", CommitRequest{Version: 9, Group: "nope", Generation: 3, MemberID: "m"}, errcode.GroupIDNotFound},
		{"generation -1 without member, active group", CommitRequest{Group: "stable", Generation: -1}, errcode.UnknownMemberID},
		{"unknown member", CommitRequest{Group: "stable", Generation: sgen, MemberID: "m"}, errcode.UnknownMemberID},
		{"unknown member of an empty group", CommitRequest{Group: "empty", Generation: 0, MemberID: "m"}, errcode.UnknownMemberID},
		{"wrong instance", CommitRequest{Version: 7, Group: "static", Generation: stGen, MemberID: "old", InstanceID: strp("i0")}, errcode.FencedInstanceID},
		{"unknown instance", CommitRequest{Version: 7, Group: "static", Generation: stGen, MemberID: sIDs[0], InstanceID: strp("x")}, errcode.UnknownMemberID},
		{"instance ignored below v7", CommitRequest{Version: 6, Group: "static", Generation: stGen, MemberID: sIDs[0], InstanceID: strp("x")}, errcode.None},
		{"wrong generation", CommitRequest{Group: "stable", Generation: sgen + 1, MemberID: stable[1]}, errcode.IllegalGeneration},
		{"generation -1 with a member, active group", CommitRequest{Group: "stable", Generation: -1, MemberID: stable[1]}, errcode.IllegalGeneration},
		{"completing rebalance", CommitRequest{Group: "comp", Generation: cgen, MemberID: comp[1]}, errcode.RebalanceInProgress},
		{"completing rebalance, wrong generation", CommitRequest{Group: "comp", Generation: cgen - 1, MemberID: comp[1]}, errcode.IllegalGeneration},
		{"preparing rebalance, current generation", CommitRequest{Group: "prep", Generation: pgen, MemberID: prep[1]}, errcode.None},
		{"stable", CommitRequest{Group: "stable", Generation: sgen, MemberID: stable[1]}, errcode.None},
		{"static member", CommitRequest{Version: 7, Group: "static", Generation: stGen, MemberID: sIDs[0], InstanceID: strp("i0")}, errcode.None},
	}
	for _, c := range cases {
		c.req.Topics = oneOffset("t", 0, 42)
		if got := commitCode(h, c.req); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestShardCommitPartitions(t *testing.T) {
	h := newShardHarness(t, testConfig())
	r := CommitRequest{Group: "g", Generation: -1, Topics: []CommitTopic{
		{Topic: "a", Partitions: []CommitPartition{{Partition: 0, Offset: 10, LeaderEpoch: 3, Metadata: "m"}, {Partition: 1, Offset: 11, Metadata: strings.Repeat("x", 4097)}}},
		{Topic: strings.Repeat("t", MaxRecordStringBytes+1), Partitions: []CommitPartition{{Partition: 0}}},
		{Topic: "b", Partitions: []CommitPartition{{Partition: 7, Offset: 70, LeaderEpoch: -1}}},
	}}
	c := h.commit(r)
	c.pending()
	// Not visible before it is durable.
	if f := h.fetch(FetchRequest{Group: "g"}); len(f.Topics) != 0 {
		t.Fatalf("visible before durable: %+v", f)
	}
	if len(h.w.batches) != 1 || len(h.w.batches[0].records) != 2 {
		t.Fatalf("appends: %+v", h.w.batches)
	}
	h.persistAll()
	got := c.get()
	codes := []errcode.Code{got.Topics[0].Partitions[0].ErrorCode, got.Topics[0].Partitions[1].ErrorCode, got.Topics[1].Partitions[0].ErrorCode, got.Topics[2].Partitions[0].ErrorCode}
	if codes[0] != errcode.None || codes[1] != errcode.OffsetMetadataTooLarge || codes[2] != errcode.InvalidTopic || codes[3] != errcode.None {
		t.Fatalf("codes %v", codes)
	}
	f := h.fetch(FetchRequest{Version: 7, Group: "g", RequireStable: true})
	if f.ErrorCode != errcode.None || len(f.Topics) != 2 || f.Topics[0].Topic != "a" || f.Topics[0].Partitions[0] != (FetchPartition{Partition: 0, Offset: 10, LeaderEpoch: 3, Metadata: "m"}) ||
		f.Topics[1].Partitions[0].Offset != 70 {
		t.Fatalf("fetch all: %+v", f)
	}
	f = h.fetch(FetchRequest{Group: "g", Topics: []FetchTopic{{Topic: "a", Partitions: []int32{1, 0}}, {Topic: "zz", Partitions: []int32{0}}}})
	want := []FetchPartition{{Partition: 1, Offset: -1, LeaderEpoch: -1}, {Partition: 0, Offset: 10, LeaderEpoch: 3, Metadata: "m"}}
	if f.Topics[0].Partitions[0] != want[0] || f.Topics[0].Partitions[1] != want[1] || f.Topics[1].Partitions[0].Offset != -1 {
		t.Fatalf("fetch some: %+v", f)
	}
	// An unknown group is no error: offsets -1, or none at all.
	f = h.fetch(FetchRequest{Group: "nope", Topics: []FetchTopic{{Topic: "a", Partitions: []int32{0}}}})
	if f.ErrorCode != errcode.None || f.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("unknown group: %+v", f)
	}
	if f = h.fetch(FetchRequest{Group: "nope"}); f.ErrorCode != errcode.None || len(f.Topics) != 0 {
		t.Fatalf("unknown group, all: %+v", f)
	}
	if f = h.fetch(FetchRequest{}); f.ErrorCode != errcode.InvalidGroupID {
		t.Fatalf("empty group id: %+v", f)
	}
	// A commit with nothing valid writes nothing.
	c = h.commit(CommitRequest{Group: "g", Generation: -1, Topics: []CommitTopic{{Topic: "a", Partitions: []CommitPartition{{Metadata: strings.Repeat("x", 5000)}}}}})
	if c.get().Topics[0].Partitions[0].ErrorCode != errcode.OffsetMetadataTooLarge || len(h.w.batches) != 0 {
		t.Fatalf("invalid commit: %+v", c.get())
	}
}

func TestShardCommitWriteFails(t *testing.T) {
	h := newShardHarness(t, testConfig())
	commitCode(h, CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 5)})
	c := h.commit(CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 6)})
	h.complete(errcode.New(errcode.NotEnoughReplicas, ""))
	if code := c.get().Topics[0].Partitions[0].ErrorCode; code != errcode.CoordinatorNotAvailable {
		t.Fatalf("failed commit: %v", code)
	}
	if f := h.fetch(FetchRequest{Group: "g"}); f.Topics[0].Partitions[0].Offset != 5 {
		t.Fatalf("after a failed commit: %+v", f)
	}
	c = h.commit(CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 7)})
	h.complete(errcode.New(errcode.RecordListTooLarge, ""))
	if code := c.get().Topics[0].Partitions[0].ErrorCode; code != errcode.InvalidCommitOffsetSize {
		t.Fatalf("commit too large: %v", code)
	}
	// A simple group created by a failed commit does not stay.
	c = h.commit(CommitRequest{Group: "fresh", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.complete(errcode.New(errcode.NotLeaderOrFollower, ""))
	if code := c.get().Topics[0].Partitions[0].ErrorCode; code != errcode.NotCoordinator {
		t.Fatalf("commit: %v", code)
	}
	if _, ok := h.s.groups["fresh"]; ok {
		t.Fatal("the failed commit left a group behind")
	}
	// Two commits in flight complete in order; the table ends as the log does.
	c1 := h.commit(CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 8)})
	c2 := h.commit(CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 9)})
	h.persistAll()
	if !c1.done() || !c2.done() {
		t.Fatal("commits unanswered")
	}
	if f := h.fetch(FetchRequest{Group: "g"}); f.Topics[0].Partitions[0].Offset != 9 {
		t.Fatalf("after two commits: %+v", f)
	}
}

func TestShardCommitKeepsSessionAlive(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	// Member 1 only commits, never heartbeats: commits keep its session.
	for range 6 {
		h.advance(5 * time.Second)
		h.heartbeat("g", ids[0], gen)
		if code := commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[1], Topics: oneOffset("t", 0, 1)}); code != errcode.None {
			t.Fatalf("commit: %v", code)
		}
	}
	if h.state("g") != "Stable" {
		t.Fatal(h.state("g"))
	}
}
