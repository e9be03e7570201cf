package offsetslog

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/log/vfs"
)

// A node of a cluster, over a fake metadata store: the test decides who leads what.

const self int32 = 0

func openClustered(t *testing.T, store *clustertest.Store) *cluster.Broker {
	t.Helper()
	b, err := cluster.Open(cluster.Options{NodeID: self, DataDir: "/data", FS: vfs.NewMem(),
		OpenStore: func() (cluster.MetadataStore, error) { return store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startClusteredCoordinator(t *testing.T, b *cluster.Broker) *groups.Coordinator {
	t.Helper()
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	c, err := Start(b, cfg, Options{Logger: b.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = b.Close()
	})
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

func commitCode(t *testing.T, c *groups.Coordinator, group string, offset int64) errcode.Code {
	t.Helper()
	ch := make(chan groups.CommitResponse, 1)
	c.CommitOffsets(groups.CommitRequest{Version: 8, Group: group, Generation: -1, Topics: []groups.CommitTopic{{Topic: "t",
		Partitions: []groups.CommitPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}},
		func(r groups.CommitResponse) { ch <- r })
	select {
	case r := <-ch:
		return r.Topics[0].Partitions[0].ErrorCode
	case <-time.After(wait):
		t.Fatal("timed out waiting for a commit")
		return 0
	}
}

func nodes(ids ...int32) []meta.Node {
	var ns []meta.Node
	for _, id := range ids {
		ns = append(ns, clustertest.Node(id))
	}
	return ns
}

// groupOf returns a group id that lives in offsets partition p of n.
func groupOf(t *testing.T, p, n int32) string {
	t.Helper()
	for i := range 100000 {
		g := "group-" + itoa(i)
		if groups.PartitionOf(g, n) == p {
			return g
		}
	}
	t.Fatalf("no group in partition %d", p)
	return ""
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestClusteredStartWithoutController: the node starts while no controller is elected (Start
// neither blocks nor fails), hosts nothing, and keeps proposing the offsets topic until a
// controller takes it; then it hosts the partitions it leads, and only those.
func TestClusteredStartWithoutController(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, nodes(0, 1, 2)))
	b := openClustered(t, store)
	started := time.Now()
	c := startClusteredCoordinator(t, b)
	if time.Since(started) > 5*time.Second {
		t.Fatalf("Start took %s without a controller", time.Since(started))
	}
	if c.Partitions() != DefaultPartitions || c.Hosted(0) || !c.Ready() {
		t.Fatalf("before the offsets topic exists: %d partitions, hosted(0) %v, ready %v", c.Partitions(), c.Hosted(0), c.Ready())
	}
	if code := commitCode(t, c, "g", 1); code != errcode.NotCoordinator {
		t.Fatalf("commit before the offsets topic exists: %v, want NOT_COORDINATOR", code)
	}
	waitUntil(t, "two proposals of the offsets topic", func() bool { return len(store.Proposals()) >= 2 })
	for _, cmd := range store.Proposals() {
		ct := cmd.CreateTopics
		if ct == nil || len(ct.Topics) != 1 || ct.Topics[0].Name != groups.OffsetsTopic || !ct.Topics[0].Internal ||
			ct.Topics[0].Partitions != DefaultPartitions || ct.Topics[0].ReplicationFactor != 3 ||
			ct.Topics[0].Configs[cluster.ConfigCleanupPolicy] != cluster.PolicyCompact {
			t.Fatalf("proposal %+v, want the offsets topic: internal, compacted, %d partitions, three replicas (one a node)", cmd, DefaultPartitions)
		}
	}

	store.SetController(1)
	c.WantLog() // as FindCoordinator does: no wait for the backoff
	waitUntil(t, "the offsets topic", func() bool { return b.Snapshot().Topics[groups.OffsetsTopic] != nil })
	// The fake places partition p on node p%3: this node leads 0, 3, 6 and 9.
	waitUntil(t, "this node's partitions to load", func() bool { return c.Hosted(0) && c.Hosted(9) && c.Ready() })
	for p := range int32(DefaultPartitions) {
		if c.Hosted(p) != (p%3 == 0) {
			t.Fatalf("partition %d hosted %v", p, c.Hosted(p))
		}
	}
	if code := commitCode(t, c, groupOf(t, 3, DefaultPartitions), 7); code != errcode.None {
		t.Fatalf("commit to a partition this node leads: %v", code)
	}
	if code := commitCode(t, c, groupOf(t, 4, DefaultPartitions), 7); code != errcode.NotCoordinator {
		t.Fatalf("commit to a partition node 1 leads: %v, want NOT_COORDINATOR", code)
	}
}

// TestClusteredTopicCreatedElsewhere: the controller's TOPIC_ALREADY_EXISTS (another node
// created the offsets topic before this node's metadata had it) ends the creation; the topic's
// own partition count places the groups.
func TestClusteredTopicCreatedElsewhere(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, nodes(0, 1)))
	b := openClustered(t, store)
	cfg := groups.DefaultConfig()
	f := startClustered(b, cfg, Options{})
	c := f.c
	t.Cleanup(func() {
		c.Close()
		_ = b.Close()
	})
	waitUntil(t, "a proposal", func() bool { return len(store.Proposals()) >= 1 })
	parts := make([]meta.Partition, 4)
	for p := range parts {
		parts[p] = clustertest.Led(int32(p % 2))
	}
	// The controller has the topic; this node has not applied it yet.
	store.Prepare(func(img *meta.Image) {
		img.Topics[groups.OffsetsTopic] = clustertest.Topic(groups.OffsetsTopic, 9, true, parts...)
	})
	store.SetController(1)
	c.WantLog()
	select {
	case <-f.created:
	case <-time.After(wait):
		t.Fatal("the creation did not end with TOPIC_ALREADY_EXISTS")
	}
	last := store.Proposals()[len(store.Proposals())-1]
	if last.CreateTopics == nil || last.CreateTopics.Topics[0].Name != groups.OffsetsTopic {
		t.Fatalf("last proposal %+v", last)
	}
	// The refused proposal's entry brings this node's metadata up to the controller's.
	waitUntil(t, "the partitions to follow the metadata", func() bool { return c.Partitions() == 4 && c.Hosted(2) && c.Ready() })
	if !c.Hosted(0) || c.Hosted(1) || c.Hosted(3) {
		t.Fatalf("hosted 0..3: %v %v %v %v, want this node's even partitions", c.Hosted(0), c.Hosted(1), c.Hosted(2), c.Hosted(3))
	}
}

// TestClusteredLeadershipMoves: an offsets partition whose leadership comes to this node is
// loaded with the offsets committed while this node led it before; one taken away answers
// NOT_COORDINATOR, as does one whose leader is fenced (no leader).
func TestClusteredLeadershipMoves(t *testing.T) {
	const partitions = 3
	lead := func(leaders ...int32) *meta.Topic {
		parts := make([]meta.Partition, partitions)
		for p, l := range leaders {
			parts[p] = meta.Partition{Replicas: []int32{self}, ISR: []int32{self}, Leader: l, LeaderEpoch: int32(p)}
			if l != self {
				parts[p].Replicas = []int32{self, l}
			}
		}
		return clustertest.Topic(groups.OffsetsTopic, 7, true, parts...)
	}
	store := clustertest.New(clustertest.Image(1, nodes(0, 1), lead(self, 1, 1)))
	b := openClustered(t, store)
	c := startClusteredCoordinator(t, b)
	g1 := groupOf(t, 1, partitions)
	waitUntil(t, "partition 0 to load", func() bool { return c.Hosted(0) && c.Ready() })
	if code := commitCode(t, c, g1, 5); code != errcode.NotCoordinator {
		t.Fatalf("commit to partition 1 (node 1 leads it): %v", code)
	}

	set := func(leaders ...int32) {
		store.Update(func(img *meta.Image) { img.Topics[groups.OffsetsTopic] = lead(leaders...) })
	}
	set(self, self, 1)
	waitUntil(t, "partition 1 to load", func() bool { return c.Hosted(1) && c.Ready() })
	if code := commitCode(t, c, g1, 5); code != errcode.None {
		t.Fatalf("commit once this node leads partition 1: %v", code)
	}
	set(self, 1, 1)
	waitUntil(t, "partition 1 to be dropped", func() bool { return !c.Hosted(1) })
	if code := commitCode(t, c, g1, 6); code != errcode.NotCoordinator {
		t.Fatalf("commit after partition 1 moved away: %v, want NOT_COORDINATOR", code)
	}
	set(self, self, 1)
	waitUntil(t, "partition 1 to load again", func() bool { return c.Hosted(1) && c.Ready() })
	if got := fetch(t, c, g1, "t", 0); got.Offset != 5 {
		t.Fatalf("partition 1 hosted again: offset %d, want 5 (committed before it moved)", got.Offset)
	}
	set(meta.NoLeader, self, 1) // this node is fenced for partition 0: no leader
	waitUntil(t, "partition 0 to be dropped", func() bool { return !c.Hosted(0) })
	if code := commitCode(t, c, groupOf(t, 0, partitions), 1); code != errcode.NotCoordinator {
		t.Fatalf("commit to a partition without a leader: %v, want NOT_COORDINATOR", code)
	}
}
