package core

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// The binary protocol's group administration: ListGroups, DescribeGroups and DeleteGroups. Each
// hands its groups to the coordinator and answers from the replies, which arrive on the groups'
// shard goroutines (several at once for a request naming groups of different shards); nothing
// here blocks the event loop.

// groupAdmin is what these APIs ask of the group coordinator (*groups.Coordinator). Its methods
// never block, and call reply exactly once, from any goroutine.
type groupAdmin interface {
	List(states []string, reply func([]groups.ListedGroup, errcode.Code))
	Describe(group string, reply func(groups.DescribedGroup))
	DeleteGroup(group string, reply func(errcode.Code))
}

func (s *Server) listGroups(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.ListGroupsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	coord := s.groupCoordinator()
	if coord == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	corrID := hdr.CorrelationID
	// The states belong to the coordinator from the call on; req aliases nothing of the frame.
	coord.List(req.States, func(listed []groups.ListedGroup, code errcode.Code) {
		resp := proto.ListGroupsResponse{ErrorCode: int16(code)}
		if code != errcode.None {
			resp.ErrorMessage = groupErrorMessage(code, "")
		}
		resp.Groups = make([]proto.ListedGroup, 0, len(listed))
		for _, g := range listed {
			resp.Groups = append(resp.Groups, proto.ListedGroup{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State})
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

func (s *Server) describeGroups(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.DescribeGroupsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	coord := s.groupCoordinator()
	if coord == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	resp := &proto.DescribeGroupsResponse{Groups: make([]proto.DescribedGroup, len(req.Groups))}
	corrID := hdr.CorrelationID
	done := gatherReplies(len(req.Groups), func() { sess.Complete(seq, bodyResponse(corrID, resp)) })
	for i, name := range req.Groups {
		coord.Describe(name, func(d groups.DescribedGroup) {
			// Each reply fills its own element; gatherReplies orders them before the encoding.
			resp.Groups[i] = describedGroup(name, d)
			done()
		})
	}
}

// describedGroup is the wire form of one group the coordinator described. It runs on the group's
// shard goroutine; the member metadata and assignments, which the shard shares with its state,
// are copied, since the response is encoded later on another goroutine.
func describedGroup(name string, d groups.DescribedGroup) proto.DescribedGroup {
	g := proto.DescribedGroup{
		ErrorCode: int16(d.ErrorCode), Group: name, State: d.State,
		ProtocolType: d.ProtocolType, Protocol: d.Protocol,
	}
	if d.ErrorCode != errcode.None {
		g.ErrorMessage = groupErrorMessage(d.ErrorCode, name)
		if g.State == "" {
			g.State = "Dead"
		}
		return g
	}
	g.Members = make([]proto.DescribedMember, 0, len(d.Members))
	for _, m := range d.Members {
		g.Members = append(g.Members, proto.DescribedMember{
			MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost,
			Metadata: nonNil(bytes.Clone(m.Metadata)), Assignment: nonNil(bytes.Clone(m.Assignment)),
		})
	}
	return g
}

// nonNil sends a member's missing metadata or assignment as empty bytes: null is not used.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *Server) deleteGroups(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.DeleteGroupsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	coord := s.groupCoordinator()
	if coord == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	resp := &proto.DeleteGroupsResponse{Topics: make([]proto.TopicError, len(req.Groups))}
	corrID := hdr.CorrelationID
	done := gatherReplies(len(req.Groups), func() { sess.Complete(seq, bodyResponse(corrID, resp)) })
	seen := make(map[string]bool, len(req.Groups))
	for i, name := range req.Groups {
		resp.Topics[i].Name = name
		if seen[name] {
			resp.Topics[i].ErrorCode = int16(errcode.InvalidRequest)
			resp.Topics[i].ErrorMessage = fmt.Sprintf("group %q appears twice in the request", name)
			done()
			continue
		}
		seen[name] = true
		coord.DeleteGroup(name, func(code errcode.Code) {
			resp.Topics[i].ErrorCode = int16(code)
			if code != errcode.None {
				resp.Topics[i].ErrorMessage = groupErrorMessage(code, name)
			}
			done()
		})
	}
}

// gatherReplies returns a function to call once per reply; the n-th call runs last. With n == 0
// last runs at once. The mutex orders every reply's writes before last reads them.
func gatherReplies(n int, last func()) func() {
	if n == 0 {
		last()
		return func() {}
	}
	var mu sync.Mutex
	left := n
	return func() {
		mu.Lock()
		left--
		finished := left == 0
		mu.Unlock()
		if finished {
			last()
		}
	}
}

// groupErrorMessage explains a coordinator's code for one group (group "" for the whole request).
func groupErrorMessage(code errcode.Code, group string) string {
	switch code {
	case errcode.GroupIDNotFound:
		return fmt.Sprintf("group %q does not exist", group)
	case errcode.NonEmptyGroup:
		return fmt.Sprintf("group %q has members: it can be deleted once they have left", group)
	case errcode.InvalidGroupID:
		return "the group id is empty"
	case errcode.CoordinatorLoadInProgress:
		return "the group coordinator is loading its state"
	case errcode.CoordinatorNotAvailable:
		return "the group coordinator is not available"
	case errcode.NotCoordinator:
		return "this node is not the group's coordinator: look it up again"
	}
	return ""
}

// groupCoordinator is the coordinator the group APIs use, nil while the broker has none.
func (s *Server) groupCoordinator() groupAdmin {
	if s.coordinator == nil {
		return nil // not a typed nil in the interface
	}
	return s.coordinator
}
