package core

import (
	"fmt"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
)

// CoordinatorAddr is a group's coordinator as FindCoordinator answers it: the node that leads the
// group's offsets partition, at this protocol's listener.
type CoordinatorAddr struct {
	ID   int32
	Host string
	Port int32
}

// GroupCoordinator finds group's coordinator: the leader of its offsets partition
// (abs(javaStringHash(group)) % partitions, as Kafka places groups), at this protocol's address;
// a single node is the coordinator of every group. COORDINATOR_NOT_AVAILABLE, with why, while the
// broker has no coordinator, the offsets topic does not exist yet (its creation is asked for, as
// Kafka's FindCoordinator does), the partition has no leader or its leader no such listener.
func (e *Endpoint) GroupCoordinator(coord *groups.Coordinator, group string) (CoordinatorAddr, errcode.Code, string) {
	if coord == nil {
		return CoordinatorAddr{}, errcode.CoordinatorNotAvailable, "the group coordinator is not available"
	}
	if !e.Broker.Clustered() {
		return CoordinatorAddr{ID: e.Broker.NodeID(), Host: e.AdvertisedHost, Port: e.AdvertisedPort}, errcode.None, ""
	}
	snap := e.Broker.Snapshot()
	t := snap.Topics[groups.OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		coord.WantLog()
		return CoordinatorAddr{}, errcode.CoordinatorNotAvailable, "the offsets topic " + groups.OffsetsTopic + " does not exist yet"
	}
	p := groups.PartitionOf(group, int32(len(t.Partitions)))
	leader := t.Partitions[p].Leader
	if leader == meta.NoLeader {
		return CoordinatorAddr{}, errcode.CoordinatorNotAvailable, fmt.Sprintf("offsets partition %d has no leader", p)
	}
	host, port, ok := e.NodeAddress(snap, leader)
	if !ok {
		return CoordinatorAddr{}, errcode.CoordinatorNotAvailable, fmt.Sprintf("node %d, the leader of offsets partition %d, has no listener for this protocol", leader, p)
	}
	return CoordinatorAddr{ID: leader, Host: host, Port: port}, errcode.None, ""
}
