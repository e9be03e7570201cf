package kafka

// Metadata (key 3), versions 0-12.
//
// Topic lists: in v0 an empty list means every topic; from v1 a null list means every topic and
// an empty one none (librdkafka's first call sends an empty list and expects no topics). Missing
// topics are created when the request allows it (v4+; always in v0-v3, as in Kafka) and the
// broker's auto-creation is on, all of them together (see cluster.Broker.EnsureTopics for the
// limits).
//
// Brokers are the live nodes of the cluster at their Kafka listeners (this node at its own
// advertised address; a node without a Kafka listener is left out), the controller the active
// one. Each partition carries its leader, leader epoch, replicas and in-sync replicas as the
// metadata has them: LEADER_NOT_AVAILABLE while it has no leader, its fenced or unregistered
// replicas offline, and KAFKA_STORAGE_ERROR (this node offline) when this node's replica is
// fenced after a storage error.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
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
	resp.ControllerID = s.Broker.ControllerID()
	for _, b := range s.Brokers(s.Broker.Snapshot()) {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.ID, Host: b.Host, Port: b.Port})
	}

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
	snap := s.Broker.Snapshot()
	topics := make([]*cluster.Topic, len(names))
	codes := make([]errcode.Code, len(names))
	var missing []string
	var idx []int
	for i, name := range names {
		if topics[i] = snap.Topics[name]; topics[i] == nil {
			codes[i] = errcode.UnknownTopicOrPartition
			if !all && allowCreate && s.Broker.AutoCreateTopics() {
				missing = append(missing, name)
				idx = append(idx, i)
			}
		}
	}
	if len(missing) > 0 {
		// Created together, at most the broker's per-request number (the rest are refused with a
		// retriable code); every limit answers its own error code.
		created, errs := s.Broker.EnsureTopics(missing)
		for k := range missing {
			topics[idx[k]], codes[idx[k]] = created[k], errcode.Of(errs[k])
			if created[k] == nil && codes[idx[k]] == errcode.None {
				codes[idx[k]] = errcode.UnknownTopicOrPartition
			}
		}
	}
	for i, name := range names {
		if topics[i] == nil {
			resp.Topics = append(resp.Topics, metadataTopicError(name, codes[i]))
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(snap, topics[i]))
	}
	return resp, nil
}

func metadataTopicError(name string, code errcode.Code) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = &name
	t.ErrorCode = int16(code)
	return t
}

// metadataTopic describes a topic's partitions as snap has them. A topic created after snap was
// taken (auto-created by this request) is described from the topic itself, with snap's nodes.
func (s *Server) metadataTopic(snap *cluster.Snapshot, t *cluster.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	self := s.nodeID()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for p := range t.Partitions {
		pa := &t.Partitions[p]
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(p)
		mp.Leader = pa.Leader
		mp.LeaderEpoch = pa.LeaderEpoch
		mp.Replicas = pa.Replicas
		mp.ISR = pa.ISR
		mp.OfflineReplicas = core.OfflineReplicas(snap, pa)
		if pa.Leader == meta.NoLeader {
			mp.ErrorCode = int16(errcode.LeaderNotAvailable)
		}
		if p < len(t.Replicas) && t.Replicas[p] != nil && t.Replicas[p].Fenced() != nil {
			mp.ErrorCode = int16(errcode.KafkaStorageError)
			if !slices.Contains(mp.OfflineReplicas, self) {
				mp.OfflineReplicas = append(mp.OfflineReplicas, self)
			}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
