package kafka

// OffsetCommit (key 8), versions 0-9.
//
// v0 has no generation or member: a commit from outside group management, accepted while the
// group has no members (as a generation -1 commit in any later version). v1's per-partition
// timestamp and v2-v4's retention time are ignored, as Kafka 2.1 and later ignore them: offsets
// expire by offsets.retention.minutes after the group empties. v6 adds the leader epoch, v7 the
// instance id; v9 answers GROUP_ID_NOT_FOUND rather than ILLEGAL_GENERATION for a member's commit
// to a group the coordinator does not have. The reply comes once the commits are durable.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) offsetCommit(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	r := groups.CommitRequest{Version: h.version, Group: req.Group, Generation: -1, Topics: make([]groups.CommitTopic, len(req.Topics))}
	if h.version >= 1 {
		r.Generation, r.MemberID = req.Generation, req.MemberID
	}
	if h.version >= 7 {
		r.InstanceID = req.InstanceID
	}
	for i, t := range req.Topics {
		ct := groups.CommitTopic{Topic: t.Topic, Partitions: make([]groups.CommitPartition, len(t.Partitions))}
		for j, p := range t.Partitions {
			epoch := int32(-1)
			if h.version >= 6 {
				epoch = p.LeaderEpoch
			}
			ct.Partitions[j] = groups.CommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: orEmpty(p.Metadata)}
		}
		r.Topics[i] = ct
	}
	s.coordinator.CommitOffsets(r, func(cr groups.CommitResponse) {
		resp := kmsg.NewPtrOffsetCommitResponse()
		resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(cr.Topics))
		for i, t := range cr.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, int16(p.ErrorCode)
				rt.Partitions[j] = rp
			}
			resp.Topics[i] = rt
		}
		respond(sess, seq, h, resp)
	})
	return nil
}
