package node_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

const wait = 30 * time.Second

// liveNodes counts the unfenced, registered nodes node id's snapshot lists.
func liveNodes(c *nodetest.Cluster, id int32) int {
	n := c.Node(id)
	if n == nil {
		return -1
	}
	return len(n.Broker.Snapshot().LiveNodes())
}

func waitRegistered(t testing.TB, c *nodetest.Cluster, want int) {
	t.Helper()
	c.Eventually(wait, "every running node to list every node as live", func() bool {
		for _, id := range c.Running() {
			if liveNodes(c, id) != want {
				return false
			}
		}
		return true
	})
}

func createTopic(t *testing.T, c *nodetest.Cluster, via int32, name string, partitions int32) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := c.Node(via).Broker.CreateTopic(cluster.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: rfOf(name)}, false)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating %s through node %d: %v", name, via, err)
		}
		time.Sleep(50 * time.Millisecond) // a retriable error while a controller is elected
	}
}

// leadersOf returns topic's partition leaders as node id's snapshot has them, nil if it has no
// such topic.
func leadersOf(c *nodetest.Cluster, id int32, topic string) []int32 {
	n := c.Node(id)
	if n == nil {
		return nil
	}
	t := n.Broker.Snapshot().Topics[topic]
	if t == nil {
		return nil
	}
	var ls []int32
	for _, p := range t.Partitions {
		ls = append(ls, p.Leader)
	}
	return ls
}

func TestClusterElectsOneControllerAndRegistersEveryNode(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	ctrl := c.Controller(wait)
	waitRegistered(t, c, 3)
	id := c.Node(0).Broker.ClusterID()
	if id == "" {
		t.Fatal("no cluster id")
	}
	for _, n := range c.Running() {
		if got := c.Node(n).Broker.ClusterID(); got != id {
			t.Fatalf("node %d has cluster id %q, node 0 %q", n, got, id)
		}
		if got := c.Node(n).Broker.ControllerID(); got != ctrl {
			t.Fatalf("node %d names controller %d, not %d", n, got, ctrl)
		}
	}
}

func TestClusterSpreadsPartitionsAndHostsOnlyItsOwn(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	c.Controller(wait)
	waitRegistered(t, c, 3)
	createTopic(t, c, 1, "orders", 6)
	c.Eventually(wait, "every node to see the topic", func() bool {
		for _, id := range c.Running() {
			if len(leadersOf(c, id, "orders")) != 6 {
				return false
			}
		}
		return true
	})
	count := map[int32]int{}
	for p, l := range leadersOf(c, 0, "orders") {
		count[l]++
		for _, id := range c.Running() {
			if got := leadersOf(c, id, "orders")[p]; got != l {
				t.Fatalf("partition %d: node %d says leader %d, node 0 says %d", p, id, got, l)
			}
		}
	}
	for id := range int32(3) {
		if count[id] != 2 {
			t.Fatalf("leaders per node %v, want 2 each", count)
		}
	}
	// Each node hosts exactly the partitions it leads, and routes the rest to their leader.
	c.Eventually(wait, "every node to open its partitions", func() bool {
		for _, id := range c.Running() {
			tp := c.Node(id).Broker.Snapshot().Topics["orders"]
			for p := range tp.Partitions {
				if (tp.Partitions[p].Leader == id) != (tp.Replicas[p] != nil) {
					return false
				}
			}
		}
		return true
	})
	for _, id := range c.Running() {
		for p, l := range leadersOf(c, id, "orders") {
			rt := c.Node(id).Broker.Route("orders", int32(p))
			if l == id && rt.Replica == nil || l != id && (rt.Replica != nil || rt.Leader != l) {
				t.Fatalf("node %d routes partition %d (leader %d) as %+v", id, p, l, rt)
			}
		}
	}
}

func TestClusterControllerFailoverAndRestart(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	old := c.Controller(wait)
	waitRegistered(t, c, 3)
	createTopic(t, c, old, "before", 3)
	c.StopNode(old)
	start := time.Now()
	next := c.Controller(wait)
	if next == old {
		t.Fatalf("controller still %d after it stopped", old)
	}
	t.Logf("new controller %d elected %s after the old one stopped", next, time.Since(start))
	// Topics can still be created, from either survivor.
	for _, id := range c.Running() {
		createTopic(t, c, id, "during-"+string(rune('a'+id)), 3)
	}
	// The stopped node is fenced: the partitions it led have no leader.
	c.Eventually(wait, "the stopped node's partitions to go offline", func() bool {
		ls := leadersOf(c, next, "before")
		for p, l := range ls {
			if l == old {
				return false
			}
			if l == meta.NoLeader && c.Node(next).Broker.Route("before", int32(p)).Replica != nil {
				return false
			}
		}
		return len(ls) == 3
	})
	c.StartNode(old)
	waitRegistered(t, c, 3)
	c.Eventually(wait, "the restarted node to lead its partitions again and know the new topics", func() bool {
		for _, id := range c.Running() {
			for _, l := range leadersOf(c, id, "before") {
				if l == meta.NoLeader {
					return false
				}
			}
			for _, s := range c.Running() {
				if s != old && leadersOf(c, id, "during-"+string(rune('a'+s))) == nil {
					return false
				}
			}
		}
		return true
	})
}

func TestClusterNodeCutOffIsFencedAndReturns(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	ctrl := c.Controller(wait)
	waitRegistered(t, c, 3)
	createTopic(t, c, ctrl, "cut", 6)
	victim := (ctrl + 1) % 3
	c.Faults.Isolate(victim, 3)
	c.Eventually(wait, "the cut-off node to be fenced and its partitions to lose their leader", func() bool {
		s := c.Node(ctrl).Broker.Snapshot()
		n := s.Node(victim)
		if n == nil || !n.Fenced {
			return false
		}
		for _, l := range leadersOf(c, ctrl, "cut") {
			if l == victim {
				return false
			}
		}
		return true
	})
	for p, l := range leadersOf(c, ctrl, "cut") {
		if l == meta.NoLeader {
			if rt := c.Node(ctrl).Broker.Route("cut", int32(p)); rt.Code.String() != "LEADER_NOT_AVAILABLE" {
				t.Fatalf("an offline partition routes as %v", rt.Code)
			}
		}
	}
	c.Faults.Heal()
	c.Eventually(wait, "the node to be unfenced and lead its partitions again", func() bool {
		for _, id := range c.Running() {
			n := c.Node(id).Broker.Snapshot().Node(victim)
			if n == nil || n.Fenced {
				return false
			}
			for _, l := range leadersOf(c, id, "cut") {
				if l == meta.NoLeader {
					return false
				}
			}
		}
		return true
	})
}

func TestClusterFullRestartKeepsTheMetadata(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	ctrl := c.Controller(wait)
	waitRegistered(t, c, 3)
	for i := range 5 {
		createTopic(t, c, ctrl, "kept-"+string(rune('a'+i)), int32(i+1))
	}
	before := c.Node(0).Broker.Snapshot()
	id := c.Node(0).Broker.ClusterID()
	c.StopAll()
	for i := range int32(3) {
		c.StartNode(i)
	}
	c.Controller(wait)
	waitRegistered(t, c, 3)
	c.Eventually(wait, "every node to have its topics back with every leader", func() bool {
		for _, n := range c.Running() {
			s := c.Node(n).Broker.Snapshot()
			for _, name := range before.Names {
				tp := s.Topics[name]
				if tp == nil || tp.ID != before.Topics[name].ID || len(tp.Partitions) != len(before.Topics[name].Partitions) {
					return false
				}
				for p := range tp.Partitions {
					if tp.Partitions[p].Leader == meta.NoLeader {
						return false
					}
				}
			}
		}
		return true
	})
	if got := c.Node(1).Broker.ClusterID(); got != id {
		t.Fatalf("cluster id %q after the restart, %q before", got, id)
	}
	after := c.Node(0).Broker.Snapshot()
	for _, name := range before.Names {
		for p, bp := range before.Topics[name].Partitions {
			ap := after.Topics[name].Partitions[p]
			if ap.Leader != bp.Leader || ap.LeaderEpoch < bp.LeaderEpoch {
				t.Fatalf("%s-%d: leader %d epoch %d after the restart, %d epoch %d before", name, p, ap.Leader, ap.LeaderEpoch, bp.Leader, bp.LeaderEpoch)
			}
		}
	}
}

func TestClusterNodeDownForManyChangesCatchesUpFromASnapshot(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{SnapshotEntries: 20})
	c.Controller(wait)
	waitRegistered(t, c, 3)
	c.StopNode(2)
	ctrl := c.Controller(wait)
	const topics = 60
	for i := range topics {
		createTopic(t, c, ctrl, "many-"+strconv.Itoa(i), 1)
	}
	c.StartNode(2)
	c.Eventually(wait, "the restarted node to know every topic created while it was down", func() bool {
		n := c.Node(2)
		if n == nil {
			return false
		}
		s := n.Broker.Snapshot()
		for i := range topics {
			if s.Topics["many-"+strconv.Itoa(i)] == nil {
				return false
			}
		}
		return true
	})
	waitRegistered(t, c, 3)
}

func TestClusterMetadataChangesDuringControllerFailover(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	old := c.Controller(wait)
	waitRegistered(t, c, 3)
	via := (old + 1) % 3
	var created []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			name := "flow-" + strconv.Itoa(i)
			deadline := time.Now().Add(wait)
			for time.Now().Before(deadline) {
				err := c.Node(via).Broker.CreateTopic(cluster.TopicSpec{Name: name, Partitions: 2, ReplicationFactor: 1}, false)
				if err == nil || errcode.Of(err) == errcode.TopicAlreadyExists {
					created = append(created, name)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	c.Eventually(wait, "some topics created before the controller stops", func() bool {
		return c.Node(via).Broker.Snapshot().Topics["flow-5"] != nil
	})
	c.StopNode(old)
	<-done
	if len(created) != 40 {
		t.Fatalf("%d of 40 topics created across the failover", len(created))
	}
	for _, id := range c.Running() {
		for _, name := range created {
			c.Eventually(wait, "node to know "+name, func() bool { return c.Node(id).Broker.Snapshot().Topics[name] != nil })
		}
	}
}

func TestClusterWorksThroughLossAndDelay(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	c.Controller(wait)
	waitRegistered(t, c, 3)
	// A fifth of the peer messages lost, the rest 15 ms late: raft resends, heartbeats keep
	// every node unfenced (eight heartbeats a session timeout; one that arrives is enough).
	c.Faults.Set(0.2, 15*time.Millisecond)
	for i := range 10 {
		createTopic(t, c, int32(i%3), "lossy-"+strconv.Itoa(i), 3)
	}
	c.Eventually(wait, "every node to know every topic", func() bool {
		for _, id := range c.Running() {
			for i := range 10 {
				if leadersOf(c, id, "lossy-"+strconv.Itoa(i)) == nil {
					return false
				}
			}
		}
		return true
	})
	c.Faults.Heal()
	waitRegistered(t, c, 3)
}

// A node stopped cleanly has itself fenced on the way out: its partitions are leaderless at
// once, long before the session timeout would have fenced it.
func TestClusterCleanStopIsAControlledShutdown(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{SessionTimeout: time.Minute})
	ctrl := c.Controller(wait)
	waitRegistered(t, c, 3)
	createTopic(t, c, ctrl, "leaving", 3)
	victim := (ctrl + 1) % 3
	stopped := time.Now()
	c.StopNode(victim)
	c.Eventually(10*time.Second, "the stopped node to be fenced", func() bool {
		n := c.Node(ctrl).Broker.Snapshot().Node(victim)
		return n != nil && n.Fenced
	})
	if d := time.Since(stopped); d > 30*time.Second {
		t.Fatalf("fenced %s after the stop: that is the session timeout, not the shutdown", d)
	}
	for _, l := range leadersOf(c, ctrl, "leaving") {
		if l == victim {
			t.Fatalf("the stopped node still leads a partition: %v", leadersOf(c, ctrl, "leaving"))
		}
	}
	c.StartNode(victim)
	waitRegistered(t, c, 3)
}

// The offsets topic waits for every node to register, so a node that starts last still
// coordinates its share of the groups.
func TestClusterOffsetsTopicWaitsForEveryNode(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Later: []int32{2}})
	c.Controller(wait)
	waitRegistered(t, c, 2)
	if c.Node(0).Broker.Snapshot().Topics[groups.OffsetsTopic] != nil {
		t.Fatal("the offsets topic was created before every node registered")
	}
	c.StartNode(2)
	c.Eventually(wait, "the offsets topic, led by every node in turn", func() bool {
		ls := leadersOf(c, 0, groups.OffsetsTopic)
		count := map[int32]int{}
		for _, l := range ls {
			count[l]++
		}
		return len(ls) > 0 && count[0] > 0 && count[1] > 0 && count[2] > 0
	})
}

// rfOf is the replication factor the tests create a topic with: one replica (the metadata
// plane's tests look at where single replicas go), three for a name starting with "r3".
func rfOf(name string) int16 {
	if strings.HasPrefix(name, "r3") {
		return 3
	}
	return 1
}
