package kafka

// OffsetFetch (key 9), versions 0-9.
//
// A group's committed offsets: offset -1 (and metadata "") for a partition without one, and for
// an unknown group, which is not an error. From v2 a null topic list asks for every committed
// offset and an error for the whole group is the response's error code (below v2 it is each
// partition's); v5 adds the leader epoch; v7 require_stable, which never waits (only
// transactional offsets could be unstable, and there are none); v8 batches groups, each answered
// by its own shard, with an error code per group. v9's member id and epoch belong to KIP-848
// groups and are ignored.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) offsetFetch(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	if h.version >= 8 {
		s.offsetFetchGroups(sess, seq, h, req)
		return nil
	}
	fr := groups.FetchRequest{Version: h.version, Group: req.Group, Topics: fetchTopics(req.Topics, func(t kmsg.OffsetFetchRequestTopic) (string, []int32) { return t.Topic, t.Partitions }),
		RequireStable: h.version >= 7 && req.RequireStable}
	s.coordinator.FetchOffsets(fr, func(f groups.FetchResponse) {
		resp := kmsg.NewPtrOffsetFetchResponse()
		if f.ErrorCode != errcode.None && h.version < 2 {
			// No error code for the group: every partition asked for carries it.
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.Metadata, rp.ErrorCode = p, -1, kmsg.StringPtr(""), int16(f.ErrorCode)
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			respond(sess, seq, h, resp)
			return
		}
		resp.ErrorCode = int16(f.ErrorCode)
		for _, t := range f.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.OffsetFetchResponseTopicPartition, len(t.Partitions))
			for i, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, int16(p.ErrorCode)
				rp.Metadata = kmsg.StringPtr(p.Metadata)
				rt.Partitions[i] = rp
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(sess, seq, h, resp)
	})
	return nil
}

// offsetFetchGroups serves v8+: each group from its shard, the response once all have answered.
func (s *Server) offsetFetchGroups(sess *core.Session, seq uint64, h header, req *kmsg.OffsetFetchRequest) {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
	done := gather(len(req.Groups), func() { respond(sess, seq, h, resp) })
	for i, g := range req.Groups {
		fr := groups.FetchRequest{Version: h.version, Group: g.Group, RequireStable: req.RequireStable,
			Topics: fetchTopics(g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) (string, []int32) { return t.Topic, t.Partitions })}
		s.coordinator.FetchOffsets(fr, func(f groups.FetchResponse) {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, int16(f.ErrorCode)
			rg.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, len(f.Topics))
			for j, t := range f.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.Topic
				rt.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, len(t.Partitions))
				for k, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, int16(p.ErrorCode)
					rp.Metadata = kmsg.StringPtr(p.Metadata)
					rt.Partitions[k] = rp
				}
				rg.Topics[j] = rt
			}
			resp.Groups[i] = rg
			done()
		})
	}
}

// fetchTopics is the coordinator's form of a request's topics; nil (every committed offset) stays
// nil.
func fetchTopics[T any](topics []T, parts func(T) (string, []int32)) []groups.FetchTopic {
	if topics == nil {
		return nil
	}
	out := make([]groups.FetchTopic, len(topics))
	for i, t := range topics {
		name, ps := parts(t)
		out[i] = groups.FetchTopic{Topic: name, Partitions: ps}
	}
	return out
}
