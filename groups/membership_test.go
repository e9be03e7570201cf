package groups

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

func TestHeartbeatCodes(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := completing(h, "g")
	static := consumerJoin("s", "")
	static.InstanceID = strp("i")
	js := h.join(static)
	h.tick()
	sid := js.get().MemberID
	hb := func(r HeartbeatRequest) errcode.Code {
		c := newReply[errcode.Code](t)
		h.s.Heartbeat(h.now, r, c.fn)
		return c.get()
	}
	cases := []struct {
		name string
		req  HeartbeatRequest
		want errcode.Code
	}{
		{"empty group id", HeartbeatRequest{MemberID: ids[0]}, errcode.InvalidGroupID},
		{"unknown group", HeartbeatRequest{Group: "nope", MemberID: ids[0]}, errcode.UnknownMemberID},
		{"unknown member", HeartbeatRequest{Group: "g", MemberID: "m", Generation: gen}, errcode.UnknownMemberID},
		{"illegal generation", HeartbeatRequest{Group: "g", MemberID: ids[0], Generation: gen - 1}, errcode.IllegalGeneration},
		{"completing", HeartbeatRequest{Group: "g", MemberID: ids[1], Generation: gen}, errcode.None},
		{"fenced instance", HeartbeatRequest{Version: 3, Group: "s", MemberID: "old", InstanceID: strp("i"), Generation: 1}, errcode.FencedInstanceID},
		{"instance ignored below v3", HeartbeatRequest{Version: 2, Group: "s", MemberID: sid, InstanceID: strp("zzz"), Generation: 1}, errcode.None},
	}
	for _, c := range cases {
		if got := hb(c.req); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0]})
	h.persistAll()
	if got := h.heartbeat("g", ids[1], gen); got != errcode.None {
		t.Errorf("stable: %v", got)
	}
	changed := consumerJoin("g", ids[0])
	changed.Protocols[0].Metadata = subscription(0, "u")
	h.join(changed)
	if got := h.heartbeat("g", ids[1], gen); got != errcode.RebalanceInProgress {
		t.Errorf("preparing: %v", got)
	}
	// Dead while its deletion is written.
	h.commit(CommitRequest{Group: "d", Generation: -1, Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{}}}}})
	h.persistAll()
	h.s.DeleteGroup(h.now, "d", func(errcode.Code) {})
	if got := h.heartbeat("d", "m", 0); got != errcode.CoordinatorNotAvailable {
		t.Errorf("dead: %v", got)
	}
	h.persistAll()
	if got := h.heartbeat("d", "m", 0); got != errcode.UnknownMemberID {
		t.Errorf("deleted: %v", got)
	}
}

// The session timer runs in every state: a dead member never holds up the group.
func TestSessionExpiryInEachState(t *testing.T) {
	t.Run("Stable", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := h.stableGroup("g", 2)
		for range 3 {
			h.advance(4 * time.Second)
			h.heartbeat("g", ids[0], gen)
		}
		if d := h.s.Describe(h.now, "g"); d.State != "PreparingRebalance" || len(d.Members) != 1 || d.Members[0].MemberID != ids[0] {
			t.Fatalf("after member 1's session: %+v", d)
		}
	})
	t.Run("CompletingRebalance", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := completing(h, "g")
		leader := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0]})
		_ = leader
		// The leader's sync is parked until written; say the write is slow and the follower died
		// after its JoinGroup response.
		h.advance(10 * time.Second)
		if d := h.s.Describe(h.now, "g"); len(d.Members) != 1 || d.Members[0].MemberID != ids[0] {
			t.Fatalf("after the follower's session: %+v", d)
		}
		if leader.get().ErrorCode != errcode.RebalanceInProgress || h.state("g") != "PreparingRebalance" {
			t.Fatalf("leader: %+v, %s", leader.get(), h.state("g"))
		}
		h.persistAll() // the late write completes for a generation that is over
		if h.state("g") != "PreparingRebalance" {
			t.Fatal(h.state("g"))
		}
	})
	t.Run("PreparingRebalance", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := h.stableGroup("g", 3)
		_ = gen
		j0 := h.join(consumerJoin("g", ids[0]))
		j1 := h.join(consumerJoin("g", ids[1]))
		// Member 2 is dead: it neither rejoins nor heartbeats. The join phase ends when its
		// session expires, well before the 30 s rebalance timeout.
		h.advance(10 * time.Second)
		if j0.get().ErrorCode != errcode.None || len(j0.get().Members) != 2 || j1.get().Generation != gen+1 {
			t.Fatalf("joins: %+v %+v", j0.get(), j1.get())
		}
		// Members parked in JoinGroup are alive: they are not expired.
		if h.state("g") != "CompletingRebalance" {
			t.Fatal(h.state("g"))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		first := h.join(consumerJoin("g", "")).get() // a pending member of an Empty group
		h.advance(9 * time.Second)
		if d := h.s.groups["g"]; d == nil || len(d.pending) != 1 {
			t.Fatal("pending member gone early")
		}
		h.advance(time.Second)
		if _, ok := h.s.groups["g"]; ok {
			t.Fatalf("the group outlived its only pending member %s", first.MemberID)
		}
	})
	t.Run("parked members are alive", func(t *testing.T) {
		h := newShardHarness(t, testConfig())
		ids, gen := h.stableGroup("g", 2)
		j0 := h.join(consumerJoin("g", ids[0]))
		for range 5 {
			h.advance(5 * time.Second)
			h.heartbeat("g", ids[1], gen)
		}
		j0.pending() // 25 s parked, session 10 s: still a member
		h.join(consumerJoin("g", ids[1]))
		if j0.get().ErrorCode != errcode.None || len(j0.get().Members) != 2 {
			t.Fatalf("join: %+v", j0.get())
		}
	})
}

func TestLeave(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	static := consumerJoin("s", "")
	static.InstanceID = strp("i")
	js := h.join(static)
	h.tick()
	sid := js.get().MemberID

	cases := []struct {
		name string
		req  LeaveRequest
		want LeaveResponse
	}{
		{"empty group id", LeaveRequest{Version: 3}, LeaveResponse{ErrorCode: errcode.InvalidGroupID}},
		{"unknown group", LeaveRequest{Version: 3, Group: "nope", Members: []LeaveMember{{MemberID: "m"}}}, LeaveResponse{ErrorCode: errcode.UnknownMemberID}},
		{"v1 unknown member", LeaveRequest{Version: 1, Group: "g", MemberID: "m"}, LeaveResponse{ErrorCode: errcode.UnknownMemberID}},
		{"v3 mixed", LeaveRequest{Version: 3, Group: "g", Members: []LeaveMember{{MemberID: "m"}, {MemberID: ids[2]}, {InstanceID: strp("nobody")}}},
			LeaveResponse{Members: []LeaveMemberResponse{{MemberID: "m", ErrorCode: errcode.UnknownMemberID}, {MemberID: ids[2]}, {InstanceID: strp("nobody"), ErrorCode: errcode.UnknownMemberID}}}},
		{"fenced instance", LeaveRequest{Version: 3, Group: "s", Members: []LeaveMember{{MemberID: "old", InstanceID: strp("i")}}},
			LeaveResponse{Members: []LeaveMemberResponse{{MemberID: "old", InstanceID: strp("i"), ErrorCode: errcode.FencedInstanceID}}}},
	}
	for _, c := range cases {
		got := h.leave(c.req).get()
		if got.ErrorCode != c.want.ErrorCode || len(got.Members) != len(c.want.Members) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
			continue
		}
		for i := range got.Members {
			g, w := got.Members[i], c.want.Members[i]
			if g.MemberID != w.MemberID || g.ErrorCode != w.ErrorCode || (g.InstanceID == nil) != (w.InstanceID == nil) {
				t.Errorf("%s: member %d %+v, want %+v", c.name, i, g, w)
			}
		}
	}
	// Member 2 left: the group rebalances; the leader rejoins, member 1 too.
	if h.state("g") != "PreparingRebalance" {
		t.Fatal(h.state("g"))
	}
	j0 := h.join(consumerJoin("g", ids[0]))
	// v0-2 leave of one member; the rebalance then completes with the leader alone.
	if r := h.leave(LeaveRequest{Version: 0, Group: "g", MemberID: ids[1]}).get(); r.ErrorCode != errcode.None {
		t.Fatalf("v0 leave: %+v", r)
	}
	if r := j0.get(); r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rebalance after the leave: %+v", r)
	}
	// An administrator removes the static member by instance id; a pending member leaves too.
	pending := h.join(consumerJoin("s", "")).get().MemberID
	r := h.leave(LeaveRequest{Version: 4, Group: "s", Members: []LeaveMember{{InstanceID: strp("i")}, {MemberID: pending}}})
	if r.done() {
		t.Fatalf("answered before the Empty group is written: %+v", r.get())
	}
	if d := h.s.Describe(h.now, "s"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("static group: %+v", d)
	}
	_ = sid
	h.persistAll()
	if got := r.get(); got.ErrorCode != errcode.None || got.Members[0].ErrorCode != errcode.None || got.Members[1].ErrorCode != errcode.None {
		t.Fatalf("admin leave: %+v", got)
	}

	// The write of the Empty group fails: the leave reports it.
	id, _ := h.stableGroup("e", 1)
	r = h.leave(LeaveRequest{Version: 3, Group: "e", Members: []LeaveMember{{MemberID: id[0]}}})
	h.complete(errcode.New(errcode.NotLeaderOrFollower, ""))
	if got := r.get(); got.ErrorCode != errcode.NotCoordinator || got.Members[0].ErrorCode != errcode.NotCoordinator {
		t.Fatalf("leave with a failed write: %+v", got)
	}
	if h.state("e") != "Empty" {
		t.Fatal(h.state("e"))
	}
}
