package kafka

// Heartbeat (key 12), versions 0-4.
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin. v3 adds the instance
// id of a static member.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) heartbeat(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	r := groups.HeartbeatRequest{Version: h.version, Group: req.Group, Generation: req.Generation, MemberID: req.MemberID}
	if h.version >= 3 {
		r.InstanceID = req.InstanceID
	}
	s.coordinator.Heartbeat(r, func(code errcode.Code) {
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.ErrorCode = int16(code)
		respond(sess, seq, h, resp)
	})
	return nil
}
