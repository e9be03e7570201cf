package kafka

// CreatePartitions (key 37), versions 0-3.
//
// Grows topics to the partition counts asked for (cluster.Broker.CreatePartitions: never
// shrinks, INVALID_PARTITIONS; the creation limits, POLICY_VIOLATION), or with validate_only
// checks that it could. A replica assignment, when given, must name one assignment per new
// partition, each this node alone, and a node of a cluster takes none since the controller places
// the replicas (INVALID_REPLICA_ASSIGNMENT otherwise). New partitions start
// empty at leader epoch 0 and show in Metadata at once.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

func (s *Server) createPartitions(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	snap := s.Broker.Snapshot()
	errs := make([]error, len(req.Topics))
	var specs []cluster.PartitionsSpec
	var idx []int
	for i, t := range req.Topics {
		if existing := snap.Topics[t.Topic]; existing != nil && t.Assignment != nil && int(t.Count) > len(existing.Partitions) {
			if err := s.checkAssignment(t, len(existing.Partitions)); err != nil {
				errs[i] = err
				continue
			}
		}
		specs = append(specs, cluster.PartitionsSpec{Topic: t.Topic, Count: t.Count})
		idx = append(idx, i)
	}
	if len(specs) > 0 {
		for k, err := range s.Broker.CreatePartitions(specs, req.ValidateOnly) {
			errs[idx[k]] = err
		}
	}
	resp := kmsg.NewPtrCreatePartitionsResponse()
	for i, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		rt.ErrorCode, rt.ErrorMessage = codeOf(errs[i])
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// checkAssignment checks the replica assignment of a topic that has current partitions: one
// entry per new partition, each naming this node once and nothing else (a cluster takes none:
// its controller places the replicas).
func (s *Server) checkAssignment(t kmsg.CreatePartitionsRequestTopic, current int) error {
	if want := int(t.Count) - current; len(t.Assignment) != want {
		return errcode.New(errcode.InvalidReplicaAssignment,
			"increasing the partitions of %q by %d takes %d assignments, the request has %d", t.Topic, want, want, len(t.Assignment))
	}
	for k, a := range t.Assignment {
		if err := s.assignmentError(k, a.Replicas); err != nil {
			return err
		}
		if len(a.Replicas) != 1 {
			return errcode.New(errcode.InvalidReplicaAssignment,
				"assignment %d has %d replicas; the topic's replication factor is 1 (one node)", k, len(a.Replicas))
		}
	}
	return nil
}
