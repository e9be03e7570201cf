package cluster

import (
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
)

// Route is where a partition's reads and writes go, decided once for both protocols.
type Route struct {
	// Replica is this node's replica when this node leads the partition; nil otherwise.
	Replica *Replica
	// Code is None when Replica leads here, else UNKNOWN_TOPIC_OR_PARTITION,
	// NOT_LEADER_OR_FOLLOWER (another node leads it: Leader says which) or LEADER_NOT_AVAILABLE
	// (no node leads it: its node is fenced or an election is under way).
	Code errcode.Code
	// Leader and LeaderEpoch are the partition's leader (meta.NoLeader: none) and its epoch;
	// Leader is -1 for an unknown partition.
	Leader      int32
	LeaderEpoch int32
}

// Route says whether this node leads topic's partition p, and if not, who does.
func (b *Broker) Route(topic string, p int32) Route {
	return b.snapshot.Load().route(b.opts.NodeID, b.snapshot.Load().Topics[topic], p)
}

// RouteBytes is Route with the topic name as bytes (no allocation for the lookup).
func (b *Broker) RouteBytes(topic []byte, p int32) Route {
	s := b.snapshot.Load()
	return s.route(b.opts.NodeID, s.Topics[string(topic)], p)
}

func (s *Snapshot) route(self int32, t *Topic, p int32) Route {
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return Route{Code: errcode.UnknownTopicOrPartition, Leader: -1, LeaderEpoch: -1}
	}
	mp := &t.Partitions[p]
	rt := Route{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch}
	switch {
	case mp.Leader == meta.NoLeader:
		rt.Code = errcode.LeaderNotAvailable
	case mp.Leader != self:
		rt.Code = errcode.NotLeaderOrFollower
	case t.Replicas[p] == nil:
		// This node leads it in the metadata but has not opened it yet (a creation being
		// applied): clients retry.
		rt.Code = errcode.LeaderNotAvailable
	default:
		rt.Replica = t.Replicas[p]
	}
	return rt
}

// Node is a registered node of the snapshot; nil if there is none with that id.
func (s *Snapshot) Node(id int32) *meta.Node {
	for i := range s.Nodes {
		if s.Nodes[i].ID == id {
			return &s.Nodes[i]
		}
	}
	return nil
}

// LiveNodes are the registered, unfenced nodes, sorted by id: the brokers Metadata lists.
func (s *Snapshot) LiveNodes() []meta.Node {
	live := make([]meta.Node, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		if !n.Fenced {
			live = append(live, n)
		}
	}
	return live
}

// ControllerID is the id of the node that is the active controller; -1 while none is known. A
// single node is its own controller.
func (b *Broker) ControllerID() int32 {
	if b.opts.Store == nil {
		return b.opts.NodeID
	}
	return b.opts.Store.ControllerID()
}

// ClusterSize is how many nodes the cluster has (its controller's voters; 1 on a single node).
func (b *Broker) ClusterSize() int {
	if v, ok := b.opts.Store.(interface{ Voters() []int32 }); ok {
		return len(v.Voters())
	}
	if b.opts.Store != nil {
		return max(1, len(b.snapshot.Load().Nodes))
	}
	return 1
}

// Clustered reports whether this node is one of a cluster's (its metadata is the controller's).
func (b *Broker) Clustered() bool { return b.opts.Store != nil }

// selfNode is this node as a single node's metadata lists it.
func (b *Broker) selfNode() meta.Node {
	return meta.Node{ID: b.opts.NodeID, Binary: b.opts.Binary, Kafka: b.opts.Kafka}
}

// localPartitions are n partitions of a single node: it is their one replica and leader.
func (b *Broker) localPartitions(n int) []meta.Partition {
	ps := make([]meta.Partition, n)
	one := []int32{b.opts.NodeID}
	for i := range ps {
		ps[i] = meta.Partition{Replicas: one, ISR: one, Leader: b.opts.NodeID}
	}
	return ps
}
