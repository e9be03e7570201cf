package core

import (
	"maps"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// The binary protocol's group APIs and the group lag metric on node 0 of a cluster, over a fake
// metadata store whose images say who leads what.

const groupSelf int32 = 0

// ledBy is a topic whose partition p is led by leaders[p]; this node has a replica of each.
func ledBy(name string, id byte, internal bool, leaders ...int32) *meta.Topic {
	parts := make([]meta.Partition, len(leaders))
	for p, l := range leaders {
		parts[p] = meta.Partition{Replicas: []int32{groupSelf}, ISR: []int32{groupSelf}, Leader: l, LeaderEpoch: int32(p)}
		if l != groupSelf && l != meta.NoLeader {
			parts[p].Replicas = []int32{groupSelf, l}
		}
	}
	return clustertest.Topic(name, id, internal, parts...)
}

func newGroupClusterEnv(t *testing.T, store *clustertest.Store) *env {
	t.Helper()
	return newEnv(t, cluster.Options{NodeID: groupSelf, OpenStore: func() (cluster.MetadataStore, error) { return store, nil }})
}

func groupInPartition(t *testing.T, p, n int32) string {
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

func pollFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

func (e *env) commitCode(group, topic string, partition int32, offset int64) int16 {
	e.t.Helper()
	var resp proto.OffsetCommitResponse
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: group, Topics: []proto.OffsetCommitTopic{
		{Name: topic, Partitions: []proto.OffsetCommitPartition{{Partition: partition, Offset: offset}}},
	}}, &resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchCommitted is the group's commit for topic/partition, or the request's top-level code.
func (e *env) fetchCommitted(group, topic string, partition int32) (int64, int16) {
	e.t.Helper()
	req := proto.OffsetFetchRequest{Group: group, Topics: []proto.OffsetFetchTopic{{Name: topic, Partitions: []int32{partition}}}}
	corr := e.send(proto.KeyOffsetFetch, proto.Version, req.AppendTo(nil))
	h, body := e.recv(corr)
	if h.ErrorCode != 0 {
		return -1, h.ErrorCode
	}
	var resp proto.OffsetFetchResponse
	if err := resp.ReadFrom(body); err != nil {
		e.t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].Offset, resp.Topics[0].Partitions[0].ErrorCode
}

// TestClusterBinaryGroupsFollowLeadership: over the binary protocol a group whose offsets
// partition another node leads gets NOT_COORDINATOR (JoinGroup, OffsetCommit, OffsetFetch,
// DescribeGroups) and is not listed; once this node leads the partition it serves the group, and
// the offsets come back after the leadership went away and returned.
func TestClusterBinaryGroupsFollowLeadership(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, []meta.Node{clustertest.Node(0), clustertest.Node(1)},
		ledBy(groups.OffsetsTopic, 7, true, groupSelf, 1)))
	e := newGroupClusterEnv(t, store)
	here, there := groupInPartition(t, 0, 2), groupInPartition(t, 1, 2)
	if code := e.commitCode(here, "orders", 0, 3); code != 0 {
		t.Fatalf("commit to a group this node coordinates: %d", code)
	}
	if code := e.commitCode(there, "orders", 0, 3); code != int16(errcode.NotCoordinator) {
		t.Fatalf("commit to a group node 1 coordinates: %d, want NOT_COORDINATOR", code)
	}
	if _, code := e.fetchCommitted(there, "orders", 0); code != int16(errcode.NotCoordinator) {
		t.Fatalf("fetch: %d, want NOT_COORDINATOR", code)
	}
	var join proto.JoinGroupResponse
	e.call(proto.KeyJoinGroup, &proto.JoinGroupRequest{Group: there, SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000,
		ProtocolType: "consumer", Protocols: []proto.JoinGroupProtocol{{Name: "range"}}}, &join)
	if join.ErrorCode != int16(errcode.NotCoordinator) {
		t.Fatalf("join: %+v", join)
	}
	var described proto.DescribeGroupsResponse
	e.call(proto.KeyDescribeGroups, &proto.DescribeGroupsRequest{Groups: []string{there}}, &described)
	if described.Groups[0].ErrorCode != int16(errcode.NotCoordinator) {
		t.Fatalf("describe: %+v", described.Groups[0])
	}
	var listed proto.ListGroupsResponse
	e.call(proto.KeyListGroups, &proto.ListGroupsRequest{}, &listed)
	if listed.ErrorCode != 0 || len(listed.Groups) != 1 || listed.Groups[0].Group != here {
		t.Fatalf("list: %+v", listed)
	}

	lead := func(leaders ...int32) {
		store.Update(func(img *meta.Image) {
			img.Topics[groups.OffsetsTopic] = ledBy(groups.OffsetsTopic, 7, true, leaders...)
		})
	}
	lead(groupSelf, groupSelf)
	pollFor(t, "partition 1 to load", func() bool { return e.commitCode(there, "orders", 0, 8) == 0 })
	lead(groupSelf, 1)
	pollFor(t, "partition 1 to move away", func() bool { return !e.coord.Hosted(1) })
	if _, code := e.fetchCommitted(there, "orders", 0); code != int16(errcode.NotCoordinator) {
		t.Fatalf("fetch after the move: %d, want NOT_COORDINATOR", code)
	}
	lead(groupSelf, groupSelf)
	pollFor(t, "partition 1 to load again", func() bool {
		_, code := e.fetchCommitted(there, "orders", 0)
		return code == 0
	})
	if got, _ := e.fetchCommitted(there, "orders", 0); got != 8 {
		t.Fatalf("after leading partition 1 again: %d, want 8", got)
	}
}

// TestClusterGroupLag: thorstream_group_lag reports the groups this node coordinates, and of
// their commits only the partitions this node leads (their leaders report the others).
func TestClusterGroupLag(t *testing.T) {
	store := clustertest.New(clustertest.Image(1, []meta.Node{clustertest.Node(0), clustertest.Node(1)},
		ledBy(groups.OffsetsTopic, 7, true, groupSelf),
		ledBy("orders", 8, false, groupSelf, 1)))
	e := newGroupClusterEnv(t, store)
	for range 3 {
		e.produce("orders", 0, makeBatch(1, testNow.UnixMilli(), 1))
	}
	for p := range int32(2) {
		if code := e.commitCode("billing", "orders", p, 1); code != 0 {
			t.Fatalf("commit orders/%d: %d", p, code)
		}
	}
	lag := NewGroupLag()
	lag.Attach(e.coord, e.broker)
	exactly := func(w map[string]float64) {
		t.Helper()
		if got := gather(t, lag); !maps.Equal(got, w) {
			t.Fatalf("thorstream_group_lag:\n%v\nwant\n%v", got, w)
		}
	}
	exactly(map[string]float64{
		`thorstream_group_lag{group="billing",partition="0",topic="orders"}`: 2,
	})
	store.Update(func(img *meta.Image) {
		img.Topics["orders"] = ledBy("orders", 8, false, groupSelf, groupSelf)
	})
	pollFor(t, "orders/1 to be led here", func() bool { return e.broker.Route("orders", 1).Replica != nil })
	// orders/1 is empty: the commit at 1 is past its end.
	exactly(map[string]float64{
		`thorstream_group_lag{group="billing",partition="0",topic="orders"}`: 2,
		`thorstream_group_lag{group="billing",partition="1",topic="orders"}`: 0,
	})
}
