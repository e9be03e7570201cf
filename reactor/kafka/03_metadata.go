package kafka

// Metadata (key 3), versions 0-12.
//
// Topic lists: in v0 an empty list means every topic; from v1 a null list means every topic and
// an empty one none (librdkafka's first call sends an empty list and expects no topics). Missing
// topics are created when the request allows it (v4+; always in v0-v3, as in Kafka) and the
// broker's auto-creation is on. Each partition carries its leader epoch; the cluster id and
// controller are this node's.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

func (s *Server) metadata(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrMetadataResponse()
	clusterID := s.Broker.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = s.nodeID()
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: s.nodeID(), Host: s.AdvertisedHost, Port: s.AdvertisedPort}}

	var names []string
	all := req.Topics == nil || (h.version == 0 && len(req.Topics) == 0)
	if all {
		names = s.Broker.Snapshot().Names
	} else {
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	allowCreate := h.version < 4 || req.AllowAutoTopicCreation
	for _, name := range names {
		t := s.Broker.Snapshot().Topics[name]
		if t == nil && !all && allowCreate && s.Broker.AutoCreateTopics() {
			if err := cluster.ValidTopicName(name); err != nil {
				resp.Topics = append(resp.Topics, metadataTopicError(name, errcode.InvalidTopic))
				continue
			}
			if created, err := s.Broker.EnsureTopic(name); err == nil {
				t = created
			}
		}
		if t == nil {
			resp.Topics = append(resp.Topics, metadataTopicError(name, errcode.UnknownTopicOrPartition))
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t))
	}
	return resp, nil
}

func metadataTopicError(name string, code errcode.Code) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = &name
	t.ErrorCode = int16(code)
	return t
}

func (s *Server) metadataTopic(t *cluster.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	node := s.nodeID()
	for p, r := range t.Replicas {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(p)
		mp.Leader = node
		mp.LeaderEpoch = r.LeaderEpoch()
		mp.Replicas = []int32{node}
		mp.ISR = []int32{node}
		if r.Fenced() != nil {
			mp.ErrorCode = int16(errcode.KafkaStorageError)
			mp.OfflineReplicas = []int32{node}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
