package meta

import (
	"reflect"
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

// isrCluster is a runner over nodes 0-3 (incarnations 1-4) and topic "t" of two partitions on
// all four, where:
//   - node 3 is fenced (incarnation 4) and out of every ISR;
//   - t/0 has replicas [0 1 2 3], ISR [0 1] (node 2, live at incarnation 3, left it), leader 0,
//     leader epoch 0, partition epoch 2;
//   - node 1 registered again (incarnation 8): t/1, replicas [1 2 3 0], ISR [1 2 0], is led by
//     1 in leader epoch 1, partition epoch 3;
//   - topic "u" (one partition on [0 1]) is there to stay shared.
//
// Only commands build it: the leaders shrink their ISRs, node 1 restarts (it was not in t/0's
// ISR, and the last member of t/1's, which it keeps and leads in a new leader epoch), node 3 is
// fenced, and the leaders add back node 1 at its new incarnation and node 2.
func isrCluster(t *testing.T) *runner {
	t.Helper()
	r := newCluster(t, 0, 1, 2, 3)
	tp := r.createTopic("t", 2, 4) // index 5
	for _, cmd := range []Command{
		alterISR(tp, 0, 0, 0, 0, ISRMember{0, 1}), // index 6
		alterISR(tp, 1, 1, 0, 0, ISRMember{1, 2}), // index 7
	} {
		if res := r.apply(cmd); res.Code != 0 || res.Message != "" || res.PartitionEpoch != 1 {
			t.Fatalf("%s: %+v", describe(cmd), res)
		}
	}
	if res := r.apply(Command{Register: &RegisterNode{ID: 1}}); res.Incarnation != 8 {
		t.Fatalf("node 1 registered again at incarnation %d, want 8", res.Incarnation)
	}
	checkPartitions(t, r.img, "t", []want{{0, []int32{0}, 0, 1}, {1, []int32{1}, 1, 2}})
	if res := r.apply(Command{Fence: &FenceNode{ID: 3, Incarnation: 4}}); res.Code != 0 || res.Message != "" {
		t.Fatalf("fencing node 3: %+v", res)
	}
	for _, cmd := range []Command{
		alterISR(tp, 0, 0, 0, 1, ISRMember{0, 1}, ISRMember{1, 8}),
		alterISR(tp, 1, 1, 1, 2, ISRMember{1, 8}, ISRMember{2, 3}, ISRMember{0, 1}),
	} {
		if res := r.apply(cmd); res.Code != 0 || res.Message != "" {
			t.Fatalf("%s: %+v", describe(cmd), res)
		}
	}
	r.createTopic("u", 1, 2)
	checkPartitions(t, r.img, "t", []want{{0, []int32{0, 1}, 0, 2}, {1, []int32{1, 2, 0}, 1, 3}})
	return r
}

// alterISR is an AlterPartition of partition p of tp.
func alterISR(tp *Topic, p, leader, leaderEpoch, partitionEpoch int32, isr ...ISRMember) Command {
	return Command{AlterPartition: &AlterPartition{
		Topic: tp.Name, ID: tp.ID, Partition: p,
		Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch, ISR: isr,
	}}
}

func TestAlterPartitionRefused(t *testing.T) {
	base := isrCluster(t)
	tp := base.img.Topic("t")
	other := *tp
	other.ID[0]++
	unknown := Topic{Name: "x", ID: tp.ID}
	cur := []ISRMember{{0, 1}, {1, 8}} // t/0's ISR as it is
	add2 := append(cur[:2:2], ISRMember{2, 3})
	for _, tc := range []struct {
		name string
		cmd  Command
		code errcode.Code
		// edit changes a copy of the image first, into one no command sequence makes.
		edit func(img *Image)
	}{
		{"unknown topic", alterISR(&unknown, 0, 0, 0, 2, cur...), errcode.UnknownTopicOrPartition, nil},
		{"other topic id", alterISR(&other, 0, 0, 0, 2, cur...), errcode.UnknownTopicOrPartition, nil},
		{"partition past the end", alterISR(tp, 2, 0, 0, 2, cur...), errcode.UnknownTopicOrPartition, nil},
		{"negative partition", alterISR(tp, -1, 0, 0, 2, cur...), errcode.UnknownTopicOrPartition, nil},

		{"not the leader", alterISR(tp, 0, 1, 0, 2, cur...), errcode.FencedLeaderEpoch, nil},
		{"no leader", alterISR(tp, 0, NoLeader, 0, 2, cur...), errcode.FencedLeaderEpoch, nil},
		{"newer leader epoch", alterISR(tp, 0, 0, 1, 2, cur...), errcode.FencedLeaderEpoch, nil},
		{"stale leader epoch", alterISR(tp, 1, 1, 0, 3, ISRMember{1, 8}), errcode.FencedLeaderEpoch, nil},
		{"stale leader epoch and partition epoch", alterISR(tp, 1, 1, 0, 1, ISRMember{1, 8}), errcode.FencedLeaderEpoch, nil},

		{"stale partition epoch", alterISR(tp, 0, 0, 0, 1, cur...), errcode.InvalidUpdateVersion, nil},
		{"newer partition epoch", alterISR(tp, 0, 0, 0, 3, cur...), errcode.InvalidUpdateVersion, nil},
		{"stale partition epoch and empty ISR", alterISR(tp, 0, 0, 0, 1), errcode.InvalidUpdateVersion, nil},

		{"empty ISR", alterISR(tp, 0, 0, 0, 2), errcode.InvalidRequest, nil},
		{"duplicate member", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{1, 8}, ISRMember{0, 1}), errcode.InvalidRequest, nil},
		{"not a replica", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{5, 1}), errcode.InvalidRequest, nil},
		{"negative member", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{-1, 0}), errcode.InvalidRequest, nil},
		{"without the leader", alterISR(tp, 0, 0, 0, 2, ISRMember{1, 8}), errcode.InvalidRequest, nil},
		{"duplicate and stale leader incarnation", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 0}, ISRMember{0, 0}), errcode.InvalidRequest, nil},

		{"stale leader incarnation", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 0}, ISRMember{1, 8}), errcode.StaleBrokerEpoch, nil},
		{"newer leader incarnation", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 2}, ISRMember{1, 8}), errcode.StaleBrokerEpoch, nil},
		{"stale leader incarnation and fenced addition", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 0}, ISRMember{3, 4}), errcode.StaleBrokerEpoch, nil},
		{"fenced leader", alterISR(tp, 0, 0, 0, 2, cur...), errcode.StaleBrokerEpoch, func(img *Image) { img.Nodes[0].Fenced = true }},
		{"unregistered leader", alterISR(tp, 0, 0, 0, 2, cur...), errcode.StaleBrokerEpoch, func(img *Image) {
			delete(img.Nodes, 0)
			img.NodeIDs = img.NodeIDs[1:]
		}},

		{"adds a fenced node", alterISR(tp, 0, 0, 0, 2, append(cur[:2:2], ISRMember{3, 4})...), errcode.IneligibleReplica, nil},
		{"adds a node at a stale incarnation", alterISR(tp, 0, 0, 0, 2, append(cur[:2:2], ISRMember{2, 2})...), errcode.IneligibleReplica, nil},
		{"adds a node at a newer incarnation", alterISR(tp, 0, 0, 0, 2, append(cur[:2:2], ISRMember{2, 9})...), errcode.IneligibleReplica, nil},
		{"adds a fenced node and a live one", alterISR(tp, 0, 0, 0, 2, append(add2, ISRMember{3, 4})...), errcode.IneligibleReplica, nil},
		{"adds an unregistered node", alterISR(tp, 0, 0, 0, 2, add2...), errcode.IneligibleReplica, func(img *Image) {
			delete(img.Nodes, 2)
			img.NodeIDs = []int32{0, 1, 3}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := base.img
			if tc.edit != nil {
				img = img.Clone()
				tc.edit(img)
			}
			before := img.Clone()
			next, res := Apply(img, img.Index+1, tc.cmd)
			if res.Code != int16(tc.code) || res.Message == "" || res.PartitionEpoch != 0 {
				t.Fatalf("%s: result %+v, want %v with a message", describe(tc.cmd), res, tc.code)
			}
			if !reflect.DeepEqual(img, before) {
				t.Fatal("Apply changed its input image")
			}
			after := *next
			after.Index = img.Index
			if !reflect.DeepEqual(&after, img) {
				t.Fatal("a refused AlterPartition changed the image")
			}
		})
	}
}

func TestAlterPartitionApplies(t *testing.T) {
	base := isrCluster(t)
	tp := base.img.Topic("t")
	for _, tc := range []struct {
		name string
		cmd  Command
		want []want // t/0 and t/1 after
	}{
		// Added members are stored in replica order, whatever the order proposed.
		{"expand", alterISR(tp, 0, 0, 0, 2, ISRMember{2, 3}, ISRMember{0, 1}, ISRMember{1, 8}),
			[]want{{0, []int32{0, 1, 2}, 0, 3}, {1, []int32{1, 2, 0}, 1, 3}}},
		{"shrink to the leader", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}),
			[]want{{0, []int32{0}, 0, 3}, {1, []int32{1, 2, 0}, 1, 3}}},
		{"swap a member", alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{2, 3}),
			[]want{{0, []int32{0, 2}, 0, 3}, {1, []int32{1, 2, 0}, 1, 3}}},
		// Members kept are not checked: node 1 is named at its earlier incarnation.
		{"kept member at a stale incarnation", alterISR(tp, 0, 0, 0, 2, ISRMember{1, 2}, ISRMember{0, 1}, ISRMember{2, 3}),
			[]want{{0, []int32{0, 1, 2}, 0, 3}, {1, []int32{1, 2, 0}, 1, 3}}},
		// Replica order [1 2 3 0]: the ISR is [1 0], not [0 1].
		{"shrink, replica order", alterISR(tp, 1, 1, 1, 3, ISRMember{0, 1}, ISRMember{1, 8}),
			[]want{{0, []int32{0, 1}, 0, 2}, {1, []int32{1, 0}, 1, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{t: t, img: base.img, index: base.index}
			res := r.apply(tc.cmd)
			if res.Code != 0 || res.Message != "" {
				t.Fatalf("%s: result %+v", describe(tc.cmd), res)
			}
			checkPartitions(t, r.img, "t", tc.want)
			ap := tc.cmd.AlterPartition
			if got := r.img.Partition("t", ap.Partition).PartitionEpoch; res.PartitionEpoch != got {
				t.Fatalf("result partition epoch %d, the partition's %d", res.PartitionEpoch, got)
			}
			// Copy on write: the new image shares every node and every other topic.
			if r.img.Topic("u") != base.img.Topic("u") {
				t.Error("topic u was copied")
			}
			if reflect.ValueOf(r.img.Nodes).UnsafePointer() != reflect.ValueOf(base.img.Nodes).UnsafePointer() {
				t.Error("the node map was copied")
			}
			if r.img.Topic("t") == base.img.Topic("t") {
				t.Error("topic t was changed in place")
			}
			if o := 1 - ap.Partition; !reflect.DeepEqual(r.img.Topic("t").Partitions[o], base.img.Topic("t").Partitions[o]) {
				t.Errorf("t/%d changed", o)
			}

			// The same command applied again is stale: its partition epoch is the old one.
			before := r.img
			if res := r.apply(tc.cmd); res.Code != int16(errcode.InvalidUpdateVersion) || res.Message == "" {
				t.Fatalf("applied again: %+v, want INVALID_UPDATE_VERSION", res)
			}
			if r.img.Topic("t") != before.Topic("t") {
				t.Fatal("applied again, it changed topic t")
			}
		})
	}
}

func TestAlterPartitionUnchanged(t *testing.T) {
	base := isrCluster(t)
	tp := base.img.Topic("t")
	for _, cmd := range []Command{
		alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{1, 8}),
		alterISR(tp, 0, 0, 0, 2, ISRMember{1, 8}, ISRMember{0, 1}), // another order
		alterISR(tp, 0, 0, 0, 2, ISRMember{1, 2}, ISRMember{0, 1}), // a kept member at an earlier incarnation
		alterISR(tp, 1, 1, 1, 3, ISRMember{0, 1}, ISRMember{2, 3}, ISRMember{1, 8}),
	} {
		r := &runner{t: t, img: base.img, index: base.index}
		wantNoChange(t, r, cmd)
		pe := base.img.Partition("t", cmd.AlterPartition.Partition).PartitionEpoch
		if res := r.apply(cmd); res.PartitionEpoch != pe || res.Message == "" {
			t.Fatalf("%s: result %+v, want no change at partition epoch %d", describe(cmd), res, pe)
		}
		if r.img.Topic("t") != base.img.Topic("t") {
			t.Fatalf("%s copied topic t", describe(cmd))
		}
	}
}

// TestAlterPartitionRejoin follows a node out of an ISR and back: fenced, it cannot rejoin; once
// unfenced it can, at its incarnation; after it registers again, the leader's view of its earlier
// life no longer lets it in.
func TestAlterPartitionRejoin(t *testing.T) {
	r := newCluster(t, 0, 1, 2) // incarnations 1-3
	tp := r.createTopic("t", 1, 3)
	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}})
	checkPartitions(t, r.img, "t", []want{{0, []int32{0, 1}, 0, 1}})
	all := []ISRMember{{0, 1}, {1, 2}, {2, 3}}

	if res := r.apply(alterISR(tp, 0, 0, 0, 1, all...)); res.Code != int16(errcode.IneligibleReplica) {
		t.Fatalf("fenced node rejoining: %+v, want INELIGIBLE_REPLICA", res)
	}
	r.apply(Command{Unfence: &UnfenceNode{ID: 2, Incarnation: 3}})
	if res := r.apply(alterISR(tp, 0, 0, 0, 1, all...)); res.Code != 0 || res.PartitionEpoch != 2 {
		t.Fatalf("unfenced node rejoining: %+v", res)
	}
	checkPartitions(t, r.img, "t", []want{{0, []int32{0, 1, 2}, 0, 2}})

	// Out again, then node 2 restarts (incarnation 10).
	r.apply(alterISR(tp, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{1, 2}))
	if res := r.apply(Command{Register: &RegisterNode{ID: 2}}); res.Incarnation != 10 {
		t.Fatalf("node 2 registered at %d, want 10", res.Incarnation)
	}
	if res := r.apply(alterISR(tp, 0, 0, 0, 3, all...)); res.Code != int16(errcode.IneligibleReplica) {
		t.Fatalf("restarted node rejoining at its earlier incarnation: %+v, want INELIGIBLE_REPLICA", res)
	}
	if res := r.apply(alterISR(tp, 0, 0, 0, 3, ISRMember{0, 1}, ISRMember{1, 2}, ISRMember{2, 10})); res.Code != 0 || res.PartitionEpoch != 4 {
		t.Fatalf("restarted node rejoining at its incarnation: %+v", res)
	}
	checkPartitions(t, r.img, "t", []want{{0, []int32{0, 1, 2}, 0, 4}})
}

// TestFenceLeaderLeavesISR: a fenced leader hands the partition to the first live ISR member in
// replica order and leaves the ISR, unless it is the ISR's last member.
func TestFenceLeaderLeavesISR(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	// a [0 1 2], b [1 2 0], c [2 0 1]; node 1, live, leaves a's ISR; b's shrinks to its leader.
	a := r.createTopic("a", 1, 3)
	b := r.createTopic("b", 1, 3)
	r.createTopic("c", 1, 3)
	r.apply(alterISR(a, 0, 0, 0, 0, ISRMember{0, 1}, ISRMember{2, 3}))
	r.apply(alterISR(b, 0, 1, 0, 0, ISRMember{1, 2}))

	r.apply(Command{Fence: &FenceNode{ID: 0, Incarnation: 1}})
	checkPartitions(t, r.img, "a", []want{{2, []int32{2}, 1, 2}}) // not 1: out of the ISR
	checkPartitions(t, r.img, "b", []want{{1, []int32{1}, 0, 1}})
	checkPartitions(t, r.img, "c", []want{{2, []int32{2, 1}, 0, 1}})

	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}})
	checkPartitions(t, r.img, "a", []want{{NoLeader, []int32{2}, 2, 3}}) // 2 was the last member
	checkPartitions(t, r.img, "b", []want{{1, []int32{1}, 0, 1}})
	checkPartitions(t, r.img, "c", []want{{1, []int32{1}, 1, 2}})

	// A leader whose ISR peers are all fenced (an image no command sequence makes) still leaves
	// the ISR: the partition goes offline on them.
	r = newCluster(t, 0, 1)
	r.createTopic("d", 1, 2) // [0 1]
	img := r.img.Clone()
	img.Nodes[1].Fenced = true
	next, res := Apply(img, img.Index+1, Command{Fence: &FenceNode{ID: 0, Incarnation: 1}})
	if res.Code != 0 || res.Message != "" {
		t.Fatalf("fence: %+v", res)
	}
	checkPartitions(t, next, "d", []want{{NoLeader, []int32{1}, 1, 1}})
}
