package kafka

// FindCoordinator (key 10), versions 0-4: a group's coordinator is the node that leads its
// partition of the offsets topic (abs(javaStringHash(group)) % partitions, as Kafka places
// groups), at its Kafka listener; a single node coordinates every group. COORDINATOR_NOT_AVAILABLE
// while the partition has no leader, or the offsets topic does not exist yet — whose creation the
// request asks for, as Kafka's does; clients retry. Version 4 batches the keys, each answered on
// its own. Transactions are not supported: a transaction coordinator is never available.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
)

func (s *Server) findCoordinator(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrFindCoordinatorResponse()
	answer := func(key string) (id int32, host string, port int32, code int16, msg *string) {
		if req.CoordinatorType != 0 {
			m := "transactions are not supported"
			return -1, "", -1, int16(errcode.CoordinatorNotAvailable), &m
		}
		addr, c, m := s.GroupCoordinator(s.coordinator, key)
		if c != errcode.None {
			return -1, "", -1, int16(c), &m
		}
		return addr.ID, addr.Host, addr.Port, 0, nil
	}
	if h.version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = answer(key)
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
	return resp, nil
}
