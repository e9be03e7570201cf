package kafka

// The control-plane APIs, each decoded and encoded with kmsg, served on their own goroutine:
//
//	ListOffsets (2)      v1-7  earliest (-2), latest (-1), max timestamp (-3, v7), or the first
//	                           offset at or after a timestamp, through the time index; on the
//	                           partition's leader (NOT_LEADER_OR_FOLLOWER elsewhere)
//	CreateTopics (19)    v0-7  partitions, replication factor, replica assignment, configs,
//	                           validate-only
//	DeleteTopics (20)    v0-5
//	DeleteRecords (21)   v0-2  raises the log start offset (-1: the high watermark), on the
//	                           partition's leader; internal topics refuse it
//	                           (INVALID_TOPIC_EXCEPTION, as Kafka)
//	InitProducerId (22)  v0-4  a fresh producer id, epoch 0, for idempotent producers
//
// The others have files of their own: FindCoordinator (10), DescribeConfigs (32), AlterConfigs
// (33), DescribeLogDirs (35), CreatePartitions (37), IncrementalAlterConfigs (44),
// DescribeCluster (60) and DescribeProducers (61); the group APIs are served on the event loop by
// the coordinator (groups.go).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

// timestampMax is ListOffsets' "offset of the record with the largest timestamp" (KIP-734).
const timestampMax = -3

func (s *Server) listOffsets(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp, rp.Offset, rp.LeaderEpoch = -1, -1, -1
			route := s.Broker.Route(t.Topic, p.Partition)
			r := route.Replica
			switch {
			case r == nil:
				// NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
				rp.ErrorCode = int16(route.Code)
			case p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < route.LeaderEpoch:
				rp.ErrorCode = int16(errcode.FencedLeaderEpoch)
			case p.CurrentLeaderEpoch > route.LeaderEpoch:
				rp.ErrorCode = int16(errcode.UnknownLeaderEpoch)
			default:
				ts := p.Timestamp
				if ts == timestampMax {
					ts = r.MaxTimestamp()
					if ts < 0 {
						break // empty log: offset -1, timestamp -1
					}
				}
				offset, timestamp, err := core.OffsetAt(r, ts)
				rp.ErrorCode, _ = codeOf(err)
				rp.Offset, rp.Timestamp = offset, timestamp
				if rp.ErrorCode == 0 && rp.Offset >= 0 {
					rp.LeaderEpoch = route.LeaderEpoch
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) createTopics(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrCreateTopicsResponse()
	// Every topic is checked first and the valid ones are created together: the request's limits
	// apply to all of them, and the metadata is written once.
	errs := make([]error, len(req.Topics))
	var specs []cluster.TopicSpec
	var idx []int
	seen := map[string]bool{}
	for i, t := range req.Topics {
		var err error
		switch {
		case seen[t.Topic]:
			err = errcode.New(errcode.InvalidRequest, "topic %q appears twice in the request", t.Topic)
		case len(t.ReplicaAssignment) > 0 && (t.NumPartitions != -1 || t.ReplicationFactor != -1):
			err = errcode.New(errcode.InvalidRequest, "give either a replica assignment or partitions and replication factor, not both")
		default:
			partitions, rf := t.NumPartitions, t.ReplicationFactor
			if len(t.ReplicaAssignment) > 0 {
				partitions, rf = int32(len(t.ReplicaAssignment)), int16(len(t.ReplicaAssignment[0].Replicas))
				for k, a := range t.ReplicaAssignment {
					if err == nil {
						err = s.assignmentError(k, a.Replicas)
					}
				}
			}
			configs := map[string]string{}
			for _, c := range t.Configs {
				if c.Value != nil {
					configs[c.Name] = *c.Value
				}
			}
			if err == nil {
				specs = append(specs, cluster.TopicSpec{Name: t.Topic, Partitions: partitions, ReplicationFactor: rf, Configs: configs})
				idx = append(idx, i)
			}
		}
		seen[t.Topic] = true
		errs[i] = err
	}
	if len(specs) > 0 {
		for k, err := range s.Broker.CreateTopics(specs, req.ValidateOnly) {
			errs[idx[k]] = err
		}
	}
	for i, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		err := errs[i]
		rt.ErrorCode, rt.ErrorMessage = codeOf(err)
		if h.version < 1 {
			rt.ErrorMessage = nil
		}
		if err == nil {
			if created := s.Broker.Snapshot().Topics[t.Topic]; created != nil && !req.ValidateOnly {
				rt.TopicID = created.ID
				rt.NumPartitions = int32(len(created.Partitions))
				rt.ReplicationFactor = created.ReplicationFactor
				for _, kv := range created.Config.Effective() {
					c := kmsg.NewCreateTopicsResponseTopicConfig()
					c.Name = kv[0]
					v := kv[1]
					c.Value = &v
					c.Source = int8(s.topicConfigSource(created.Config, kv[0]))
					rt.Configs = append(rt.Configs, c)
				}
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// assignmentError checks one replica assignment of CreateTopics or CreatePartitions (entry k):
// every node it names must be registered, and only a single node takes assignments (naming
// itself): the controller places the replicas of a cluster.
func (s *Server) assignmentError(k int, replicas []int32) error {
	snap := s.Broker.Snapshot()
	for _, node := range replicas {
		if snap.Node(node) == nil {
			return errcode.New(errcode.InvalidReplicaAssignment, "assignment %d names node %d, which does not exist", k, node)
		}
	}
	if s.Broker.Clustered() {
		return errcode.New(errcode.InvalidReplicaAssignment,
			"the controller places the replicas of a cluster: give a partition count and replication factor instead of an assignment")
	}
	return nil
}

func (s *Server) deleteTopics(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrDeleteTopicsResponse()
	for _, name := range req.TopicNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		n := name
		rt.Topic = &n
		err := s.Broker.DeleteTopic(name)
		rt.ErrorCode, rt.ErrorMessage = codeOf(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (s *Server) deleteRecords(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrDeleteRecordsResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.LowWatermark = -1
			start, err := s.Broker.DeleteRecords(t.Topic, p.Partition, p.Offset)
			rp.ErrorCode, _ = codeOf(err)
			rp.LowWatermark = start
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// transactionalIDAuthorizationFailed is Kafka's TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the answer
// to a transactional InitProducerId, since transactions are not supported.
const transactionalIDAuthorizationFailed = 53

func (s *Server) initProducerID(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = transactionalIDAuthorizationFailed
		return resp, nil
	}
	// An idempotent producer always gets a fresh id with epoch 0 (also when it asks to bump the
	// epoch of the id it had, KIP-360): sequences start again at 0 under the new id.
	id, err := s.Broker.NewProducerID()
	if err != nil {
		resp.ErrorCode, _ = codeOf(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
