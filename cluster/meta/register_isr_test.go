package meta

import (
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

// A node that registers anew has restarted, and its log may have lost an unsynced tail or the
// whole disk: it leaves the ISR of every replicated partition it shares with other members, and
// rejoins only when the leader adds it back at its new incarnation. These tests follow each case;
// the runner also checks the rule after every registration of the random sequences.

// TestRegisterFollowerLeavesISR: a restarted follower leaves the ISR; the leader and its leader
// epoch stay, the partition epoch is bumped, and the leader adds it back at its new incarnation
// only.
func TestRegisterFollowerLeavesISR(t *testing.T) {
	r := newCluster(t, 0, 1, 2)   // incarnations 1-3
	r.createTopic("c", 1, 1)      // index 4: [0]
	a := r.createTopic("a", 1, 3) // index 5: [1 2 0], led by 1
	checkPartitions(t, r.img, "a", []want{{1, []int32{1, 2, 0}, 0, 0}})
	before := r.img

	if res := r.apply(Command{Register: &RegisterNode{ID: 2}}); res.Code != 0 || res.Message != "" || res.Incarnation != 6 {
		t.Fatalf("node 2 registering again: %+v, want incarnation 6", res)
	}
	checkPartitions(t, r.img, "a", []want{{1, []int32{1, 0}, 0, 1}})
	if r.img.Topic("c") != before.Topic("c") {
		t.Error("topic c, not on node 2, was copied")
	}

	// The leader's view of node 2's earlier life does not let it back in; its new one does.
	if res := r.apply(alterISR(a, 0, 1, 0, 1, ISRMember{1, 2}, ISRMember{2, 3}, ISRMember{0, 1})); res.Code != int16(errcode.IneligibleReplica) {
		t.Fatalf("adding node 2 at its earlier incarnation: %+v, want INELIGIBLE_REPLICA", res)
	}
	if res := r.apply(alterISR(a, 0, 1, 0, 1, ISRMember{1, 2}, ISRMember{2, 6}, ISRMember{0, 1})); res.Code != 0 || res.PartitionEpoch != 2 {
		t.Fatalf("adding node 2 at its new incarnation: %+v", res)
	}
	checkPartitions(t, r.img, "a", []want{{1, []int32{1, 2, 0}, 0, 2}})
}

// TestRegisterLeaderHandsOn: a restarted leader leaves the ISR and its partition goes to the
// first other ISR member in replica order, in a new leader epoch; the deposed leader's view is
// fenced, and the new leader can add it back.
func TestRegisterLeaderHandsOn(t *testing.T) {
	r := newCluster(t, 0, 1, 2, 3) // incarnations 1-4
	a := r.createTopic("a", 1, 4)  // index 5: [0 1 2 3], led by 0
	r.createTopic("b", 1, 2)       // index 6: [1 2]
	// Node 1, next in replica order, leaves a's ISR.
	if res := r.apply(alterISR(a, 0, 0, 0, 0, ISRMember{0, 1}, ISRMember{2, 3}, ISRMember{3, 4})); res.Code != 0 || res.PartitionEpoch != 1 {
		t.Fatalf("shrinking a/0: %+v", res)
	}
	before := r.img

	if res := r.apply(Command{Register: &RegisterNode{ID: 0}}); res.Code != 0 || res.Incarnation != 8 {
		t.Fatalf("node 0 registering again: %+v, want incarnation 8", res)
	}
	checkPartitions(t, r.img, "a", []want{{2, []int32{2, 3}, 1, 2}}) // 2, not 1: 1 is out of the ISR
	if r.img.Topic("b") != before.Topic("b") {
		t.Error("topic b, not on node 0, was copied")
	}

	// Node 0, still holding its earlier view, is no longer the leader.
	if res := r.apply(alterISR(a, 0, 0, 0, 1, ISRMember{0, 8}, ISRMember{2, 3}, ISRMember{3, 4})); res.Code != int16(errcode.FencedLeaderEpoch) {
		t.Fatalf("the deposed leader's AlterPartition: %+v, want FENCED_LEADER_EPOCH", res)
	}
	// The new leader adds it back once it has caught up; the leadership stays with 2.
	if res := r.apply(alterISR(a, 0, 2, 1, 2, ISRMember{0, 8}, ISRMember{2, 3}, ISRMember{3, 4})); res.Code != 0 || res.PartitionEpoch != 3 {
		t.Fatalf("node 2 adding node 0 back: %+v", res)
	}
	checkPartitions(t, r.img, "a", []want{{2, []int32{0, 2, 3}, 1, 3}})
}

// TestRegisterLastISRMemberStays: where the restarted node is the last ISR member of a
// replicated partition no other replica is known to hold what was committed, so it stays and
// leads in a new leader epoch; in the same registration it leaves the ISRs it shares.
func TestRegisterLastISRMemberStays(t *testing.T) {
	r := newCluster(t, 0, 1, 2)   // incarnations 1-3
	a := r.createTopic("a", 2, 3) // index 4: a/0 [0 1 2] led by 0, a/1 [1 2 0] led by 1
	if res := r.apply(alterISR(a, 0, 0, 0, 0, ISRMember{0, 1})); res.Code != 0 || res.PartitionEpoch != 1 {
		t.Fatalf("shrinking a/0 to its leader: %+v", res)
	}

	if res := r.apply(Command{Register: &RegisterNode{ID: 0}}); res.Code != 0 || res.Incarnation != 6 {
		t.Fatalf("node 0 registering again: %+v, want incarnation 6", res)
	}
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 1, 2}, {1, []int32{1, 2}, 0, 1}})

	// It leads in its new life: its AlterPartition names its new incarnation and leader epoch.
	if res := r.apply(alterISR(a, 0, 0, 1, 2, ISRMember{0, 6}, ISRMember{1, 2})); res.Code != 0 || res.PartitionEpoch != 3 {
		t.Fatalf("node 0 adding node 1 to a/0: %+v", res)
	}
	checkPartitions(t, r.img, "a", []want{{0, []int32{0, 1}, 1, 3}, {1, []int32{1, 2}, 0, 1}})
}

// TestRegisterSingleReplica: a partition of one replica is led by it whatever happens; a
// restart only bumps its leader epoch, or gives the leadership back after a fence.
func TestRegisterSingleReplica(t *testing.T) {
	r := newCluster(t, 0, 1) // incarnations 1-2
	r.createTopic("a", 2, 1) // index 3: a/0 [0], a/1 [1]

	r.apply(Command{Register: &RegisterNode{ID: 0}}) // index 4
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 1, 1}, {1, []int32{1}, 0, 0}})

	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 1, 1}, {NoLeader, []int32{1}, 1, 1}})
	r.apply(Command{Register: &RegisterNode{ID: 1}})
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 1, 1}, {1, []int32{1}, 2, 2}})
}

// TestRegisterFencedNode: a fenced node left every ISR it was not the last member of, so when it
// restarts there is nothing to leave; it takes back the partitions it was the last member of.
func TestRegisterFencedNode(t *testing.T) {
	r := newCluster(t, 0, 1, 2)   // incarnations 1-3
	a := r.createTopic("a", 1, 3) // index 4: [0 1 2]
	r.createTopic("b", 1, 2)      // index 5: [1 2]
	r.createTopic("s", 1, 1)      // index 6: [2]
	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}})
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 0, 2}})
	checkPartitions(t, r.img, "b", []want{{NoLeader, []int32{2}, 2, 2}}) // 1 handed it to 2, then 2 was fenced
	checkPartitions(t, r.img, "s", []want{{NoLeader, []int32{2}, 1, 1}})

	// Node 2 was the last member of b's ISR and s's: it takes both back.
	before := r.img
	if res := r.apply(Command{Register: &RegisterNode{ID: 2}}); res.Code != 0 || res.Incarnation != 9 || r.img.Node(2).Fenced {
		t.Fatalf("node 2 registering again: %+v, node %+v", res, r.img.Node(2))
	}
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 0, 2}})
	checkPartitions(t, r.img, "b", []want{{2, []int32{2}, 3, 3}})
	checkPartitions(t, r.img, "s", []want{{2, []int32{2}, 2, 2}})
	if r.img.Topic("a") != before.Topic("a") {
		t.Error("topic a, whose ISR does not hold node 2, was copied")
	}

	// Node 1 is in no ISR: its restart changes no partition.
	before = r.img
	if res := r.apply(Command{Register: &RegisterNode{ID: 1}}); res.Code != 0 || res.Incarnation != 10 || r.img.Node(1).Fenced {
		t.Fatalf("node 1 registering again: %+v, node %+v", res, r.img.Node(1))
	}
	for _, name := range r.img.Names {
		if r.img.Topic(name) != before.Topic(name) {
			t.Errorf("topic %q was copied", name)
		}
	}
	// The leader adds it back at its new incarnation.
	if res := r.apply(alterISR(a, 0, 0, 0, 2, ISRMember{0, 1}, ISRMember{1, 10})); res.Code != 0 || res.PartitionEpoch != 3 {
		t.Fatalf("node 0 adding node 1 back: %+v", res)
	}
	checkPartitions(t, r.img, "a", []want{{0, []int32{0, 1}, 0, 3}})
}

// TestRegisterLeaderWithoutLivePeers: a restarted leader whose ISR peers are all fenced (an
// image no command sequence makes: a fenced node stays only in ISRs it is the last member of)
// still leaves the ISR, as a fenced one does, and the partition goes offline on them.
func TestRegisterLeaderWithoutLivePeers(t *testing.T) {
	r := newCluster(t, 0, 1)
	r.createTopic("d", 1, 2) // index 3: [0 1]
	img := r.img.Clone()
	img.Nodes[1].Fenced = true
	next, res := Apply(img, img.Index+1, Command{Register: &RegisterNode{ID: 0}})
	if res.Code != 0 || res.Message != "" || res.Incarnation != 4 {
		t.Fatalf("register: %+v", res)
	}
	checkPartitions(t, next, "d", []want{{NoLeader, []int32{1}, 1, 1}})
	if err := checkRegistration(img, next, 0); err != nil {
		t.Fatal(err)
	}
}
