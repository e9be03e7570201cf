package kafka

// ListGroups (key 16), versions 0-5.
//
// Every shard's groups, in group id order. v4 filters by state (case-insensitive) and returns
// each group's state; v5 filters by type and returns it: every group here is "classic", so a type
// filter without it lists nothing. While a shard loads, the error is
// COORDINATOR_LOAD_IN_PROGRESS with the other shards' groups.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) listGroups(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	if h.version >= 5 && len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
		respond(sess, seq, h, kmsg.NewPtrListGroupsResponse())
		return nil
	}
	var states []string
	if h.version >= 4 {
		states = req.StatesFilter
	}
	s.coordinator.List(states, func(listed []groups.ListedGroup, code errcode.Code) {
		resp := kmsg.NewPtrListGroupsResponse()
		resp.ErrorCode = int16(code)
		resp.Groups = make([]kmsg.ListGroupsResponseGroup, len(listed))
		for i, g := range listed {
			kg := kmsg.NewListGroupsResponseGroup()
			kg.Group, kg.ProtocolType, kg.GroupState, kg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
			resp.Groups[i] = kg
		}
		respond(sess, seq, h, resp)
	})
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
