package groups

import (
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

func (h *shardHarness) deleteGroup(group string) *reply[errcode.Code] {
	c := newReply[errcode.Code](h.t)
	h.s.DeleteGroup(h.now, group, c.fn)
	return c
}

func (h *shardHarness) deleteOffsets(group string, parts ...TopicPartition) *reply[OffsetDeleteResponse] {
	c := newReply[OffsetDeleteResponse](h.t)
	h.s.DeleteOffsets(h.now, group, parts, c.fn)
	return c
}

func TestDeleteGroup(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("active", 1)
	commitCode(h, CommitRequest{Group: "active", Generation: gen, MemberID: ids[0], Topics: oneOffset("t", 0, 1)})
	commitCode(h, CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("t", 0, 1)})
	commitCode(h, CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("u", 3, 1)})

	for group, want := range map[string]errcode.Code{"": errcode.InvalidGroupID, "nope": errcode.GroupIDNotFound, "active": errcode.NonEmptyGroup} {
		if got := h.deleteGroup(group).get(); got != want {
			t.Errorf("delete %q: %v, want %v", group, got, want)
		}
	}
	d := h.deleteGroup("g")
	d.pending()
	if h.state("g") != "Dead" {
		t.Fatalf("while the deletion is written: %s", h.state("g"))
	}
	if got := h.deleteGroup("g").get(); got != errcode.GroupIDNotFound {
		t.Fatalf("second delete: %v", got)
	}
	records := h.complete(nil)
	if d.get() != errcode.None || len(records) != 3 {
		t.Fatalf("delete: %v, %d records", d.get(), len(records))
	}
	for _, r := range records {
		if r.Value != nil {
			t.Fatalf("not a tombstone: %+v", r)
		}
	}
	if f := h.fetch(FetchRequest{Group: "g"}); len(f.Topics) != 0 || h.state("g") != "Dead" {
		t.Fatalf("after the delete: %+v %s", f, h.state("g"))
	}
	if f := h.fetch(FetchRequest{Group: "active"}); len(f.Topics) != 1 {
		t.Fatalf("another group's offsets: %+v", f)
	}

	// A failed deletion leaves the group as it was.
	commitCode(h, CommitRequest{Group: "k", Generation: -1, Topics: oneOffset("t", 0, 9)})
	d = h.deleteGroup("k")
	h.complete(errcode.New(errcode.RequestTimedOut, ""))
	if d.get() != errcode.CoordinatorNotAvailable || h.state("k") != "Empty" {
		t.Fatalf("failed delete: %v %s", d.get(), h.state("k"))
	}
	if f := h.fetch(FetchRequest{Group: "k"}); f.Topics[0].Partitions[0].Offset != 9 {
		t.Fatalf("offsets after a failed delete: %+v", f)
	}
	// A group emptied by its members can be deleted; a commit in flight is deleted with it.
	h.leave(LeaveRequest{Version: 3, Group: "active", Members: []LeaveMember{{MemberID: ids[0]}}})
	h.persistAll()
	h.commit(CommitRequest{Group: "active", Generation: -1, Topics: oneOffset("late", 0, 1)})
	d = h.deleteGroup("active")
	h.persistAll()
	if d.get() != errcode.None || len(h.s.offsets["active"]) != 0 {
		t.Fatalf("delete after leave: %v %+v", d.get(), h.s.offsets["active"])
	}
}

func TestDeleteOffsets(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("consumers", 1) // subscribed to "t"
	commitCode(h, CommitRequest{Group: "consumers", Generation: gen, MemberID: ids[0], Topics: oneOffset("t", 0, 1)})
	commitCode(h, CommitRequest{Group: "consumers", Generation: gen, MemberID: ids[0], Topics: oneOffset("old", 0, 1)})
	r := consumerJoin("connectors", "")
	r.ProtocolType = "connect"
	_, j := h.newMember(r)
	h.tick()
	_ = j.get()
	commitCode(h, CommitRequest{Group: "simple", Generation: -1, Topics: oneOffset("t", 0, 1)})

	for group, want := range map[string]errcode.Code{"": errcode.InvalidGroupID, "nope": errcode.GroupIDNotFound, "connectors": errcode.NonEmptyGroup} {
		if got := h.deleteOffsets(group, TopicPartition{"t", 0}).get(); got.ErrorCode != want {
			t.Errorf("delete offsets of %q: %+v, want %v", group, got, want)
		}
	}
	// An active consumer group: its subscribed topic is refused, another deleted, an unknown
	// partition is fine.
	c := h.deleteOffsets("consumers", TopicPartition{"t", 0}, TopicPartition{"old", 0}, TopicPartition{"old", 5})
	c.pending()
	h.persistAll()
	got := c.get()
	if got.ErrorCode != errcode.None || got.Partitions[0].ErrorCode != errcode.GroupSubscribedToTopic || got.Partitions[1].ErrorCode != errcode.None || got.Partitions[2].ErrorCode != errcode.None {
		t.Fatalf("consumer group: %+v", got)
	}
	if f := h.fetch(FetchRequest{Group: "consumers"}); len(f.Topics) != 1 || f.Topics[0].Topic != "t" {
		t.Fatalf("after: %+v", f)
	}
	// A simple group loses everything asked for; the group goes with its last offset.
	if got := h.deleteOffsets("simple", TopicPartition{"t", 0}, TopicPartition{"t", 0}); got.done() {
		t.Fatalf("answered before durable: %+v", got.get())
	}
	if rs := h.complete(nil); len(rs) != 1 {
		t.Fatalf("%d tombstones for one offset named twice", len(rs))
	}
	if _, ok := h.s.groups["simple"]; ok {
		t.Fatal("the simple group outlived its offsets")
	}
	// A failed write is the group's error.
	commitCode(h, CommitRequest{Group: "simple", Generation: -1, Topics: oneOffset("t", 0, 1)})
	c = h.deleteOffsets("simple", TopicPartition{"t", 0})
	h.complete(errcode.New(errcode.KafkaStorageError, ""))
	if got := c.get(); got.ErrorCode != errcode.NotCoordinator {
		t.Fatalf("failed: %+v", got)
	}
	if f := h.fetch(FetchRequest{Group: "simple"}); len(f.Topics) != 1 {
		t.Fatalf("after a failed delete: %+v", f)
	}
}

func TestSubscribedWithUnreadableMetadata(t *testing.T) {
	h := newShardHarness(t, testConfig())
	r := consumerJoin("g", "")
	r.Protocols[0].Metadata = []byte{0xff, 0xff} // not a subscription
	id, j := h.newMember(r)
	h.tick()
	h.sync(SyncRequest{Group: "g", Generation: j.get().Generation, MemberID: id})
	h.persistAll()
	// The coordinator cannot tell what the group consumes: it protects every topic.
	if got := h.deleteOffsets("g", TopicPartition{"anything", 0}).get(); got.Partitions[0].ErrorCode != errcode.GroupSubscribedToTopic {
		t.Fatalf("%+v", got)
	}
}

func TestDeleteTopic(t *testing.T) {
	h := newShardHarness(t, testConfig())
	for _, g := range []string{"a", "b"} {
		commitCode(h, CommitRequest{Group: g, Generation: -1, Topics: []CommitTopic{
			{Topic: "gone", Partitions: []CommitPartition{{Partition: 0}, {Partition: 1}}},
			{Topic: "kept", Partitions: []CommitPartition{{Partition: 0}}},
		}})
	}
	h.commit(CommitRequest{Group: "c", Generation: -1, Topics: oneOffset("gone", 0, 1)}) // in flight
	h.s.DeleteTopic(h.now, "gone")
	if len(h.w.batches) != 2 || len(h.w.batches[1].records) != 5 {
		t.Fatalf("appends: %+v", h.w.batches)
	}
	h.persistAll()
	for _, g := range []string{"a", "b"} {
		f := h.fetch(FetchRequest{Group: g})
		if len(f.Topics) != 1 || f.Topics[0].Topic != "kept" {
			t.Fatalf("group %s: %+v", g, f)
		}
	}
	if _, ok := h.s.groups["c"]; ok {
		t.Fatal("group c kept")
	}
	h.s.DeleteTopic(h.now, "nothing")
	if len(h.w.batches) != 0 {
		t.Fatal("tombstones for a topic without offsets")
	}

	// While loading, the deletion waits for the load to end.
	log := h.log
	w := &shardWriter{}
	s := NewShard(3, testConfig(), w)
	for _, r := range log {
		if err := s.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	s.DeleteTopic(h.now, "kept")
	s.Loaded(h.now)
	if len(w.batches) != 1 || len(w.batches[0].records) != 2 {
		t.Fatalf("deletion after load: %+v", w.batches)
	}
}
