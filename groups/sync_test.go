package groups

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// completing brings two consumers to CompletingRebalance: both joined, no SyncGroup yet.
func completing(h *shardHarness, group string) ([]string, int32) {
	h.t.Helper()
	a, ja := h.newMember(consumerJoin(group, ""))
	b, jb := h.newMember(consumerJoin(group, ""))
	h.tick()
	if ja.get().ErrorCode != errcode.None || jb.get().ErrorCode != errcode.None {
		h.t.Fatalf("joins: %+v %+v", ja.get(), jb.get())
	}
	return []string{a, b}, ja.get().Generation
}

func TestSyncErrors(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := completing(h, "g")
	static := consumerJoin("s", "")
	static.InstanceID = strp("i")
	js := h.join(static)
	h.tick()
	sid := js.get().MemberID
	h.commit(CommitRequest{Group: "dead", Generation: -1, Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{}}}}})
	h.persistAll()
	h.s.DeleteGroup(h.now, "dead", func(errcode.Code) {})
	h.commit(CommitRequest{Group: "empty", Generation: -1, Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{}}}}})

	cases := []struct {
		name string
		req  SyncRequest
		want errcode.Code
	}{
		{"empty group id", SyncRequest{Generation: gen, MemberID: ids[0]}, errcode.InvalidGroupID},
		{"unknown group", SyncRequest{Group: "nope", MemberID: "m"}, errcode.UnknownMemberID},
		{"empty group", SyncRequest{Group: "empty", MemberID: "m"}, errcode.UnknownMemberID},
		{"dead group", SyncRequest{Group: "dead", MemberID: "m"}, errcode.CoordinatorNotAvailable},
		{"unknown member", SyncRequest{Group: "g", Generation: gen, MemberID: "m"}, errcode.UnknownMemberID},
		{"fenced instance", SyncRequest{Version: 3, Group: "s", Generation: 1, MemberID: "old", InstanceID: strp("i")}, errcode.FencedInstanceID},
		{"unknown instance", SyncRequest{Version: 3, Group: "s", Generation: 1, MemberID: sid, InstanceID: strp("j")}, errcode.UnknownMemberID},
		{"illegal generation", SyncRequest{Group: "g", Generation: gen + 1, MemberID: ids[1]}, errcode.IllegalGeneration},
		{"protocol type (v5)", SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: ids[1], ProtocolType: strp("connect")}, errcode.InconsistentGroupProtocol},
		{"protocol name (v5)", SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: ids[1], ProtocolName: strp("roundrobin")}, errcode.InconsistentGroupProtocol},
	}
	for _, c := range cases {
		if r := h.sync(c.req).get(); r.ErrorCode != c.want || r.Assignment != nil {
			t.Errorf("%s: %+v, want %v", c.name, r, c.want)
		}
	}
	// Below v5 the protocol fields are not checked; matching ones pass at v5.
	ok4 := h.sync(SyncRequest{Version: 4, Group: "g", Generation: gen, MemberID: ids[1], ProtocolName: strp("roundrobin")})
	ok4.pending()
	ok5 := h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: ids[1], ProtocolType: strp("consumer"), ProtocolName: strp("range")})
	if ok4.get().ErrorCode != errcode.RebalanceInProgress { // superseded by the second
		t.Fatalf("v4 sync: %+v", ok4.get())
	}
	ok5.pending()
	// While PreparingRebalance: REBALANCE_IN_PROGRESS.
	changed := consumerJoin("g", ids[0])
	changed.Protocols[0].Metadata = subscription(0, "u")
	h.join(changed)
	if ok5.get().ErrorCode != errcode.RebalanceInProgress {
		t.Fatalf("parked sync at the rebalance: %+v", ok5.get())
	}
	if r := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]}).get(); r.ErrorCode != errcode.RebalanceInProgress {
		t.Fatalf("sync while preparing: %+v", r)
	}
}

func TestSyncAssignments(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := completing(h, "g")
	follower := h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: ids[1]})
	// The leader assigns only itself, and something to a member that does not exist.
	leader := h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: ids[0], Assignments: []SyncAssignment{
		{MemberID: ids[0], Assignment: []byte("mine")}, {MemberID: "ghost", Assignment: []byte("x")},
	}})
	follower.pending()
	leader.pending()
	if h.state("g") != "CompletingRebalance" {
		t.Fatal("Stable before the assignment is durable")
	}
	records := h.complete(nil)
	lr, fr := leader.get(), follower.get()
	if lr.ErrorCode != errcode.None || string(lr.Assignment) != "mine" || *lr.ProtocolName != "range" || *lr.ProtocolType != "consumer" {
		t.Fatalf("leader: %+v", lr)
	}
	// The follower gets a decodable empty consumer assignment.
	var a kmsg.ConsumerMemberAssignment
	if fr.ErrorCode != errcode.None || !bytes.Equal(fr.Assignment, emptyConsumerAssignment) || a.ReadFrom(fr.Assignment) != nil || len(a.Topics) != 0 {
		t.Fatalf("follower: %+v", fr)
	}
	if want := (&kmsg.ConsumerMemberAssignment{}).AppendTo(nil); !bytes.Equal(want, emptyConsumerAssignment) {
		t.Fatalf("empty assignment %x, kmsg writes %x", emptyConsumerAssignment, want)
	}
	_, _, _, gv, _ := DecodeRecord(records[0].Key, records[0].Value)
	if len(gv.Members) != 2 || string(gv.Members[0].Assignment) != "mine" || !bytes.Equal(gv.Members[1].Assignment, emptyConsumerAssignment) {
		t.Fatalf("record: %+v", gv)
	}
	// Stable: a SyncGroup returns the assignment at once.
	if r := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]}).get(); r.ErrorCode != errcode.None || !bytes.Equal(r.Assignment, emptyConsumerAssignment) {
		t.Fatalf("sync while stable: %+v", r)
	}
	d := h.s.Describe(h.now, "g")
	if d.State != "Stable" || d.Protocol != "range" || string(d.Members[0].Assignment) != "mine" || !bytes.Equal(d.Members[0].Metadata, subscription(0, "t")) {
		t.Fatalf("describe: %+v", d)
	}

	// Another protocol type gets the leader's bytes, even none.
	h2 := newShardHarness(t, testConfig())
	r := consumerJoin("c", "")
	r.ProtocolType = "connect"
	id, j := h2.newMember(r)
	h2.tick()
	s := h2.sync(SyncRequest{Group: "c", Generation: j.get().Generation, MemberID: id})
	h2.persistAll()
	if got := s.get(); got.ErrorCode != errcode.None || got.Assignment == nil || len(got.Assignment) != 0 {
		t.Fatalf("connect member: %+v", got)
	}
}

func TestSyncOversizedAssignment(t *testing.T) {
	cfg := testConfig()
	cfg.MaxProtocolMetadataBytes = 1000
	h := newShardHarness(t, cfg)
	ids, gen := completing(h, "g")
	r := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0], Assignments: []SyncAssignment{{MemberID: ids[1], Assignment: make([]byte, 1001)}}})
	if r.get().ErrorCode != errcode.InvalidRequest || len(h.w.batches) != 0 {
		t.Fatalf("oversized: %+v, %d appends", r.get(), len(h.w.batches))
	}
	// To a member outside the group it does not count.
	r = h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0], Assignments: []SyncAssignment{{MemberID: "ghost", Assignment: make([]byte, 5000)}}})
	r.pending()
}

func TestSyncWriteFails(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := completing(h, "g")
	follower := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]})
	leader := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0], Assignments: []SyncAssignment{{MemberID: ids[0], Assignment: []byte("a")}}})
	h.complete(errcode.New(errcode.NotLeaderOrFollower, "moved"))
	if leader.get().ErrorCode != errcode.NotCoordinator || follower.get().ErrorCode != errcode.NotCoordinator {
		t.Fatalf("after a failed write: %+v %+v", leader.get(), follower.get())
	}
	// The group rebalances; nothing was assigned.
	d := h.s.Describe(h.now, "g")
	if d.State != "PreparingRebalance" || d.Members[0].Assignment != nil {
		t.Fatalf("group: %+v", d)
	}
	j0, j1 := h.join(consumerJoin("g", ids[0])), h.join(consumerJoin("g", ids[1]))
	if j0.get().Generation != gen+1 || j1.get().Generation != gen+1 {
		t.Fatalf("rejoin: %+v %+v", j0.get(), j1.get())
	}
	// Errors without a code mean the coordinator is not available.
	h.sync(SyncRequest{Group: "g", Generation: gen + 1, MemberID: ids[0]})
	h.complete(errors.New("disk on fire"))
	if h.state("g") != "PreparingRebalance" {
		t.Fatal(h.state("g"))
	}
	for err, want := range map[error]errcode.Code{
		errcode.New(errcode.RequestTimedOut, ""):       errcode.CoordinatorNotAvailable,
		errcode.New(errcode.KafkaStorageError, ""):     errcode.NotCoordinator,
		errcode.New(errcode.MessageTooLarge, ""):       errcode.UnknownServerError,
		errcode.New(errcode.NotEnoughReplicas, ""):     errcode.CoordinatorNotAvailable,
		errcode.New(errcode.InvalidRequiredAcks, ""):   errcode.InvalidRequiredAcks,
		errors.New("unexpected EOF"):                   errcode.CoordinatorNotAvailable,
		errcode.New(errcode.RecordListTooLarge, "big"): errcode.UnknownServerError,
	} {
		if got := appendErrorCode(err); got != want {
			t.Errorf("appendErrorCode(%v) = %v, want %v", err, got, want)
		}
	}
	if commitErrorCode(errcode.New(errcode.MessageTooLarge, "")) != errcode.InvalidCommitOffsetSize {
		t.Error("a commit too large")
	}
}

func TestPendingSyncTimeout(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := completing(h, "g")
	leader := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0]})
	h.persistAll()
	if leader.get().ErrorCode != errcode.None || h.state("g") != "Stable" {
		t.Fatalf("leader: %+v", leader.get())
	}
	// The follower heartbeats but never syncs: at the rebalance timeout (30 s after the join
	// phase) it is removed and the group rebalances.
	for range 5 {
		h.advance(5 * time.Second)
		h.heartbeat("g", ids[0], gen)
		if c := h.heartbeat("g", ids[1], gen); c != errcode.None {
			t.Fatalf("heartbeat: %v", c)
		}
	}
	h.advance(5 * time.Second)
	if c := h.heartbeat("g", ids[1], gen); c != errcode.UnknownMemberID {
		t.Fatalf("after the pending-sync timeout: %v", c)
	}
	if c := h.heartbeat("g", ids[0], gen); c != errcode.RebalanceInProgress {
		t.Fatalf("leader after the pending-sync timeout: %v", c)
	}
	// When every member syncs, the timeout does nothing.
	h2 := newShardHarness(t, testConfig())
	ids, gen = completing(h2, "g")
	h2.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]})
	h2.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0]})
	h2.persistAll()
	for range 8 {
		h2.advance(5 * time.Second)
		h2.heartbeat("g", ids[0], gen)
		h2.heartbeat("g", ids[1], gen)
	}
	if h2.state("g") != "Stable" {
		t.Fatal(h2.state("g"))
	}
}
