package kafka

// DescribeProducers (key 61), version 0.
//
// For each partition asked for, the idempotent producers whose state it keeps (the ones whose
// retries it still recognises): producer id, epoch, the sequence of its last record, and the
// broker time of its last append. Transactions are not supported, so the coordinator epoch and
// the current transaction's start offset are always -1. The state belongs to the partition's
// writer goroutine and is read there (cluster.Replica.Producers); a partition another node leads
// is answered NOT_LEADER_OR_FOLLOWER, as Kafka does.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) describeProducers(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDescribeProducersRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrDescribeProducersResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			route := s.Broker.Route(t.Topic, p)
			r := route.Replica
			if r == nil {
				// The leader keeps the producers' state: NOT_LEADER_OR_FOLLOWER on another node.
				rp.ErrorCode, rp.ErrorMessage = codeOf(core.RouteError(route.Code))
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			producers, err := r.Producers()
			if err != nil {
				rp.ErrorCode, rp.ErrorMessage = codeOf(err)
			}
			for _, pi := range producers {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID = pi.ID
				ap.ProducerEpoch = int32(pi.Epoch)
				ap.LastSequence = pi.LastSequence
				ap.LastTimestamp = pi.LastTimestamp
				ap.CoordinatorEpoch = -1
				ap.CurrentTxnStartOffset = -1
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
