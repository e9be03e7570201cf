package cluster_test

import (
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestOnMetadata: a watcher sees the current snapshot when it registers, then every snapshot
// the node publishes, in order, with this node's replicas of the partitions it hosts.
func TestOnMetadata(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, []meta.Node{clustertest.Node(0), clustertest.Node(1)},
		clustertest.Topic("a", 1, false, clustertest.Led(0), clustertest.Led(1))))
	b, err := cluster.Open(cluster.Options{NodeID: 0, DataDir: "/data", FS: vfs.NewMem(), OpenStore: func() (cluster.MetadataStore, error) { return store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var seen []*cluster.Snapshot
	b.OnMetadata(func(s *cluster.Snapshot) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	})
	waitSeen := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d snapshots seen, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
		}
	}
	// One image at a time: the node applies the latest image, skipping any it had no time for.
	store.Update(func(img *meta.Image) {
		img.Topics["b"] = clustertest.Topic("b", 2, false, clustertest.Led(1))
	})
	waitSeen(2)
	store.Update(func(img *meta.Image) {
		p := img.Topics["a"].Partitions
		p[1] = meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: meta.NoLeader, LeaderEpoch: 1}
	})
	waitSeen(3)
	mu.Lock()
	defer mu.Unlock()
	for i, s := range seen {
		if s.Index != uint64(i+1) {
			t.Fatalf("snapshot %d has index %d, want %d", i, s.Index, i+1)
		}
	}
	if a := seen[0].Topics["a"]; a.Replicas[0] == nil || a.Replicas[1] != nil || b.Route("a", 0).Replica != a.Replicas[0] {
		t.Fatalf("the first snapshot's replicas: %v", a.Replicas)
	}
	if seen[1].Topics["b"] == nil || seen[2].Topics["a"].Partitions[1].Leader != meta.NoLeader {
		t.Fatal("the watcher missed a change")
	}
	if s := seen[2]; s.Node(1) == nil || s.Node(1).Kafka.Port != 9101 {
		t.Fatalf("nodes: %+v", s.Nodes)
	}
}

// TestOnMetadataSingleNode: on a single node the watcher runs once, with the current snapshot.
func TestOnMetadataSingleNode(t *testing.T) {
	b, err := cluster.Open(cluster.Options{DataDir: "/data", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	calls := 0
	b.OnMetadata(func(*cluster.Snapshot) { calls++ })
	if err := b.CreateTopic(cluster.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("%d calls, want 1", calls)
	}
}
