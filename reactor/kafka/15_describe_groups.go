package kafka

// DescribeGroups (key 15), versions 0-5.
//
// Each group from its shard: state, protocol type, the selected protocol while Stable, members
// with client id and host, their metadata (while Stable) and assignment. A group the coordinator
// does not have is state "Dead" with no error, as Kafka answers below v6. v3 adds the authorized
// operations (every group operation: nothing is authorized) when asked, v4 the instance ids.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) describeGroups(sess *core.Session, seq uint64, h header, body []byte) error {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return err
	}
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(req.Groups))
	done := gather(len(req.Groups), func() { respond(sess, seq, h, resp) })
	for i, name := range req.Groups {
		s.coordinator.Describe(name, func(d groups.DescribedGroup) {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.State, g.ProtocolType, g.Protocol = name, d.State, d.ProtocolType, d.Protocol
			g.ErrorCode = int16(d.ErrorCode)
			if d.ErrorCode == errcode.GroupIDNotFound {
				g.ErrorCode = 0 // GROUP_ID_NOT_FOUND is v6's answer
			}
			if req.IncludeAuthorizedOperations {
				g.AuthorizedOperations = groupOperations
			}
			g.Members = make([]kmsg.DescribeGroupsResponseGroupMember, len(d.Members))
			for j, m := range d.Members {
				km := kmsg.NewDescribeGroupsResponseGroupMember()
				km.MemberID, km.InstanceID, km.ClientID, km.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				km.ProtocolMetadata, km.MemberAssignment = m.Metadata, m.Assignment
				g.Members[j] = km
			}
			resp.Groups[i] = g
			done()
		})
	}
	return nil
}
