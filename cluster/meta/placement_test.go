package meta

import (
	"fmt"
	"reflect"
	"testing"
)

func TestPlace(t *testing.T) {
	got := place([]int32{3, 5, 8}, 2, 4, 2)
	want := []Partition{
		{Replicas: []int32{8, 3}, ISR: []int32{8, 3}, Leader: 8},
		{Replicas: []int32{3, 5}, ISR: []int32{3, 5}, Leader: 3},
		{Replicas: []int32{5, 8}, ISR: []int32{5, 8}, Leader: 5},
		{Replicas: []int32{8, 3}, ISR: []int32{8, 3}, Leader: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("place: %+v", got)
	}
	got[0].ISR[0] = 99
	if got[0].Replicas[0] != 8 {
		t.Fatal("replicas and ISR share an array")
	}
}

// leaders counts the partitions each node leads.
func leaders(img *Image) map[int32]int {
	counts := map[int32]int{}
	for _, name := range img.Names {
		for _, p := range img.Topics[name].Partitions {
			counts[p.Leader]++
		}
	}
	return counts
}

func TestPlacementSpreadsLeaders(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	r.createTopic("six", 6, 1)
	if got := leaders(r.img); !reflect.DeepEqual(got, map[int32]int{0: 2, 1: 2, 2: 2}) {
		t.Fatalf("6 partitions on 3 nodes: leaders %v", got)
	}

	r = newCluster(t, 0, 1, 2)
	for i := range 300 {
		r.createTopic(fmt.Sprintf("t%03d", i), 1, 1)
	}
	if got := leaders(r.img); !reflect.DeepEqual(got, map[int32]int{0: 100, 1: 100, 2: 100}) {
		t.Fatalf("300 one-partition topics on 3 nodes: leaders %v", got)
	}

	// In one command too.
	r = newCluster(t, 0, 1, 2)
	var cmd CreateTopics
	for i := range 300 {
		cmd.Topics = append(cmd.Topics, NewTopic{Name: fmt.Sprintf("t%03d", i), Partitions: 1, ReplicationFactor: 3})
	}
	r.apply(Command{CreateTopics: &cmd})
	if got := leaders(r.img); !reflect.DeepEqual(got, map[int32]int{0: 100, 1: 100, 2: 100}) {
		t.Fatalf("300 one-partition topics in one command: leaders %v", got)
	}
}

func TestPlacementSkipsFencedNodes(t *testing.T) {
	r := newCluster(t, 0, 1, 2, 3)
	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	tp := r.createTopic("a", 6, 2)
	for i, p := range tp.Partitions {
		for _, id := range p.Replicas {
			if id == 1 {
				t.Fatalf("partition %d placed on fenced node 1: %v", i, p.Replicas)
			}
		}
	}
	if got := leaders(r.img); !reflect.DeepEqual(got, map[int32]int{0: 2, 2: 2, 3: 2}) {
		t.Fatalf("leaders %v", got)
	}
}
