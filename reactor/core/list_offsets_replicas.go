package core

import (
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
)

// replicaPositions is the leader's view of every replica of r's partition, ListOffsets version
// 2's replicas: in the metadata's replica order, itself with its log end and now, each follower
// at its last fetch, -1 and -1 for a follower it has not heard from since it became leader. A
// single node's partition has itself as its one replica.
func replicaPositions(r *cluster.Replica, self int32, now time.Time) []proto.ListOffsetsReplica {
	role := r.Role()
	// The followers first, then the log end: a follower's log end is never past the leader's
	// read after it.
	followers := r.Followers()
	logEnd := r.LogEndOffset()
	nowMs := now.UnixMilli()
	if len(role.Replicas) == 0 {
		return []proto.ListOffsetsReplica{{Node: self, LogEndOffset: logEnd, LastCaughtUpMs: nowMs}}
	}
	out := make([]proto.ListOffsetsReplica, 0, len(role.Replicas))
	for _, id := range role.Replicas {
		p := proto.ListOffsetsReplica{Node: id, LogEndOffset: -1, LastCaughtUpMs: -1}
		if id == role.Self {
			p.LogEndOffset, p.LastCaughtUpMs = logEnd, nowMs
		} else {
			for _, f := range followers {
				if f.Node == id {
					p.LogEndOffset = f.FetchOffset
					if !f.CaughtUp.IsZero() {
						p.LastCaughtUpMs = f.CaughtUp.UnixMilli()
					}
					break
				}
			}
		}
		out = append(out, p)
	}
	return out
}
