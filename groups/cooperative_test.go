package groups

import (
	"bytes"
	"slices"
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cooperativeMetadata is a v1+ subscription to "t" listing the partitions the member owns.
func cooperativeMetadata(generation int32, owned ...int32) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 2, Topics: []string{"t"}, Generation: generation}
	if len(owned) > 0 {
		m.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "t", Partitions: owned}}
	}
	return m.AppendTo(nil)
}

func cooperativeJoin(group, memberID string, metadata []byte) JoinRequest {
	r := consumerJoin(group, memberID, "cooperative-sticky")
	r.Protocols[0].Metadata = metadata
	return r
}

// The broker only runs rebalances for cooperative clients: members rejoin with what they own in
// their metadata, the leader computes the incremental assignment, and a second rebalance follows
// the first. Both must work back to back.
func TestCooperativeRebalances(t *testing.T) {
	h := newShardHarness(t, testConfig())
	a, ja := h.newMember(cooperativeJoin("g", "", cooperativeMetadata(-1)))
	b, jb := h.newMember(cooperativeJoin("g", "", cooperativeMetadata(-1)))
	h.tick()
	gen := ja.get().Generation
	if *ja.get().ProtocolName != "cooperative-sticky" || jb.get().Generation != gen {
		t.Fatalf("joins: %+v %+v", ja.get(), jb.get())
	}
	// Generation 1: a owns 0-2, b owns 3-5.
	assign := func(gen int32, leader string, parts map[string][]int32) map[string]*reply[SyncResponse] {
		t.Helper()
		out := map[string]*reply[SyncResponse]{}
		var as []SyncAssignment
		for id, ps := range parts {
			m := kmsg.ConsumerMemberAssignment{Version: 1, Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: ps}}}
			as = append(as, SyncAssignment{MemberID: id, Assignment: m.AppendTo(nil)})
			if id != leader {
				out[id] = h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: id, ProtocolType: strp("consumer"), ProtocolName: strp("cooperative-sticky")})
			}
		}
		out[leader] = h.sync(SyncRequest{Version: 5, Group: "g", Generation: gen, MemberID: leader, Assignments: as})
		h.persistAll()
		for id, r := range out {
			var got kmsg.ConsumerMemberAssignment
			if r.get().ErrorCode != errcode.None || got.ReadFrom(r.get().Assignment) != nil {
				t.Fatalf("gen %d member %s: %+v", gen, id, r.get())
			}
			var want []int32
			if len(got.Topics) > 0 {
				want = got.Topics[0].Partitions
			}
			if !slices.Equal(want, parts[id]) {
				t.Fatalf("gen %d member %s got %v, want %v", gen, id, want, parts[id])
			}
		}
		return out
	}
	assign(gen, a, map[string][]int32{a: {0, 1, 2}, b: {3, 4, 5}})

	// c joins: first rebalance. a and b rejoin owning their partitions; the leader revokes 2 and
	// 5 for c but assigns them to nobody yet.
	c, jc := h.newMember(cooperativeJoin("g", "", cooperativeMetadata(-1)))
	ja = h.join(cooperativeJoin("g", a, cooperativeMetadata(gen, 0, 1, 2)))
	jb = h.join(cooperativeJoin("g", b, cooperativeMetadata(gen, 3, 4, 5)))
	r := ja.get()
	if r.Generation != gen+1 || len(r.Members) != 3 || jc.get().Generation != gen+1 || jb.get().Generation != gen+1 {
		t.Fatalf("first rebalance: %+v %+v", r, jc.get())
	}
	// The leader sees what each member owns, byte for byte.
	for _, m := range r.Members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.Metadata); err != nil {
			t.Fatal(err)
		}
		if m.MemberID == a && !bytes.Equal(m.Metadata, cooperativeMetadata(gen, 0, 1, 2)) {
			t.Fatalf("a's metadata %x", m.Metadata)
		}
	}
	gen++
	assign(gen, a, map[string][]int32{a: {0, 1}, b: {3, 4}, c: nil})

	// The members that lost partitions rejoin at once: the second rebalance gives c its share.
	ja = h.join(cooperativeJoin("g", a, cooperativeMetadata(gen, 0, 1)))
	jb = h.join(cooperativeJoin("g", b, cooperativeMetadata(gen, 3, 4)))
	jc = h.join(cooperativeJoin("g", c, cooperativeMetadata(gen)))
	if ja.get().Generation != gen+1 || jb.get().Generation != gen+1 || jc.get().Generation != gen+1 {
		t.Fatalf("second rebalance: %+v %+v %+v", ja.get(), jb.get(), jc.get())
	}
	gen++
	assign(gen, a, map[string][]int32{a: {0, 1}, b: {3, 4}, c: {2, 5}})
	if h.state("g") != "Stable" {
		t.Fatal(h.state("g"))
	}
	// The subscriptions (v2 with owned partitions) are read for OffsetDelete.
	if got := h.deleteOffsets("g", TopicPartition{"t", 0}, TopicPartition{"u", 0}).get(); got.Partitions[0].ErrorCode != errcode.GroupSubscribedToTopic || got.Partitions[1].ErrorCode != errcode.None {
		t.Fatalf("offset delete: %+v", got)
	}
}

// An eager group upgrades to cooperative-sticky one member at a time: the protocol stays range
// until every member supports cooperative-sticky.
func TestEagerToCooperativeUpgrade(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	protocolAfter := func(upgraded int) string {
		t.Helper()
		var joins []*reply[JoinResponse]
		for i, id := range ids {
			ps := []string{"range"}
			if i < upgraded {
				ps = []string{"cooperative-sticky", "range"}
			}
			joins = append(joins, h.join(consumerJoin("g", id, ps...)))
		}
		r := joins[0].get()
		if r.ErrorCode != errcode.None {
			t.Fatalf("join: %+v", r)
		}
		h.sync(SyncRequest{Group: "g", Generation: r.Generation, MemberID: ids[0]})
		h.persistAll()
		gen = r.Generation
		return *r.ProtocolName
	}
	for upgraded, want := range []string{"range", "range", "range", "cooperative-sticky"} {
		if got := protocolAfter(upgraded); got != want {
			t.Fatalf("%d upgraded: %s, want %s", upgraded, got, want)
		}
	}
	_ = gen
}
