package kafka

// LeaveGroup (key 13), versions 0-5.
//
// v0-v2 name one member, whose outcome is the response's error code; v3 batches members (by
// member id, or a static member by instance id alone) with an outcome each; v5 adds a reason.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) leaveGroup(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	r := groups.LeaveRequest{Version: h.version, Group: req.Group}
	if h.version < 3 {
		r.MemberID = req.MemberID
	} else {
		r.Members = make([]groups.LeaveMember, len(req.Members))
		for i, m := range req.Members {
			r.Members[i] = groups.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Reason: orEmpty(m.Reason)}
		}
	}
	s.coordinator.Leave(r, func(lr groups.LeaveResponse) {
		resp := kmsg.NewPtrLeaveGroupResponse()
		resp.ErrorCode = int16(lr.ErrorCode)
		if h.version >= 3 && len(lr.Members) > 0 {
			resp.Members = make([]kmsg.LeaveGroupResponseMember, len(lr.Members))
			for i, m := range lr.Members {
				km := kmsg.NewLeaveGroupResponseMember()
				km.MemberID, km.InstanceID, km.ErrorCode = m.MemberID, m.InstanceID, int16(m.ErrorCode)
				resp.Members[i] = km
			}
		}
		respond(sess, seq, h, resp)
	})
	return nil
}
