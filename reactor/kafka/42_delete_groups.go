package kafka

// DeleteGroups (key 42), versions 0-2.
//
// Each group from its shard: a group with members is NON_EMPTY_GROUP, an unknown one
// GROUP_ID_NOT_FOUND; a deleted group's offsets and metadata are tombstoned before the answer.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) deleteGroups(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	done := gather(len(req.Groups), func() { respond(sess, seq, h, resp) })
	for i, name := range req.Groups {
		s.coordinator.DeleteGroup(name, func(code errcode.Code) {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = name, int16(code)
			resp.Groups[i] = g
			done()
		})
	}
	return nil
}
