package meta

import (
	"reflect"
	"testing"
)

func TestImageAccessors(t *testing.T) {
	r := newCluster(t, 4, 1, 3)
	r.createTopic("a", 2, 1)
	r.apply(Command{Fence: &FenceNode{ID: 3, Incarnation: 3}})
	img := r.img

	if n := img.Node(1); n == nil || n.ID != 1 || n.Incarnation != 2 {
		t.Fatalf("Node(1) = %+v", n)
	}
	if img.Node(2) != nil {
		t.Fatal("Node(2) of an unregistered node is not nil")
	}
	if !img.Live(1) || img.Live(3) || img.Live(2) {
		t.Fatal("Live: want 1 live, 3 fenced, 2 unknown")
	}
	var live []int32
	for _, n := range img.LiveNodes() {
		live = append(live, n.ID)
	}
	if !reflect.DeepEqual(live, []int32{1, 4}) {
		t.Fatalf("LiveNodes ids %v, want [1 4]", live)
	}
	if tp := img.Topic("a"); tp == nil || tp.Name != "a" || img.Topic("b") != nil {
		t.Fatalf("Topic: %+v", tp)
	}
	if p := img.Partition("a", 1); p == nil || p != &img.Topic("a").Partitions[1] {
		t.Fatalf("Partition(a, 1) = %+v", p)
	}
	for _, p := range []int32{-1, 2} {
		if img.Partition("a", p) != nil {
			t.Errorf("Partition(a, %d) is not nil", p)
		}
	}
	if img.Partition("b", 0) != nil {
		t.Error("Partition(b, 0) is not nil")
	}
	if n := img.PartitionCount(); n != 2 {
		t.Errorf("PartitionCount %d", n)
	}

	var none *Image
	if none.Topic("a") != nil || none.Node(1) != nil || none.LiveNodes() != nil || none.Partition("a", 0) != nil || none.PartitionCount() != 0 || none.Clone() != nil {
		t.Error("a nil image is not empty")
	}
	empty := Empty()
	if empty.ClusterID != "" || len(empty.Nodes) != 0 || len(empty.Topics) != 0 || empty.LiveNodes() != nil {
		t.Errorf("Empty() = %+v", empty)
	}
}

func TestCloneSharesNothing(t *testing.T) {
	r := newCluster(t, 0, 1)
	r.apply(Command{AlterConfigs: &AlterConfigs{}}) // refused; an entry all the same
	r.createTopic("a", 2, 2)
	r.apply(Command{AlterConfigs: &AlterConfigs{Name: "a", ID: r.img.Topic("a").ID, Configs: map[string]string{"k": "v"}}})
	img := r.img
	c := img.Clone()
	if !reflect.DeepEqual(c, img) {
		t.Fatal("the clone differs")
	}
	c.Nodes[0].Fenced = true
	c.NodeIDs[0] = 9
	c.Names[0] = "x"
	ct := c.Topics["a"]
	ct.Configs["k"] = "w"
	ct.Partitions[0].ISR[0] = 7
	ct.Partitions[0].Replicas[0] = 7
	ct.Partitions[1].Leader = 7
	if img.Nodes[0].Fenced || img.NodeIDs[0] != 0 || img.Names[0] != "a" {
		t.Fatal("the clone shares the nodes or the sorted keys")
	}
	tp := img.Topics["a"]
	if tp.Configs["k"] != "v" || tp.Partitions[0].ISR[0] == 7 || tp.Partitions[0].Replicas[0] == 7 || tp.Partitions[1].Leader == 7 {
		t.Fatal("the clone shares a topic's configs or partitions")
	}
}
