package groups

import (
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

func TestJoinErrors(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroupSize = 3
	h := newShardHarness(t, cfg)
	ids, _ := h.stableGroup("g", 2)
	h.stableGroup("full", 3)

	// A Dead group: a simple group whose deletion is being written.
	h.commit(CommitRequest{Group: "dead", Generation: -1, Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{Offset: 1}}}}})
	h.persistAll()
	h.s.DeleteGroup(h.now, "dead", func(errcode.Code) {})

	with := func(f func(*JoinRequest)) JoinRequest {
		r := consumerJoin("g", "")
		f(&r)
		return r
	}
	cases := []struct {
		name string
		req  JoinRequest
		want errcode.Code
	}{
		{"empty group id", with(func(r *JoinRequest) { r.Group = "" }), errcode.InvalidGroupID},
		{"group id too long", with(func(r *JoinRequest) { r.Group = strings.Repeat("g", MaxRecordStringBytes+1) }), errcode.InvalidGroupID},
		{"session below min", with(func(r *JoinRequest) { r.SessionTimeout = 5999 * time.Millisecond }), errcode.InvalidSessionTimeout},
		{"session above max", with(func(r *JoinRequest) { r.SessionTimeout = 31 * time.Minute }), errcode.InvalidSessionTimeout},
		{"member id for an unknown group", with(func(r *JoinRequest) { r.Group, r.MemberID = "nope", "m" }), errcode.UnknownMemberID},
		{"no protocol type", with(func(r *JoinRequest) { r.Group, r.ProtocolType = "new", "" }), errcode.InconsistentGroupProtocol},
		{"no protocols", with(func(r *JoinRequest) { r.Group, r.Protocols = "new", nil }), errcode.InconsistentGroupProtocol},
		{"other protocol type", with(func(r *JoinRequest) { r.ProtocolType = "connect" }), errcode.InconsistentGroupProtocol},
		{"unsupported protocol", with(func(r *JoinRequest) { r.Protocols = []Protocol{{Name: "sticky"}} }), errcode.InconsistentGroupProtocol},
		{"metadata too large", with(func(r *JoinRequest) { r.Protocols = []Protocol{{Name: "range", Metadata: make([]byte, 1<<20)}} }), errcode.InvalidRequest},
		{"protocols too large together", with(func(r *JoinRequest) {
			r.Protocols = []Protocol{{Name: "a", Metadata: make([]byte, 600<<10)}, {Name: "b", Metadata: make([]byte, 600<<10)}}
		}), errcode.InvalidRequest},
		{"client id too long", with(func(r *JoinRequest) { r.ClientID = strings.Repeat("c", MaxRecordStringBytes+1) }), errcode.InvalidRequest},
		{"unknown member id", with(func(r *JoinRequest) { r.MemberID = "stranger" }), errcode.UnknownMemberID},
		{"unknown instance id with a member id", with(func(r *JoinRequest) { r.MemberID, r.InstanceID = ids[0], strp("i") }), errcode.UnknownMemberID},
		{"group full", consumerJoin("full", ""), errcode.GroupMaxSizeReached},
		{"dead group, new member", with(func(r *JoinRequest) { r.Group = "dead" }), errcode.CoordinatorNotAvailable},
		{"dead group, known member", with(func(r *JoinRequest) { r.Group, r.MemberID = "dead", "m" }), errcode.CoordinatorNotAvailable},
	}
	for _, c := range cases {
		r := h.join(c.req).get()
		if r.ErrorCode != c.want || r.Generation != -1 || r.ProtocolName != nil {
			t.Errorf("%s: %+v, want %v", c.name, r, c.want)
		}
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("the errors changed the group: %s", st)
	}
	if d := h.s.Describe(h.now, "new"); d.ErrorCode != errcode.GroupIDNotFound {
		t.Fatalf("a refused join left a group behind: %+v", d)
	}
}

func TestJoinFencedInstance(t *testing.T) {
	h := newShardHarness(t, testConfig())
	r := consumerJoin("g", "")
	r.InstanceID = strp("i1")
	j := h.join(r)
	h.tick()
	id := j.get().MemberID
	// A zombie of the static member, with another member id, is fenced.
	r.MemberID = "client-old"
	if got := h.join(r).get(); got.ErrorCode != errcode.FencedInstanceID {
		t.Fatalf("zombie join: %+v", got)
	}
	r.MemberID = id
	r.InstanceID = nil
	// A pending (dynamic) id may not come back as a static member.
	id2 := h.join(consumerJoin("h", "")).get().MemberID
	bad := consumerJoin("h", id2)
	bad.InstanceID = strp("x")
	if got := h.join(bad).get(); got.ErrorCode != errcode.InvalidRequest {
		t.Fatalf("pending id with an instance id: %+v", got)
	}
}

func TestJoinMemberIDRequired(t *testing.T) {
	h := newShardHarness(t, testConfig())
	r := consumerJoin("g", "")
	r.Version = 4
	first := h.join(r).get()
	if first.ErrorCode != errcode.MemberIDRequired || !strings.HasPrefix(first.MemberID, "client-") {
		t.Fatalf("first v4 join: %+v", first)
	}
	if d := h.s.Describe(h.now, "g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("a pending member is a member: %+v", d)
	}
	// The pending id expires after the session timeout; rejoining with it then fails.
	h.advance(10 * time.Second)
	r.MemberID = first.MemberID
	if got := h.join(r).get(); got.ErrorCode != errcode.UnknownMemberID {
		t.Fatalf("rejoin after the pending id expired: %+v", got)
	}

	// Versions 0-3 join at once.
	old := consumerJoin("g3", "")
	old.Version = 3
	j := h.join(old)
	h.tick()
	if got := j.get(); got.ErrorCode != errcode.None || got.Generation != 1 || got.Leader != got.MemberID || len(got.Members) != 1 {
		t.Fatalf("v3 join: %+v", got)
	}
	// Version 0 has no rebalance timeout: it is the session timeout.
	v0 := consumerJoin("g0", "")
	v0.Version, v0.RebalanceTimeout = 0, 0
	h.join(v0)
	if g := h.s.groups["g0"]; g.rebalanceTimeout() != v0.SessionTimeout {
		t.Fatalf("v0 rebalance timeout %v", g.rebalanceTimeout())
	}
	// An instance id below v5 is ignored.
	v4 := consumerJoin("g4", "")
	v4.Version, v4.InstanceID = 4, strp("ignored")
	if got := h.join(v4).get(); got.ErrorCode != errcode.MemberIDRequired {
		t.Fatalf("v4 with an instance id: %+v", got)
	}
}

func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	// The leader rejoins: a rebalance; member 1 rejoins, member 2 keeps heartbeating but never
	// rejoins.
	j0 := h.join(consumerJoin("g", ids[0]))
	j1 := h.join(consumerJoin("g", ids[1]))
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	for range 5 {
		h.advance(5 * time.Second)
		if c := h.heartbeat("g", ids[2], gen); c != errcode.RebalanceInProgress {
			t.Fatalf("heartbeat during the rebalance: %v", c)
		}
	}
	j0.pending()
	h.advance(5 * time.Second) // 30 s: the rebalance timeout
	r0, r1 := j0.get(), j1.get()
	if r0.ErrorCode != errcode.None || r0.Generation != gen+1 || len(r0.Members) != 2 || r1.Generation != gen+1 || len(r1.Members) != 0 {
		t.Fatalf("joins: %+v %+v", r0, r1)
	}
	if c := h.heartbeat("g", ids[2], gen); c != errcode.UnknownMemberID {
		t.Fatalf("laggard heartbeat: %v", c)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 3 * time.Second
	h := newShardHarness(t, cfg)
	a := consumerJoin("g", "")
	a.Version = 3
	ja := h.join(a)
	h.advance(2 * time.Second)
	jb := h.join(a) // a second member during the delay extends it
	h.advance(time.Second)
	ja.pending()
	h.advance(2 * time.Second) // 5 s
	ja.pending()
	h.advance(time.Second) // 6 s: the extended delay ends
	if r := ja.get(); r.ErrorCode != errcode.None || len(r.Members) != 2 || jb.get().Generation != 1 {
		t.Fatalf("after the delay: %+v %+v", r, jb.get())
	}
	if at := h.now.Sub(shardEpoch); at != 6*time.Second {
		t.Fatalf("join phase ended after %v", at)
	}

	// The extensions stop at the rebalance timeout.
	h2 := newShardHarness(t, cfg)
	c := consumerJoin("g", "")
	c.Version, c.RebalanceTimeout = 3, 5*time.Second
	j := h2.join(c)
	for range 5 {
		h2.advance(time.Second)
		if !j.done() {
			h2.join(c)
		}
	}
	if !j.done() || h2.now.Sub(shardEpoch) != 5*time.Second || len(j.get().Members) != 5 {
		t.Fatalf("after %v: %+v", h2.now.Sub(shardEpoch), j.resp)
	}
	// A lone member waits the delay, no more.
	h3 := newShardHarness(t, cfg)
	j = h3.join(c)
	h3.advance(3 * time.Second)
	if !j.done() {
		t.Fatal("a lone member waited past the initial delay")
	}
}

func TestProtocolSelection(t *testing.T) {
	cases := []struct {
		members [][]string
		want    string
	}{
		{[][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"range", "roundrobin"}}, "range"},
		{[][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin"}}, "roundrobin"},
		{[][]string{{"range", "roundrobin"}, {"roundrobin", "range"}}, "range"}, // a tie: the first member's preference
		{[][]string{{"cooperative-sticky", "range"}, {"cooperative-sticky", "range"}}, "cooperative-sticky"},
	}
	for _, c := range cases {
		h := newShardHarness(t, testConfig())
		var joins []*reply[JoinResponse]
		for _, ps := range c.members {
			r := consumerJoin("g", "", ps...)
			r.Version = 3
			joins = append(joins, h.join(r))
		}
		h.tick()
		for _, j := range joins {
			if r := j.get(); r.ErrorCode != errcode.None || r.ProtocolName == nil || *r.ProtocolName != c.want {
				t.Errorf("%v: %+v, want %s", c.members, r, c.want)
			}
		}
		// The leader gets every member's metadata for the selected protocol.
		if ms := joins[0].get().Members; len(ms) != len(c.members) || string(ms[1].Metadata) != string(subscription(0, "t")) {
			t.Errorf("%v: leader's members %+v", c.members, ms)
		}
	}
}

func TestRejoinInEachState(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)

	// Stable, a follower with the same metadata: the current generation, no rebalance.
	r := h.join(consumerJoin("g", ids[1])).get()
	if r.ErrorCode != errcode.None || r.Generation != gen || r.Leader != ids[0] || len(r.Members) != 0 || h.state("g") != "Stable" {
		t.Fatalf("follower rejoin: %+v, %s", r, h.state("g"))
	}
	// Stable, a follower with new metadata: a rebalance.
	changed := consumerJoin("g", ids[1])
	changed.Protocols[0].Metadata = subscription(0, "t", "u")
	j1 := h.join(changed)
	if h.state("g") != "PreparingRebalance" {
		t.Fatalf("changed metadata: %s", h.state("g"))
	}
	j0 := h.join(consumerJoin("g", ids[0]))
	r0 := j0.get()
	if r0.Generation != gen+1 || j1.get().Generation != gen+1 || h.state("g") != "CompletingRebalance" {
		t.Fatalf("rebalance: %+v %+v", r0, j1.get())
	}
	gen++
	// CompletingRebalance, same metadata (a lost response): the same answer again.
	again := h.join(consumerJoin("g", ids[0])).get()
	if again.Generation != gen || len(again.Members) != 2 || again.Leader != ids[0] || h.state("g") != "CompletingRebalance" {
		t.Fatalf("rejoin while completing: %+v", again)
	}
	// CompletingRebalance, new metadata: members waiting in SyncGroup are told to rejoin.
	s0 := h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]})
	s0.pending()
	changed = consumerJoin("g", ids[1]) // the shard owns the slices of the first
	changed.Protocols[0].Metadata = subscription(0, "t", "u", "v")
	j1 = h.join(changed)
	if got := s0.get(); got.ErrorCode != errcode.RebalanceInProgress {
		t.Fatalf("parked sync: %+v", got)
	}
	j0 = h.join(consumerJoin("g", ids[0]))
	if j0.get().Generation != gen+1 || j1.get().Generation != gen+1 {
		t.Fatalf("second rebalance: %+v %+v", j0.get(), j1.get())
	}
	gen++
	h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[0]})
	h.persistAll()
	if h.state("g") != "Stable" {
		t.Fatal(h.state("g"))
	}
	// Stable, the leader rejoins with the same metadata: a rebalance anyway.
	h.join(consumerJoin("g", ids[0]))
	if h.state("g") != "PreparingRebalance" {
		t.Fatalf("leader rejoin: %s", h.state("g"))
	}
}

func TestDuplicateJoinIsAnswered(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, _ := h.stableGroup("g", 2)
	first := h.join(consumerJoin("g", ids[0]))
	second := h.join(consumerJoin("g", ids[0])) // the client gave up on the first
	if first.get().ErrorCode != errcode.RebalanceInProgress {
		t.Fatalf("superseded join: %+v", first.get())
	}
	second.pending()
	h.join(consumerJoin("g", ids[1]))
	if second.get().ErrorCode != errcode.None {
		t.Fatalf("second join: %+v", second.get())
	}
}

func TestNewMemberJoinTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.NewMemberJoinTimeout = time.Minute
	h := newShardHarness(t, cfg)
	slow := consumerJoin("g", "")
	slow.RebalanceTimeout = 10 * time.Minute
	id, j := h.newMember(slow)
	h.tick()
	gen := j.get().Generation
	h.sync(SyncRequest{Group: "g", Generation: gen, MemberID: id})
	h.persistAll()
	// A new member joins; the old one heartbeats but does not rejoin, so the rebalance would
	// wait ten minutes. The new member's parked join expires after a minute.
	_, jn := h.newMember(consumerJoin("g", ""))
	for range 12 {
		h.advance(5 * time.Second)
		h.heartbeat("g", id, gen)
	}
	if r := jn.get(); r.ErrorCode != errcode.UnknownMemberID || r.MemberID != "" {
		t.Fatalf("new member after its join timeout: %+v", r)
	}
	if d := h.s.Describe(h.now, "g"); len(d.Members) != 1 || d.State != "PreparingRebalance" {
		t.Fatalf("group: %+v", d)
	}
}

func TestMaxGroupSizeWhileRebalancing(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroupSize = 2
	h := newShardHarness(t, cfg)
	ids, _ := h.stableGroup("g", 2)
	// While PreparingRebalance the limit counts members that rejoined: two have, a third is
	// refused, and so is a member that had not rejoined yet.
	j0 := h.join(consumerJoin("g", ids[0]))
	_, j := h.newMember(consumerJoin("g", ""))
	j.pending()
	r := h.join(consumerJoin("g", ids[1])).get()
	if r.ErrorCode != errcode.GroupMaxSizeReached {
		t.Fatalf("member over the limit: %+v", r)
	}
	// Without it every member has rejoined: the join phase ends.
	if j.get().ErrorCode != errcode.None || len(j0.get().Members) != 2 {
		t.Fatalf("rebalance: %+v %+v", j0.get(), j.get())
	}
	if r := h.join(consumerJoin("g", "")).get(); r.ErrorCode != errcode.GroupMaxSizeReached {
		t.Fatalf("joining a full group: %+v", r)
	}
}
