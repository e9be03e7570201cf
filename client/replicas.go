package client

import (
	"context"
	"time"

	"github.com/thorstream/thorstream/codec/proto"
)

// ReplicaPosition is one replica of a partition as the partition's leader sees it.
type ReplicaPosition struct {
	Node int32
	// LogEndOffset is the replica's log end, the offset after its last record: the leader's own,
	// or a follower's at its last fetch. -1 when the leader has not heard from the follower since
	// it became leader.
	LogEndOffset int64
	// LastCaughtUp is when the replica last had everything the leader had (about now for the
	// leader itself); zero when unknown.
	LastCaughtUp time.Time
}

// Known reports whether the leader knows where the replica is.
func (r ReplicaPosition) Known() bool { return r.LogEndOffset >= 0 }

// PartitionOffset is a partition's offset at a timestamp with the replicas' positions, as its
// leader answered them.
type PartitionOffset struct {
	// Offset is what ListOffsets returns for the timestamp.
	Offset int64
	// Leader is the node that answered: the partition's leader.
	Leader int32
	// Replicas are every replica of the partition, the leader included, in the order of the
	// partition's replicas in the metadata. Nil when the broker is older than ListOffsets
	// version 2 and does not report them.
	Replicas []ReplicaPosition
}

// LeaderLogEnd is the log end offset of the leader's replica (-1 when it is not reported).
func (p PartitionOffset) LeaderLogEnd() int64 {
	for _, r := range p.Replicas {
		if r.Node == p.Leader {
			return r.LogEndOffset
		}
	}
	return -1
}

// Lag is how many records the replica on node is behind the leader's log end (0 at or past
// it); ok is false when the leader does not know where it is.
func (p PartitionOffset) Lag(node int32) (lag int64, ok bool) {
	end := p.LeaderLogEnd()
	if end < 0 {
		return 0, false
	}
	for _, r := range p.Replicas {
		if r.Node == node && r.Known() {
			return max(end-r.LogEndOffset, 0), true
		}
	}
	return 0, false
}

// ListOffsetsReplicas is ListOffsets that also returns where each replica of the partition is,
// as the partition's leader sees them (binary protocol ListOffsets version 2; a broker that
// serves only version 1 is asked in version 1, and Replicas is nil).
func (c *Client) ListOffsetsReplicas(ctx context.Context, topic string, partition int32, timestamp int64) (PartitionOffset, error) {
	var out PartitionOffset
	err := retry(ctx, adminAttempts, func() error {
		p, err := c.listOffsetVersion(ctx, topic, partition, timestamp, 2)
		if err != nil {
			return err
		}
		out = PartitionOffset{Offset: p.Offset, Leader: p.Leader.ID, Replicas: replicaPositions(p.Replicas)}
		return nil
	})
	return out, err
}

func replicaPositions(in []proto.ListOffsetsReplica) []ReplicaPosition {
	if in == nil {
		return nil
	}
	out := make([]ReplicaPosition, len(in))
	for i, r := range in {
		out[i] = ReplicaPosition{Node: r.Node, LogEndOffset: r.LogEndOffset}
		if r.LastCaughtUpMs >= 0 {
			out[i].LastCaughtUp = time.UnixMilli(r.LastCaughtUpMs)
		}
	}
	return out
}
