package kafka

// OffsetForLeaderEpoch (key 23), versions 0-4 (v4 flexible): for each partition, the end offset
// of the largest leader epoch at or below the requested one, and that epoch (KIP-101, KIP-279).
// Consumers send it to validate their position after a leader change (KIP-320): a position past
// the answered end offset means the log was truncated under them.
//
// Answered on the partition's leader only (the route's code elsewhere, with epoch and end offset
// -1). CurrentLeaderEpoch (v2+) is checked as Fetch and ListOffsets check it: older than the
// partition's epoch is FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH, -1 skips the check.
// The latest epoch ends at the log end offset; an epoch newer than the leader's is answered -1/-1
// (UNDEFINED, as Kafka). ReplicaId (v3+) is accepted whatever it is. The leader epoch cache is in
// memory: served on the event loop.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) offsetForLeaderEpoch(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	defer f.Release()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		// A body that does not parse: Kafka closes the connection.
		s.Logger.Debug("closing connection after a malformed request", zap.Int16("key", h.key), zap.Int16("version", h.version), zap.Error(err))
		s.Metrics.API(h.key, h.version).Error()
		sess.Complete(seq, nil)
		sess.CloseTransport()
		return
	}
	sess.Complete(seq, encodeResponse(h, s.endOffsetsForEpochs(req)))
}

func (s *Server) endOffsetsForEpochs(req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LeaderEpoch, rp.EndOffset = -1, -1
			route := s.Broker.Route(t.Topic, p.Partition)
			switch {
			case route.Replica == nil:
				// NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
				rp.ErrorCode = int16(route.Code)
			case p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < route.LeaderEpoch:
				rp.ErrorCode = int16(errcode.FencedLeaderEpoch)
			case p.CurrentLeaderEpoch > route.LeaderEpoch:
				rp.ErrorCode = int16(errcode.UnknownLeaderEpoch)
			default:
				rp.EndOffset, rp.LeaderEpoch = route.Replica.EndOffsetForEpoch(p.LeaderEpoch)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
