package groups

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

func staticJoin(group, memberID, instance string, assignors ...string) JoinRequest {
	r := consumerJoin(group, memberID, assignors...)
	r.InstanceID = strp(instance)
	return r
}

// staticGroup makes a Stable group of static members "i0", "i1", ... ("i0" leads).
func staticGroup(h *shardHarness, group string, n int, assignors ...string) ([]string, int32) {
	h.t.Helper()
	var joins []*reply[JoinResponse]
	for i := range n {
		joins = append(joins, h.join(staticJoin(group, "", "i"+string(rune('0'+i)), assignors...)))
	}
	h.tick()
	ids := make([]string, n)
	for i, j := range joins {
		ids[i] = j.get().MemberID
	}
	gen := joins[0].get().Generation
	var assign []SyncAssignment
	for i, id := range ids {
		assign = append(assign, SyncAssignment{MemberID: id, Assignment: []byte{byte('A' + i)}})
	}
	h.sync(SyncRequest{Group: group, Generation: gen, MemberID: ids[0], Assignments: assign})
	h.persistAll()
	if h.state(group) != "Stable" {
		h.t.Fatalf("state %s", h.state(group))
	}
	return ids, gen
}

func TestStaticReplacementStable(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := staticGroup(h, "g", 2)
	logged := len(h.log)

	// i1 restarts (a new process, no member id): it takes over without a rebalance once the
	// group's record names its new id.
	j := h.join(staticJoin("g", "", "i1"))
	j.pending()
	if h.state("g") != "Stable" {
		t.Fatalf("state %s", h.state("g"))
	}
	h.persistAll()
	r := j.get()
	if r.ErrorCode != errcode.None || r.Generation != gen || r.MemberID == ids[1] || r.Leader != ids[0] || len(r.Members) != 0 {
		t.Fatalf("replacement: %+v", r)
	}
	_, _, _, gv, _ := DecodeRecord(h.log[logged].Key, h.log[logged].Value)
	if gv == nil || gv.Generation != gen || gv.Members[1].MemberID != r.MemberID || string(gv.Members[1].Assignment) != "B" {
		t.Fatalf("record: %+v", gv)
	}
	// The new id syncs for its old assignment; the old process is fenced.
	if s := h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: r.MemberID, InstanceID: strp("i1")}).get(); s.ErrorCode != errcode.None || string(s.Assignment) != "B" {
		t.Fatalf("sync of the new id: %+v", s)
	}
	c := newReply[errcode.Code](t)
	h.s.Heartbeat(h.now, HeartbeatRequest{Version: 3, Group: "g", MemberID: ids[1], InstanceID: strp("i1"), Generation: gen}, c.fn)
	if c.get() != errcode.FencedInstanceID {
		t.Fatalf("old id's heartbeat: %v", c.get())
	}
	cr := h.commit(CommitRequest{Version: 7, Group: "g", Generation: gen, MemberID: ids[1], InstanceID: strp("i1"), Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{}}}}})
	if cr.get().Topics[0].Partitions[0].ErrorCode != errcode.FencedInstanceID {
		t.Fatalf("old id's commit: %+v", cr.get())
	}

	// The leader restarts: KIP-814 (v9) tells it the members and to skip the assignment; older
	// versions name the old leader, so the new process does not reassign.
	v9 := staticJoin("g", "", "i0")
	v9.Version = 9
	j = h.join(v9)
	h.persistAll()
	r = j.get()
	if r.ErrorCode != errcode.None || !r.SkipAssignment || r.Leader != r.MemberID || len(r.Members) != 2 || h.state("g") != "Stable" {
		t.Fatalf("v9 leader replacement: %+v", r)
	}
	newLeader := r.MemberID
	j = h.join(staticJoin("g", "", "i0"))
	h.persistAll()
	if r = j.get(); r.ErrorCode != errcode.None || r.SkipAssignment || r.Leader != newLeader || len(r.Members) != 0 {
		t.Fatalf("v5 leader replacement: %+v", r)
	}
	// New subscription metadata that keeps the selected protocol: still no rebalance.
	changed := staticJoin("g", "", "i1")
	changed.Protocols[0].Metadata = subscription(1, "t", "u")
	h.join(changed)
	h.persistAll()
	if h.state("g") != "Stable" {
		t.Fatalf("state %s", h.state("g"))
	}
}

func TestStaticReplacementChangesProtocol(t *testing.T) {
	h := newShardHarness(t, testConfig())
	staticGroup(h, "g", 2, "range", "roundrobin")
	// i1 comes back supporting only roundrobin: the selected protocol changes, so rebalance.
	j := h.join(staticJoin("g", "", "i1", "roundrobin"))
	if h.state("g") != "PreparingRebalance" || len(h.w.batches) != 0 {
		t.Fatalf("state %s, %d appends", h.state("g"), len(h.w.batches))
	}
	h.join(staticJoin("g", h.s.groups["g"].static["i0"], "i0", "range", "roundrobin"))
	if r := j.get(); r.ErrorCode != errcode.None || *r.ProtocolName != "roundrobin" {
		t.Fatalf("join: %+v", r)
	}
}

func TestStaticReplacementWhileRebalancing(t *testing.T) {
	t.Run("PreparingRebalance", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := staticGroup(h, "g", 3)
		lead := h.join(staticJoin("g", ids[0], "i0"))    // PreparingRebalance
		oldJoin := h.join(staticJoin("g", ids[1], "i1")) // i2 not yet rejoined: both parked
		oldJoin.pending()
		newJoin := h.join(staticJoin("g", "", "i1"))
		if r := oldJoin.get(); r.ErrorCode != errcode.FencedInstanceID || r.MemberID != ids[1] {
			t.Fatalf("old join: %+v", r)
		}
		newJoin.pending()
		h.join(staticJoin("g", ids[2], "i2"))
		r := newJoin.get()
		if r.ErrorCode != errcode.None || r.Generation != gen+1 || r.MemberID == ids[1] {
			t.Fatalf("new join: %+v", r)
		}
		if members := lead.get().Members; len(members) != 3 || members[1].MemberID != r.MemberID || *members[1].InstanceID != "i1" {
			t.Fatalf("leader's members: %+v", members)
		}
	})
	t.Run("CompletingRebalance", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := staticGroup(h, "g", 2)
		h.join(staticJoin("g", ids[0], "i0"))
		h.join(staticJoin("g", ids[1], "i1"))
		oldSync := h.sync(SyncRequest{Version: 3, Group: "g", Generation: gen + 1, MemberID: ids[1], InstanceID: strp("i1")})
		oldSync.pending()
		// The restart fences the old id's sync, and the group rebalances: the leader may be
		// assigning for the old id.
		newJoin := h.join(staticJoin("g", "", "i1"))
		if r := oldSync.get(); r.ErrorCode != errcode.FencedInstanceID {
			t.Fatalf("old sync: %+v", r)
		}
		if h.state("g") != "PreparingRebalance" {
			t.Fatal(h.state("g"))
		}
		h.join(staticJoin("g", ids[0], "i0"))
		if r := newJoin.get(); r.ErrorCode != errcode.None || r.Generation != gen+2 {
			t.Fatalf("new join: %+v", r)
		}
	})
}

func TestStaticReplacementWriteFails(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := staticGroup(h, "g", 2)
	j := h.join(staticJoin("g", "", "i1"))
	h.complete(errcode.New(errcode.KafkaStorageError, "disk"))
	r := j.get()
	if r.ErrorCode != errcode.NotCoordinator || r.MemberID != "" || r.Leader != ids[0] {
		t.Fatalf("replacement with a failed write: %+v", r)
	}
	// The old id is back.
	if c := h.heartbeat("g", ids[1], gen); c != errcode.None {
		t.Fatalf("old id after the revert: %v", c)
	}
	if g := h.s.groups["g"]; g.static["i1"] != ids[1] || len(g.members) != 2 {
		t.Fatalf("static map %v", g.static)
	}
	if s := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]}).get(); string(s.Assignment) != "B" {
		t.Fatalf("old id's assignment: %+v", s)
	}
}

func TestStaticMembersOutlastTheRebalanceTimeout(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := staticGroup(h, "g", 2)
	changed := staticJoin("g", ids[1], "i1")
	changed.Protocols[0].Metadata = subscription(0, "x")
	j1 := h.join(changed)
	// i0 keeps heartbeating but does not rejoin: at the rebalance timeout a dynamic member would
	// be removed; a static one stays, and i1 (the one that rejoined) leads.
	for range 6 {
		h.advance(5 * time.Second)
		h.heartbeat("g", ids[0], gen)
	}
	r := j1.get()
	if r.ErrorCode != errcode.None || r.Leader != ids[1] || len(r.Members) != 2 {
		t.Fatalf("join: %+v", r)
	}
	// Without a SyncGroup or heartbeats from i0 its session ends it.
	h.sync(SyncRequest{Group: "g", Generation: r.Generation, MemberID: ids[1]})
	h.persistAll()
	h.advance(5 * time.Second)
	h.heartbeat("g", ids[1], r.Generation)
	h.advance(5 * time.Second)
	if d := h.s.Describe(h.now, "g"); len(d.Members) != 1 || d.Members[0].MemberID != ids[1] {
		t.Fatalf("group: %+v", d)
	}
}
