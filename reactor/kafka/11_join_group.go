package kafka

// JoinGroup (key 11), versions 0-9.
//
// The coordinator's JoinGroup for the request's version: from v4 a first join without a member id
// is answered MEMBER_ID_REQUIRED with the id to rejoin with; v5 adds static members (instance
// id); v7 the protocol type in the response; v8 the reason; v9 tells a static leader that rejoined
// unchanged to keep its assignment. v0 has no rebalance timeout: the session timeout is used, as
// Kafka does. The reply waits for the rebalance (or the initial delay of a new group).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) joinGroup(sess *core.Session, seq uint64, h header, body []byte, clientID string) error {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	r := groups.JoinRequest{
		Version:        h.version,
		Group:          req.Group,
		SessionTimeout: millis(req.SessionTimeoutMillis),
		MemberID:       req.MemberID,
		ProtocolType:   req.ProtocolType,
		Protocols:      make([]groups.Protocol, len(req.Protocols)),
		Reason:         orEmpty(req.Reason),
		ClientID:       clientID,
		ClientHost:     sess.ClientHost(),
	}
	if h.version >= 1 {
		r.RebalanceTimeout = millis(req.RebalanceTimeoutMillis)
	}
	if h.version >= 5 {
		r.InstanceID = req.InstanceID
	}
	for i, p := range req.Protocols {
		r.Protocols[i] = groups.Protocol{Name: p.Name, Metadata: copyBytes(p.Metadata)}
	}
	s.coordinator.Join(r, func(jr groups.JoinResponse) {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.ErrorCode = int16(jr.ErrorCode)
		resp.Generation = jr.Generation
		resp.ProtocolType = jr.ProtocolType
		resp.Protocol = jr.ProtocolName
		resp.LeaderID = jr.Leader
		resp.SkipAssignment = jr.SkipAssignment
		resp.MemberID = jr.MemberID
		if len(jr.Members) > 0 {
			resp.Members = make([]kmsg.JoinGroupResponseMember, len(jr.Members))
			for i, m := range jr.Members {
				km := kmsg.NewJoinGroupResponseMember()
				km.MemberID, km.InstanceID, km.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
				resp.Members[i] = km
			}
		}
		respond(sess, seq, h, resp)
	})
	return nil
}
