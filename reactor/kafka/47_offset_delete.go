package kafka

// OffsetDelete (key 47), version 0.
//
// Deletes a group's committed offsets of some partitions: refused for the whole group with
// GROUP_ID_NOT_FOUND (unknown) or NON_EMPTY_GROUP (members, and not a consumer group), or per
// partition with GROUP_SUBSCRIBED_TO_TOPIC while a member of the consumer group subscribes to the
// topic.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) offsetDelete(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	var parts []groups.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, groups.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	s.coordinator.DeleteOffsets(req.Group, parts, func(d groups.OffsetDeleteResponse) {
		resp := kmsg.NewPtrOffsetDeleteResponse()
		resp.ErrorCode = int16(d.ErrorCode)
		if d.ErrorCode == 0 {
			// One outcome per requested partition, in request order.
			next := 0
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetDeleteResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetDeleteResponseTopicPartition()
					rp.Partition = p.Partition
					if next < len(d.Partitions) {
						rp.ErrorCode = int16(d.Partitions[next].ErrorCode)
					}
					next++
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
		}
		respond(sess, seq, h, resp)
	})
	return nil
}
