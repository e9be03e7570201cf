package groups

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

func expiryConfig() Config {
	cfg := testConfig()
	cfg.OffsetsRetention = time.Hour
	cfg.OffsetsRetentionCheckInterval = time.Minute
	return cfg
}

// advanceBy moves the clock in steps of at most a second less than the session timeout, keeping
// the given members alive.
func (h *shardHarness) advanceBy(d time.Duration, group string, gen int32, alive ...string) {
	for d > 0 {
		step := min(d, 5*time.Second)
		h.advance(step)
		for _, id := range alive {
			h.heartbeat(group, id, gen)
		}
		h.persistAll()
		d -= step
	}
}

func offsetsOf(h *shardHarness, group string) int {
	n := 0
	for _, t := range h.fetch(FetchRequest{Group: group}).Topics {
		n += len(t.Partitions)
	}
	return n
}

func TestExpiryEmptyGroup(t *testing.T) {
	h := newShardHarness(t, expiryConfig())
	ids, gen := h.stableGroup("g", 1)
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[0], Topics: oneOffset("t", 0, 1)})
	// Active for two hours: a consumer group's subscribed offsets do not expire.
	h.advanceBy(2*time.Hour, "g", gen, ids[0])
	if offsetsOf(h, "g") != 1 {
		t.Fatal("offsets of an active group expired")
	}
	h.leave(LeaveRequest{Version: 3, Group: "g", Members: []LeaveMember{{MemberID: ids[0]}}})
	h.persistAll()
	emptySince := h.now
	// An administrator's commit later does not restart the clock: it counts from Empty.
	h.advanceBy(30*time.Minute, "g", 0)
	commitCode(h, CommitRequest{Group: "g", Generation: -1, Topics: oneOffset("u", 0, 1)})
	h.advanceBy(29*time.Minute, "g", 0)
	if offsetsOf(h, "g") != 2 {
		t.Fatal("expired early")
	}
	h.advanceBy(2*time.Minute, "g", 0)
	if offsetsOf(h, "g") != 0 {
		t.Fatalf("not expired %v after the group became Empty", h.now.Sub(emptySince))
	}
	// With its offsets gone, the Empty group is deleted, with a tombstone for its record.
	if d := h.s.Describe(h.now, "g"); d.ErrorCode != errcode.GroupIDNotFound {
		t.Fatalf("group after expiry: %+v", d)
	}
	last := h.log[len(h.log)-1]
	if _, _, gk, gv, err := DecodeRecord(last.Key, last.Value); err != nil || gk == nil || gv != nil {
		t.Fatalf("last record: %+v %+v %v", gk, gv, err)
	}
}

func TestExpirySimpleGroup(t *testing.T) {
	h := newShardHarness(t, expiryConfig())
	commitCode(h, CommitRequest{Group: "s", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.advanceBy(30*time.Minute, "", 0)
	commitCode(h, CommitRequest{Group: "s", Generation: -1, Topics: oneOffset("t", 1, 1)})
	h.advanceBy(31*time.Minute, "", 0)
	if f := h.fetch(FetchRequest{Group: "s"}); len(f.Topics) != 1 || len(f.Topics[0].Partitions) != 1 || f.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("by commit time: %+v", f)
	}
	logged := len(h.log)
	h.advanceBy(30*time.Minute, "", 0)
	if offsetsOf(h, "s") != 0 {
		t.Fatal("second offset not expired")
	}
	if _, ok := h.s.groups["s"]; ok {
		t.Fatal("the simple group outlived its offsets")
	}
	// The simple group never had a record: only the offset's tombstone is written.
	if n := len(h.log) - logged; n != 1 {
		t.Fatalf("%d records for the last expiry", n)
	}
}

func TestExpiryStableConsumerGroup(t *testing.T) {
	h := newShardHarness(t, expiryConfig())
	ids, gen := h.stableGroup("g", 1) // subscribed to "t"
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[0], Topics: oneOffset("t", 0, 1)})
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[0], Topics: oneOffset("other", 0, 1)})
	h.advanceBy(61*time.Minute, "g", gen, ids[0])
	f := h.fetch(FetchRequest{Group: "g"})
	if len(f.Topics) != 1 || f.Topics[0].Topic != "t" {
		t.Fatalf("a Stable consumer group keeps its subscribed topics only: %+v", f)
	}
	if h.state("g") != "Stable" {
		t.Fatal(h.state("g"))
	}

	// Any other active group keeps everything.
	h2 := newShardHarness(t, expiryConfig())
	r := consumerJoin("c", "")
	r.ProtocolType = "connect"
	id, j := h2.newMember(r)
	h2.tick()
	gen = j.get().Generation
	h2.sync(SyncRequest{Group: "c", Generation: gen, MemberID: id})
	h2.persistAll()
	commitCode(h2, CommitRequest{Group: "c", Generation: gen, MemberID: id, Topics: oneOffset("x", 0, 1)})
	h2.advanceBy(2*time.Hour, "c", gen, id)
	if offsetsOf(h2, "c") != 1 {
		t.Fatal("an active connect group lost its offsets")
	}
}

func TestExpirySkipsCommitsInFlight(t *testing.T) {
	h := newShardHarness(t, expiryConfig())
	commitCode(h, CommitRequest{Group: "s", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.now = h.now.Add(time.Hour)
	c := h.commit(CommitRequest{Group: "s", Generation: -1, Topics: oneOffset("t", 0, 2)})
	h.tick() // the expiry pass finds an expired offset with a newer commit in flight
	h.persistAll()
	if c.get().Topics[0].Partitions[0].ErrorCode != errcode.None {
		t.Fatal(c.get())
	}
	if f := h.fetch(FetchRequest{Group: "s"}); len(f.Topics) != 1 || f.Topics[0].Partitions[0].Offset != 2 {
		t.Fatalf("the fresh commit was expired: %+v", f)
	}
}

func TestExpiryWriteFails(t *testing.T) {
	h := newShardHarness(t, expiryConfig())
	ids, gen := h.stableGroup("g", 1)
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[0], Topics: oneOffset("t", 0, 1)})
	h.leave(LeaveRequest{Version: 3, Group: "g", Members: []LeaveMember{{MemberID: ids[0]}}})
	h.persistAll()
	h.now = h.now.Add(time.Hour)
	h.tick()
	if h.state("g") != "Dead" {
		t.Fatalf("while the expiry is written: %s", h.state("g"))
	}
	h.complete(errcode.New(errcode.NotLeaderOrFollower, ""))
	if h.state("g") != "Empty" || offsetsOf(h, "g") != 1 {
		t.Fatalf("after a failed expiry: %s, %d offsets", h.state("g"), offsetsOf(h, "g"))
	}
	h.advance(time.Minute)
	h.persistAll()
	if d := h.s.Describe(h.now, "g"); d.ErrorCode != errcode.GroupIDNotFound {
		t.Fatalf("the next pass: %+v", d)
	}
}

func TestExpiryOfLoadedExpireTimestamp(t *testing.T) {
	// Offsets written by an old Kafka with an explicit expire timestamp (value v1) expire then.
	w := &shardWriter{}
	s := NewShard(0, expiryConfig(), w)
	key := AppendOffsetKey(nil, OffsetKey{Group: "old", Topic: "t", Partition: 0})
	v1 := []byte{0, 1}
	v1 = append(v1, make([]byte, 8)...) // offset 0
	v1 = append(v1, 0, 0)               // metadata ""
	v1 = append(v1, be64(shardEpoch.UnixMilli())...)
	v1 = append(v1, be64(shardEpoch.Add(10*time.Minute).UnixMilli())...)
	if err := s.Load(key, v1); err != nil {
		t.Fatal(err)
	}
	s.Loaded(shardEpoch)
	for i := 1; i <= 10; i++ {
		s.Tick(shardEpoch.Add(time.Duration(i) * time.Minute))
	}
	if len(w.batches) != 1 || len(w.batches[0].records) != 1 || w.batches[0].records[0].Value != nil {
		t.Fatalf("appends: %+v", w.batches)
	}
}
