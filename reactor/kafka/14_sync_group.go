package kafka

// SyncGroup (key 14), versions 0-5.
//
// The leader hands in every member's assignment; each member's reply carries its own once the
// leader's is durable. v3 adds the instance id; v5 the protocol type and name, checked against
// the group's and returned.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) syncGroup(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	r := groups.SyncRequest{
		Version:    h.version,
		Group:      req.Group,
		Generation: req.Generation,
		MemberID:   req.MemberID,
	}
	if h.version >= 3 {
		r.InstanceID = req.InstanceID
	}
	if h.version >= 5 {
		r.ProtocolType, r.ProtocolName = req.ProtocolType, req.Protocol
	}
	if len(req.GroupAssignment) > 0 {
		r.Assignments = make([]groups.SyncAssignment, len(req.GroupAssignment))
		for i, a := range req.GroupAssignment {
			r.Assignments[i] = groups.SyncAssignment{MemberID: a.MemberID, Assignment: copyBytes(a.MemberAssignment)}
		}
	}
	s.coordinator.Sync(r, func(sr groups.SyncResponse) {
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.ErrorCode = int16(sr.ErrorCode)
		resp.ProtocolType, resp.Protocol = sr.ProtocolType, sr.ProtocolName
		resp.MemberAssignment = sr.Assignment
		respond(sess, seq, h, resp)
	})
	return nil
}
