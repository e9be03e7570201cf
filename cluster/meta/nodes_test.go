package meta

import (
	"reflect"
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

// want is a partition's expected leader, ISR and epochs.
type want struct {
	leader         int32
	isr            []int32
	leaderEpoch    int32
	partitionEpoch int32
}

func checkPartitions(t *testing.T, img *Image, topic string, wants []want) {
	t.Helper()
	tp := img.Topic(topic)
	if tp == nil || len(tp.Partitions) != len(wants) {
		t.Fatalf("topic %q: %+v, want %d partitions", topic, tp, len(wants))
	}
	for i, w := range wants {
		p := tp.Partitions[i]
		if p.Leader != w.leader || !reflect.DeepEqual(p.ISR, w.isr) || p.LeaderEpoch != w.leaderEpoch || p.PartitionEpoch != w.partitionEpoch {
			t.Errorf("%s/%d: leader %d ISR %v epochs %d/%d; want leader %d ISR %v epochs %d/%d", topic, i,
				p.Leader, p.ISR, p.LeaderEpoch, p.PartitionEpoch, w.leader, w.isr, w.leaderEpoch, w.partitionEpoch)
		}
	}
}

func TestRegister(t *testing.T) {
	r := newRunner(t)
	res := r.apply(Command{Register: &RegisterNode{ID: 2, Binary: Endpoint{Host: "a", Port: 1}, Kafka: Endpoint{Host: "a", Port: 9092}}})
	want := &Node{ID: 2, Incarnation: 1, Binary: Endpoint{Host: "a", Port: 1}, Kafka: Endpoint{Host: "a", Port: 9092}}
	if res.Code != 0 || res.Incarnation != 1 || !reflect.DeepEqual(r.img.Node(2), want) {
		t.Fatalf("register: result %+v node %+v, want %+v", res, r.img.Node(2), want)
	}
	r.apply(Command{Register: &RegisterNode{ID: 0}})
	r.apply(Command{AllocProducerIDs: &AllocProducerIDs{Count: 1}})
	res = r.apply(Command{Register: &RegisterNode{ID: 2, Binary: Endpoint{Host: "b", Port: 2}}})
	want = &Node{ID: 2, Incarnation: 4, Binary: Endpoint{Host: "b", Port: 2}}
	if res.Incarnation != 4 || !reflect.DeepEqual(r.img.Node(2), want) {
		t.Fatalf("re-register: result %+v node %+v, want %+v", res, r.img.Node(2), want)
	}
	if !reflect.DeepEqual(r.img.NodeIDs, []int32{0, 2}) {
		t.Fatalf("node ids %v", r.img.NodeIDs)
	}

	if res := r.apply(Command{Register: &RegisterNode{ID: -1}}); res.Code != int16(errcode.InvalidRequest) || r.img.Node(-1) != nil {
		t.Fatalf("negative id: %+v", res)
	}

	// The same entry applied again changes nothing.
	img, res := Apply(r.img, 4, Command{Register: &RegisterNode{ID: 2, Binary: Endpoint{Host: "c"}}})
	if res.Code != 0 || res.Message == "" || res.Incarnation != 4 || img.Node(2) != r.img.Node(2) {
		t.Fatalf("replayed register: result %+v node %+v", res, img.Node(2))
	}
}

func TestRegisterTakesLeadership(t *testing.T) {
	r := newCluster(t, 0, 1)
	r.createTopic("a", 2, 1) // a/0 on 0, a/1 on 1
	r.createTopic("b", 2, 2) // b/0 [0 1], b/1 [1 0]
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 0, 0}, {1, []int32{1}, 0, 0}})

	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 0, 0}, {NoLeader, []int32{1}, 1, 1}})
	checkPartitions(t, r.img, "b", []want{{0, []int32{0}, 0, 1}, {0, []int32{0}, 1, 1}})

	// Node 1 restarts: it takes a/1 back (its ISR holds it), not b/1 (it left that ISR).
	res := r.apply(Command{Register: &RegisterNode{ID: 1}})
	if r.img.Node(1).Fenced || r.img.Node(1).Incarnation != res.Incarnation {
		t.Fatalf("node 1 after registering: %+v", r.img.Node(1))
	}
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 0, 0}, {1, []int32{1}, 2, 2}})
	checkPartitions(t, r.img, "b", []want{{0, []int32{0}, 0, 1}, {0, []int32{0}, 1, 1}})

	// Node 0 restarts while leading: every partition it leads gets a new leader epoch.
	r.apply(Command{Register: &RegisterNode{ID: 0}})
	checkPartitions(t, r.img, "a", []want{{0, []int32{0}, 1, 1}, {1, []int32{1}, 2, 2}})
	checkPartitions(t, r.img, "b", []want{{0, []int32{0}, 1, 2}, {0, []int32{0}, 2, 2}})
}

func TestFence(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	r.createTopic("r3", 3, 3) // [0 1 2], [1 2 0], [2 0 1]
	r.createTopic("r1", 3, 1) // start 3: [0], [1], [2]

	for _, tc := range []struct {
		name string
		cmd  Command
	}{
		{"unknown node", Command{Fence: &FenceNode{ID: 7, Incarnation: 1}}},
		{"stale incarnation", Command{Fence: &FenceNode{ID: 0, Incarnation: 2}}},
		{"newer incarnation", Command{Fence: &FenceNode{ID: 0, Incarnation: 9}}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantNoChange(t, r, tc.cmd) })
	}

	if res := r.apply(Command{Fence: &FenceNode{ID: 0, Incarnation: 1}}); res.Code != 0 || res.Message != "" {
		t.Fatalf("fence 0: %+v", res)
	}
	if !r.img.Node(0).Fenced {
		t.Fatal("node 0 is not fenced")
	}
	// Leadership of r3/0 passes to the next live ISR member in replica order; node 0 leaves every
	// ISR it is not alone in; r1/0 has no one left.
	checkPartitions(t, r.img, "r3", []want{{1, []int32{1, 2}, 1, 1}, {1, []int32{1, 2}, 0, 1}, {2, []int32{2, 1}, 0, 1}})
	checkPartitions(t, r.img, "r1", []want{{NoLeader, []int32{0}, 1, 1}, {1, []int32{1}, 0, 0}, {2, []int32{2}, 0, 0}})
	t.Run("already fenced", func(t *testing.T) { wantNoChange(t, r, Command{Fence: &FenceNode{ID: 0, Incarnation: 1}}) })

	// Fencing 1: r3/1, led by 1 with replicas [1 2 0], goes to 2 (0 is fenced and out).
	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	checkPartitions(t, r.img, "r3", []want{{2, []int32{2}, 2, 2}, {2, []int32{2}, 1, 2}, {2, []int32{2}, 0, 2}})
	checkPartitions(t, r.img, "r1", []want{{NoLeader, []int32{0}, 1, 1}, {NoLeader, []int32{1}, 1, 1}, {2, []int32{2}, 0, 0}})

	// Fencing the last: every partition is offline, each ISR keeps its last member.
	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}})
	checkPartitions(t, r.img, "r3", []want{{NoLeader, []int32{2}, 3, 3}, {NoLeader, []int32{2}, 2, 3}, {NoLeader, []int32{2}, 1, 3}})
	checkPartitions(t, r.img, "r1", []want{{NoLeader, []int32{0}, 1, 1}, {NoLeader, []int32{1}, 1, 1}, {NoLeader, []int32{2}, 1, 1}})
	if len(r.img.LiveNodes()) != 0 {
		t.Fatalf("live nodes %v", r.img.LiveNodes())
	}
}

func TestUnfence(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	r.createTopic("r3", 3, 3)
	r.createTopic("r1", 3, 1)
	for _, id := range []int32{0, 1, 2} {
		r.apply(Command{Fence: &FenceNode{ID: id, Incarnation: uint64(id) + 1}})
	}

	for _, tc := range []struct {
		name string
		cmd  Command
	}{
		{"unknown node", Command{Unfence: &UnfenceNode{ID: 7, Incarnation: 1}}},
		{"stale incarnation", Command{Unfence: &UnfenceNode{ID: 0, Incarnation: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantNoChange(t, r, tc.cmd) })
	}

	// Node 0 comes back: it leads r1/0 again, but left the r3 ISRs and does not rejoin them.
	if res := r.apply(Command{Unfence: &UnfenceNode{ID: 0, Incarnation: 1}}); res.Code != 0 || res.Message != "" {
		t.Fatalf("unfence 0: %+v", res)
	}
	if r.img.Node(0).Fenced {
		t.Fatal("node 0 is still fenced")
	}
	checkPartitions(t, r.img, "r1", []want{{0, []int32{0}, 2, 2}, {NoLeader, []int32{1}, 1, 1}, {NoLeader, []int32{2}, 1, 1}})
	checkPartitions(t, r.img, "r3", []want{{NoLeader, []int32{2}, 3, 3}, {NoLeader, []int32{2}, 2, 3}, {NoLeader, []int32{2}, 1, 3}})
	t.Run("not fenced", func(t *testing.T) { wantNoChange(t, r, Command{Unfence: &UnfenceNode{ID: 0, Incarnation: 1}}) })

	r.apply(Command{Unfence: &UnfenceNode{ID: 2, Incarnation: 3}})
	checkPartitions(t, r.img, "r3", []want{{2, []int32{2}, 4, 4}, {2, []int32{2}, 3, 4}, {2, []int32{2}, 2, 4}})
	checkPartitions(t, r.img, "r1", []want{{0, []int32{0}, 2, 2}, {NoLeader, []int32{1}, 1, 1}, {2, []int32{2}, 2, 2}})

	// A heartbeat of node 1's earlier life, after it registered again, changes nothing.
	r.apply(Command{Register: &RegisterNode{ID: 1}})
	checkPartitions(t, r.img, "r1", []want{{0, []int32{0}, 2, 2}, {1, []int32{1}, 2, 2}, {2, []int32{2}, 2, 2}})
	t.Run("earlier life", func(t *testing.T) { wantNoChange(t, r, Command{Unfence: &UnfenceNode{ID: 1, Incarnation: 2}}) })
}
