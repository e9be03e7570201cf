package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/log/vfs"
	"github.com/thorstream/thorstream/reactor/core"
)

// The group APIs on node 0 of a three-node cluster, over a fake metadata store: the test decides
// which node leads each offsets partition.

const groupSelf int32 = 0

// offsetsTopic is an offsets topic whose partition p is led by leaders[p] (meta.NoLeader: none);
// this node has a replica of each, so a partition it stops leading stays on its disk.
func offsetsTopic(leaders ...int32) *meta.Topic {
	parts := make([]meta.Partition, len(leaders))
	for p, l := range leaders {
		parts[p] = meta.Partition{Replicas: []int32{groupSelf}, ISR: []int32{groupSelf}, Leader: l, LeaderEpoch: int32(p)}
		if l != groupSelf && l != meta.NoLeader {
			parts[p].Replicas = []int32{groupSelf, l}
		}
	}
	return clustertest.Topic(groups.OffsetsTopic, 7, true, parts...)
}

func clusterNodes() []meta.Node {
	return []meta.Node{clustertest.Node(0), clustertest.Node(1), clustertest.Node(2)}
}

// newGroupClusterEnv is a Kafka server on node 0 with its group coordinator, over store.
func newGroupClusterEnv(t *testing.T, store *clustertest.Store) (*env, *groups.Coordinator) {
	t.Helper()
	b, err := cluster.Open(cluster.Options{NodeID: groupSelf, DataDir: "/data", FS: vfs.NewMem(),
		OpenStore: func() (cluster.MetadataStore, error) { return store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	coord, err := offsetslog.Start(b, cfg, offsetslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		coord.Close()
		_ = b.Close()
	})
	s, err := NewServer(Options{Broker: b, Coordinator: coord, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = core.NewSession(e.tr, core.Limits{})
	return e, coord
}

// groupIn is a group id placed in offsets partition p of n.
func groupIn(t *testing.T, p, n int32) string {
	t.Helper()
	for i := range 100000 {
		g := "group-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		if groups.PartitionOf(g, n) == p {
			return g
		}
	}
	t.Fatalf("no group in partition %d", p)
	return ""
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

func findCoordinator(e *env, version int16, keys ...string) *kmsg.FindCoordinatorResponse {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = version
	if version >= 4 {
		req.CoordinatorKeys = keys
	} else {
		req.CoordinatorKey = keys[0]
	}
	return e.call(req).(*kmsg.FindCoordinatorResponse)
}

// TestClusterFindCoordinator: every version answers the leader of the group's offsets partition
// at its Kafka listener (this node at its advertised address), COORDINATOR_NOT_AVAILABLE for a
// partition without a leader; version 4 answers each key on its own.
func TestClusterFindCoordinator(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, clusterNodes(), offsetsTopic(groupSelf, 1, meta.NoLeader)))
	e, _ := newGroupClusterEnv(t, store)
	here, there, nowhere := groupIn(t, 0, 3), groupIn(t, 1, 3), groupIn(t, 2, 3)
	type want struct {
		id   int32
		host string
		port int32
		code errcode.Code
	}
	cases := map[string]want{
		here:    {0, "broker.local", 9092, errcode.None},
		there:   {1, "node1", 9101, errcode.None},
		nowhere: {-1, "", -1, errcode.CoordinatorNotAvailable},
	}
	for v := int16(0); v <= 3; v++ {
		for g, w := range cases {
			r := findCoordinator(e, v, g)
			if r.NodeID != w.id || r.Host != w.host || r.Port != w.port || r.ErrorCode != int16(w.code) {
				t.Fatalf("v%d %s: node %d at %s:%d, code %d; want %+v", v, g, r.NodeID, r.Host, r.Port, r.ErrorCode, w)
			}
		}
	}
	r := findCoordinator(e, 4, here, there, nowhere)
	if len(r.Coordinators) != 3 {
		t.Fatalf("v4: %d coordinators, want 3", len(r.Coordinators))
	}
	for _, c := range r.Coordinators {
		w := cases[c.Key]
		if c.NodeID != w.id || c.Host != w.host || c.Port != w.port || c.ErrorCode != int16(w.code) {
			t.Fatalf("v4 %s: node %d at %s:%d, code %d; want %+v", c.Key, c.NodeID, c.Host, c.Port, c.ErrorCode, w)
		}
		if w.code != errcode.None && (c.ErrorMessage == nil || *c.ErrorMessage == "") {
			t.Fatalf("v4 %s: no message with %d", c.Key, c.ErrorCode)
		}
	}
	// Leadership moves: the answer follows the metadata.
	store.Update(func(img *meta.Image) { img.Topics[groups.OffsetsTopic] = offsetsTopic(groupSelf, 2, 1) })
	pollUntil(t, "the new leaders", func() bool {
		r := findCoordinator(e, 3, there)
		return r.NodeID == 2 && r.Host == "node2" && r.Port == 9102
	})
	if r := findCoordinator(e, 3, nowhere); r.NodeID != 1 || r.ErrorCode != 0 {
		t.Fatalf("the partition that got a leader: %+v", r)
	}
}

// TestClusterFindCoordinatorCreatesOffsetsTopic: before the offsets topic exists FindCoordinator
// answers COORDINATOR_NOT_AVAILABLE and has it created; once a controller takes the creation, the
// answer is the partition's leader.
func TestClusterFindCoordinatorCreatesOffsetsTopic(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, clusterNodes()))
	e, _ := newGroupClusterEnv(t, store)
	r := findCoordinator(e, 3, "app")
	if r.ErrorCode != int16(errcode.CoordinatorNotAvailable) || r.NodeID != -1 {
		t.Fatalf("before the offsets topic exists: %+v", r)
	}
	store.SetController(2)
	pollUntil(t, "the offsets topic to be created", func() bool {
		return findCoordinator(e, 3, "app").ErrorCode == 0
	})
	snap := e.broker.Snapshot()
	topic := snap.Topics[groups.OffsetsTopic]
	if topic == nil || len(topic.Partitions) != offsetslog.DefaultPartitions || !topic.Internal || !topic.Config.Compact() {
		t.Fatalf("offsets topic %+v", topic)
	}
	p := groups.PartitionOf("app", offsetslog.DefaultPartitions)
	if got := findCoordinator(e, 3, "app").NodeID; got != topic.Partitions[p].Leader {
		t.Fatalf("coordinator %d, want partition %d's leader %d", got, p, topic.Partitions[p].Leader)
	}
}

func kafkaCommit(e *env, group string, offset int64) int16 {
	return e.call(commitRequest(9, group, -1, "", "orders", offset)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func kafkaFetch(e *env, group string) (int64, int16) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	t := kmsg.NewOffsetFetchRequestGroupTopic()
	t.Topic, t.Partitions = "orders", []int32{0}
	g.Topics = []kmsg.OffsetFetchRequestGroupTopic{t}
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	r := e.call(req).(*kmsg.OffsetFetchResponse)
	rg := r.Groups[0]
	if rg.ErrorCode != 0 {
		return -1, rg.ErrorCode
	}
	return rg.Topics[0].Partitions[0].Offset, rg.Topics[0].Partitions[0].ErrorCode
}

// TestClusterGroupRequestsFollowLeadership: a group whose offsets partition another node leads
// gets NOT_COORDINATOR from every group API here; once this node leads the partition, it loads the
// partition and serves the group; when the leadership goes away and comes back, the offsets
// committed meanwhile come back with it.
func TestClusterGroupRequestsFollowLeadership(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, clusterNodes(), offsetsTopic(groupSelf, 1, 1)))
	e, coord := newGroupClusterEnv(t, store)
	g := groupIn(t, 1, 3)
	pollUntil(t, "partition 0 to load", func() bool { return coord.Hosted(0) && coord.Ready() })

	if code := kafkaCommit(e, g, 10); code != int16(errcode.NotCoordinator) {
		t.Fatalf("commit on a node that does not lead the group's partition: %d", code)
	}
	if _, code := kafkaFetch(e, g); code != int16(errcode.NotCoordinator) {
		t.Fatalf("fetch: %d, want NOT_COORDINATOR", code)
	}
	if r := e.call(joinRequest(9, g, "")).(*kmsg.JoinGroupResponse); r.ErrorCode != int16(errcode.NotCoordinator) {
		t.Fatalf("join: %+v", r)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, g, 1, "m"
	if r := e.call(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != int16(errcode.NotCoordinator) {
		t.Fatalf("heartbeat: %+v", r)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{g}
	if r := e.call(dg).(*kmsg.DescribeGroupsResponse); r.Groups[0].ErrorCode != int16(errcode.NotCoordinator) {
		t.Fatalf("describe: %+v", r.Groups[0])
	}

	lead := func(leaders ...int32) {
		store.Update(func(img *meta.Image) { img.Topics[groups.OffsetsTopic] = offsetsTopic(leaders...) })
	}
	lead(groupSelf, groupSelf, 1)
	pollUntil(t, "partition 1 to load", func() bool { return kafkaCommit(e, g, 10) == 0 })
	if got, code := kafkaFetch(e, g); got != 10 || code != 0 {
		t.Fatalf("fetch: %d, code %d", got, code)
	}
	if r := findCoordinator(e, 3, g); r.NodeID != groupSelf {
		t.Fatalf("FindCoordinator: %+v", r)
	}
	lead(groupSelf, 2, 1)
	pollUntil(t, "partition 1 to move to node 2", func() bool { return !coord.Hosted(1) })
	if code := kafkaCommit(e, g, 11); code != int16(errcode.NotCoordinator) {
		t.Fatalf("commit after the partition moved: %d, want NOT_COORDINATOR", code)
	}
	if r := findCoordinator(e, 3, g); r.NodeID != 2 {
		t.Fatalf("FindCoordinator after the move: %+v", r)
	}
	lead(groupSelf, groupSelf, 1)
	pollUntil(t, "partition 1 to load again", func() bool {
		_, code := kafkaFetch(e, g)
		return code == 0
	})
	if got, _ := kafkaFetch(e, g); got != 10 {
		t.Fatalf("after leading the partition again: offset %d, want 10", got)
	}
}
