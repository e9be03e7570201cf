package groups

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// snapshotShard renders what the log must preserve: each group's generation, protocol, leader
// and members (with their metadata for the selected protocol and assignment), when an Empty group
// became Empty, and the committed offsets.
func snapshotShard(s *Shard) string {
	var b strings.Builder
	for _, id := range s.sortedGroupIDs() {
		g := s.groups[id]
		fmt.Fprintf(&b, "group %q %s gen=%d type=%q protocol=%q leader=%q", id, g.state, g.generation, g.protocolType, g.protocol, g.leader)
		if g.is(stateEmpty) && g.protocolType != "" {
			fmt.Fprintf(&b, " empty-since=%d", g.stateTime.UnixMilli())
		}
		b.WriteString("\n")
		for _, mid := range g.order {
			m := g.members[mid]
			inst := "-"
			if m.instanceID != nil {
				inst = *m.instanceID
			}
			fmt.Fprintf(&b, "  member %q instance=%s client=%q host=%q session=%v rebalance=%v metadata=%x assignment=%x\n",
				m.id, inst, m.clientID, m.clientHost, m.sessionTimeout, m.rebalanceTimeout, m.metadata(g.protocol), m.assignment)
		}
		tps := make([]TopicPartition, 0, len(s.offsets[id]))
		for tp := range s.offsets[id] {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, compareTopicPartitions)
		for _, tp := range tps {
			fmt.Fprintf(&b, "  offset %s/%d %+v\n", tp.Topic, tp.Partition, s.offsets[id][tp])
		}
	}
	return b.String()
}

// replay loads log into a new shard.
func replay(t testing.TB, log []Record, now time.Time, cfg Config) (*Shard, *shardWriter) {
	t.Helper()
	w := &shardWriter{}
	s := NewShard(3, cfg, w)
	for i, r := range log {
		if err := s.Load(r.Key, r.Value); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	s.Loaded(now)
	return s, w
}

func TestReplayRebuildsState(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	sIDs, sGen := staticGroup(h, "static", 2)
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[1], Topics: []CommitTopic{
		{Topic: "t", Partitions: []CommitPartition{{Partition: 0, Offset: 5, LeaderEpoch: 2, Metadata: "meta"}, {Partition: 1, Offset: 6, LeaderEpoch: -1}}},
	}})
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[1], Topics: oneOffset("t", 0, 7)}) // overwrites
	commitCode(h, CommitRequest{Group: "simple", Generation: -1, Topics: oneOffset("t", 3, 30)})
	commitCode(h, CommitRequest{Version: 7, Group: "static", Generation: sGen, MemberID: sIDs[0], InstanceID: strp("i0"), Topics: oneOffset("t", 0, 1)})
	// A group that emptied, one that was deleted, a topic deleted.
	e, _ := h.stableGroup("emptied", 1)
	h.advance(time.Second)
	h.leave(LeaveRequest{Version: 3, Group: "emptied", Members: []LeaveMember{{MemberID: e[0]}}})
	commitCode(h, CommitRequest{Group: "deleted", Generation: -1, Topics: oneOffset("t", 0, 1)})
	h.deleteGroup("deleted")
	commitCode(h, CommitRequest{Group: "g", Generation: gen, MemberID: ids[1], Topics: oneOffset("gone", 0, 1)})
	h.s.DeleteTopic(h.now, "gone")
	h.persistAll()

	want := snapshotShard(h.s)
	later := h.now.Add(time.Minute)
	s, _ := replay(t, h.log, later, testConfig())
	if got := snapshotShard(s); got != want {
		t.Fatalf("replayed state:\n%s\nwant:\n%s", got, want)
	}
	// Replaying the log twice over changes nothing: records are last-writer-wins.
	s2, _ := replay(t, append(slices.Clone(h.log), h.log...), later, testConfig())
	if got := snapshotShard(s2); got != want {
		t.Fatalf("replayed twice:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(want, `group "g" Stable gen=1`) || !strings.Contains(want, `group "emptied" Empty gen=2`) || strings.Contains(want, `"deleted"`) || strings.Contains(want, "gone") {
		t.Fatalf("the scenario is not what the test thinks:\n%s", want)
	}
}

// After a load the members keep their ids and generation, as after a coordinator move: those
// that heartbeat within their session stay, the others are removed.
func TestReplayMembersMustHeartbeat(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	h.persistAll()
	h2 := &shardHarness{t: t, now: h.now.Add(time.Hour)}
	h2.s, h2.w = replay(t, h.log, h2.now, testConfig())

	if d := h2.s.Describe(h2.now, "g"); d.State != "Stable" || len(d.Members) != 2 || string(d.Members[1].Assignment) != "\x01" {
		t.Fatalf("loaded: %+v", d)
	}
	// The follower comes back with the same subscription: no rebalance, its assignment again.
	if r := h2.join(consumerJoin("g", ids[1])).get(); r.ErrorCode != errcode.None || r.Generation != gen {
		t.Fatalf("rejoin: %+v", r)
	}
	if r := h2.sync(SyncRequest{Group: "g", Generation: gen, MemberID: ids[1]}).get(); r.ErrorCode != errcode.None || string(r.Assignment) != "\x01" {
		t.Fatalf("sync: %+v", r)
	}
	// Member 1 heartbeats, the leader is gone: after its session the group rebalances without it.
	for range 2 {
		h2.advance(5 * time.Second)
		if c := h2.heartbeat("g", ids[1], gen); c != errcode.None && c != errcode.RebalanceInProgress {
			t.Fatalf("heartbeat: %v", c)
		}
	}
	d := h2.s.Describe(h2.now, "g")
	if d.State != "PreparingRebalance" || len(d.Members) != 1 || d.Members[0].MemberID != ids[1] {
		t.Fatalf("after the leader's session: %+v", d)
	}
	j := h2.join(consumerJoin("g", ids[1]))
	if r := j.get(); r.ErrorCode != errcode.None || r.Generation != gen+1 || r.Leader != ids[1] {
		t.Fatalf("rebalance: %+v", r)
	}
}

func TestLoadRecords(t *testing.T) {
	w := &shardWriter{}
	s := NewShard(0, testConfig(), w)
	// An unknown record type (a newer Kafka's) is skipped; malformed bytes are reported.
	if err := s.Load([]byte{0, 9, 1, 2}, []byte{1}); err != nil {
		t.Fatalf("unknown record: %v", err)
	}
	if err := s.Load([]byte{0, 1, 0}, []byte{0}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("bad record: %v", err)
	}
	if err := s.Load([]byte{0}, nil); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("short key: %v", err)
	}
	// A damaged group record: a repeated member, a repeated instance id, a leader who is not a
	// member.
	inst := strp("i")
	leader := "ghost"
	protocol := "range"
	v := GroupValue{ProtocolType: "consumer", Generation: 4, Protocol: &protocol, Leader: &leader, CurrentStateTimestamp: -1, Members: []MemberValue{
		{MemberID: "a", InstanceID: inst, SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000},
		{MemberID: "a", SessionTimeoutMs: 10000},
		{MemberID: "b", InstanceID: inst, SessionTimeoutMs: 10000},
		{MemberID: "c", SessionTimeoutMs: 10000},
	}}
	if err := s.Load(AppendGroupKey(nil, GroupKey{Group: "g"}), AppendGroupValue(nil, v)); err != nil {
		t.Fatal(err)
	}
	// A group loaded and then deleted.
	if err := s.Load(AppendGroupKey(nil, GroupKey{Group: "x"}), AppendGroupValue(nil, GroupValue{ProtocolType: "consumer", CurrentStateTimestamp: -1})); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(AppendGroupKey(nil, GroupKey{Group: "x"}), nil); err != nil {
		t.Fatal(err)
	}
	s.Loaded(shardEpoch)
	g := s.groups["g"]
	if g == nil || len(g.members) != 2 || g.leader != "a" || g.static["i"] != "a" || g.generation != 4 || !g.is(stateStable) {
		t.Fatalf("damaged record loaded as %+v", g)
	}
	if _, ok := s.groups["x"]; ok {
		t.Fatal("deleted group loaded")
	}
	s.Loaded(shardEpoch) // twice is harmless
}

func TestLoadOverMaxGroupSize(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	cfg := testConfig()
	cfg.MaxGroupSize = 2
	s, _ := replay(t, h.log, h.now, cfg)
	// group.max.size was lowered: the group rebalances, and the last to rejoin is left out.
	if st := s.groups["g"].state; st != statePreparingRebalance {
		t.Fatalf("state %s", st)
	}
	h2 := &shardHarness{t: t, s: s, now: h.now}
	j0, j1 := h2.join(consumerJoin("g", ids[0])), h2.join(consumerJoin("g", ids[1]))
	if r := h2.join(consumerJoin("g", ids[2])).get(); r.ErrorCode != errcode.GroupMaxSizeReached {
		t.Fatalf("third: %+v", r)
	}
	if j0.get().Generation != gen+1 || j1.get().ErrorCode != errcode.None {
		t.Fatalf("%+v %+v", j0.get(), j1.get())
	}
}
