package client

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// A group's coordinator in a cluster of three fake nodes: the leader of the group's partition of
// the offsets topic. Every other node answers the group APIs NOT_COORDINATOR, as a Thorstream
// node that does not lead the partition does.

// coordinated answers group requests NOT_COORDINATOR on every node but the current coordinator,
// and counts the group requests each node served.
type coordinated struct {
	node   atomic.Int32
	mu     sync.Mutex
	served map[int32]map[int16]int
}

func isGroupKey(key int16) bool {
	switch key {
	case proto.KeyJoinGroup, proto.KeySyncGroup, proto.KeyHeartbeat, proto.KeyLeaveGroup, proto.KeyOffsetCommit,
		proto.KeyOffsetFetch, proto.KeyDescribeGroups, proto.KeyDeleteGroups:
		return true
	}
	return false
}

func newCoordinated(fc *fakebroker.Cluster, node int32) *coordinated {
	c := &coordinated{served: map[int32]map[int16]int{}}
	c.node.Store(node)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if !isGroupKey(r.Key) {
			return nil
		}
		if r.Node != c.node.Load() {
			return &fakebroker.Action{Error: errcode.NotCoordinator}
		}
		c.mu.Lock()
		if c.served[r.Node] == nil {
			c.served[r.Node] = map[int16]int{}
		}
		c.served[r.Node][r.Key]++
		c.mu.Unlock()
		return nil
	})
	return c
}

// count is how many requests of key node served.
func (c *coordinated) count(node int32, key int16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served[node][key]
}

// moveTo makes node the group's coordinator: the offsets partition's leader and the only node
// serving the group.
func (c *coordinated) moveTo(fc *fakebroker.Cluster, node int32) {
	fc.SetLeader(offsetsTopic, 0, node)
	c.node.Store(node)
}

// TestGroupMemberFollowsCoordinator: a member talks to the leader of its group's offsets
// partition, not to the broker it bootstrapped from; when the coordinator moves (the old one
// answers NOT_COORDINATOR), it looks the coordinator up again and carries on there.
func TestGroupMemberFollowsCoordinator(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 3})
	mustCreate(t, fc, "t", 2)
	mustCreate(t, fc, offsetsTopic, 1)
	co := newCoordinated(fc, 2)
	co.moveTo(fc, 2)
	cl := newClient(t, fc) // bootstraps from node 0
	ctx := testContext(t)
	gc := newGroupConsumer(t, cl, ConsumerOptions{Group: "g", ResetOffset: ResetEarliest, SessionTimeout: 6 * time.Second,
		HeartbeatInterval: 20 * time.Millisecond, FetchMaxWait: 50 * time.Millisecond}, "t")
	pollUntil(t, ctx, nil, func() bool { return len(gc.Assignment()) == 2 }, gc)
	if co.count(2, proto.KeyJoinGroup) == 0 || co.count(2, proto.KeySyncGroup) == 0 {
		t.Fatalf("node 2 served %v", co.served[2])
	}
	waitFor(t, ctx, "heartbeats at node 2", func() bool { return co.count(2, proto.KeyHeartbeat) > 0 })
	if err := gc.CommitOffsets(ctx, map[TopicPartition]int64{{"t", 0}: 4}); err != nil {
		t.Fatal(err)
	}
	if co.count(2, proto.KeyOffsetCommit) == 0 {
		t.Fatal("the member's commit did not go to the coordinator")
	}

	co.moveTo(fc, 1)
	waitFor(t, ctx, "heartbeats at node 1, the new coordinator", func() bool { return co.count(1, proto.KeyHeartbeat) > 0 })
	if err := gc.CommitOffsets(ctx, map[TopicPartition]int64{{"t", 0}: 5}); err != nil {
		t.Fatalf("commit after the coordinator moved: %v", err)
	}
	if co.count(1, proto.KeyOffsetCommit) == 0 {
		t.Fatal("the commit after the move did not go to the new coordinator")
	}
	if got, err := cl.FetchCommitted(ctx, "g", []TopicPartition{{"t", 0}}); err != nil || got[TopicPartition{"t", 0}] != 5 {
		t.Fatalf("committed: %v, %v", got, err)
	}
	if co.count(1, proto.KeyOffsetFetch) == 0 {
		t.Fatal("FetchCommitted did not ask the coordinator")
	}
}

// TestGroupAdminFindsCoordinator: the administration of a group goes to its coordinator, looked
// up again when it moves, and ListGroups asks every broker.
func TestGroupAdminFindsCoordinator(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 3})
	mustCreate(t, fc, "t", 1)
	mustCreate(t, fc, offsetsTopic, 1)
	co := newCoordinated(fc, 1)
	co.moveTo(fc, 1)
	cl := newClient(t, fc)
	ctx := testContext(t)
	if err := cl.CommitOffsets(ctx, "admin", map[TopicPartition]int64{{"t", 0}: 3}); err != nil {
		t.Fatal(err)
	}
	if co.count(1, proto.KeyOffsetCommit) != 1 {
		t.Fatalf("node 1 served %v", co.served[1])
	}
	co.moveTo(fc, 2)
	got, err := cl.FetchAllCommitted(ctx, "admin")
	if err != nil || got[TopicPartition{"t", 0}] != 3 {
		t.Fatalf("FetchAllCommitted after the move: %v, %v", got, err)
	}
	if _, err := cl.DescribeGroup(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if co.count(2, proto.KeyOffsetFetch) == 0 || co.count(2, proto.KeyDescribeGroups) == 0 {
		t.Fatalf("node 2 served %v", co.served[2])
	}

	var mu sync.Mutex
	listed := map[int32]int{}
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyListGroups {
			mu.Lock()
			listed[r.Node]++
			mu.Unlock()
		}
		return nil
	})
	groupsListed, err := cl.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(listed) != 3 || listed[0] != 1 || listed[1] != 1 || listed[2] != 1 {
		t.Fatalf("ListGroups asked %v, want each of the three nodes once", listed)
	}
	n := 0
	for _, g := range groupsListed {
		if g.Group == "admin" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("group admin listed %d times: %+v", n, groupsListed)
	}
}
