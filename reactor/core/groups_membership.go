package core

import (
	"bytes"
	"fmt"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// The binary protocol's group membership: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, and
// the membership fields of OffsetCommit version 2. Each request becomes the coordinator's request
// for the Kafka version whose behaviour the binary protocol has (below), so a member behaves the
// same on both listeners and both kinds share groups. The coordinator never blocks the loop:
// replies come later, on the group's shard goroutine, and complete the request's session slot.

// The Kafka versions whose semantics the binary protocol's group APIs have: member ids handed out
// with MEMBER_ID_REQUIRED, static membership, a static leader told to keep its assignment
// (KIP-814), protocol type and name checked in SyncGroup, batched LeaveGroup, and ILLEGAL_GENERATION
// for a member's commit to a group the coordinator does not know.
const (
	joinVersion   int16 = 9
	syncVersion   int16 = 5
	beatVersion   int16 = 4
	leaveVersion  int16 = 5
	commitVersion int16 = 8
)

// noGroupCoordinator is the answer to a group request when the broker runs without a coordinator.
func noGroupCoordinator(sess *Session, seq uint64, hdr proto.RequestHeader) {
	sess.Complete(seq, errorResponse(hdr.CorrelationID, errcode.CoordinatorNotAvailable, "the group coordinator is not available"))
}

// optionalString is the coordinator's form of a protocol name or type that may be left out: nil
// for "".
func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func stringOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *Server) joinGroup(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.JoinGroupRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	r := groups.JoinRequest{
		Version:          joinVersion,
		Group:            req.Group,
		SessionTimeout:   time.Duration(req.SessionTimeoutMs) * time.Millisecond,
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMs) * time.Millisecond,
		MemberID:         req.MemberID,
		InstanceID:       req.InstanceID,
		ProtocolType:     req.ProtocolType,
		Protocols:        make([]groups.Protocol, len(req.Protocols)),
		Reason:           req.Reason,
		ClientID:         req.ClientID,
		ClientHost:       sess.ClientHost(),
	}
	for i, p := range req.Protocols {
		// The metadata aliases the frame, which is released when this returns; the coordinator
		// keeps it as long as the member lives.
		r.Protocols[i] = groups.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	corrID := hdr.CorrelationID
	s.coordinator.Join(r, func(jr groups.JoinResponse) {
		resp := proto.JoinGroupResponse{
			ErrorCode:      int16(jr.ErrorCode),
			Generation:     jr.Generation,
			ProtocolType:   stringOrEmpty(jr.ProtocolType),
			ProtocolName:   stringOrEmpty(jr.ProtocolName),
			Leader:         jr.Leader,
			SkipAssignment: jr.SkipAssignment,
			MemberID:       jr.MemberID,
			Members:        make([]proto.JoinGroupMember, len(jr.Members)),
		}
		for i, m := range jr.Members {
			// Encoded here, on the shard goroutine, while the shard's slices are still current.
			resp.Members[i] = proto.JoinGroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: m.Metadata}
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

func (s *Server) syncGroup(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.SyncGroupRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	r := groups.SyncRequest{
		Version:      syncVersion,
		Group:        req.Group,
		Generation:   req.Generation,
		MemberID:     req.MemberID,
		InstanceID:   req.InstanceID,
		ProtocolType: optionalString(req.ProtocolType),
		ProtocolName: optionalString(req.ProtocolName),
	}
	if len(req.Assignments) > 0 {
		r.Assignments = make([]groups.SyncAssignment, len(req.Assignments))
		for i, a := range req.Assignments {
			r.Assignments[i] = groups.SyncAssignment{MemberID: a.MemberID, Assignment: bytes.Clone(a.Assignment)}
		}
	}
	corrID := hdr.CorrelationID
	s.coordinator.Sync(r, func(sr groups.SyncResponse) {
		resp := proto.SyncGroupResponse{
			ErrorCode:    int16(sr.ErrorCode),
			ProtocolType: stringOrEmpty(sr.ProtocolType),
			ProtocolName: stringOrEmpty(sr.ProtocolName),
			Assignment:   sr.Assignment,
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

func (s *Server) heartbeat(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.HeartbeatRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	r := groups.HeartbeatRequest{
		Version:    beatVersion,
		Group:      req.Group,
		Generation: req.Generation,
		MemberID:   req.MemberID,
		InstanceID: req.InstanceID,
	}
	corrID := hdr.CorrelationID
	s.coordinator.Heartbeat(r, func(code errcode.Code) {
		sess.Complete(seq, bodyResponse(corrID, &proto.HeartbeatResponse{ErrorCode: int16(code)}))
	})
}

func (s *Server) leaveGroup(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.LeaveGroupRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		noGroupCoordinator(sess, seq, hdr)
		return
	}
	r := groups.LeaveRequest{Version: leaveVersion, Group: req.Group, Members: make([]groups.LeaveMember, len(req.Members))}
	for i, m := range req.Members {
		r.Members[i] = groups.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Reason: m.Reason}
	}
	corrID := hdr.CorrelationID
	s.coordinator.Leave(r, func(lr groups.LeaveResponse) {
		resp := proto.LeaveGroupResponse{ErrorCode: int16(lr.ErrorCode), Members: make([]proto.LeaveGroupMemberResponse, len(lr.Members))}
		for i, m := range lr.Members {
			resp.Members[i] = proto.LeaveGroupMemberResponse{MemberID: m.MemberID, InstanceID: m.InstanceID, ErrorCode: int16(m.ErrorCode)}
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

// commitMembership is the coordinator's view of an OffsetCommit request's membership: version 1
// commits from outside group management (generation -1, no member), version 2 as the member it
// names.
func commitMembership(req *proto.OffsetCommitRequest) (version int16, generation int32, memberID string, instanceID *string) {
	if req.Version < 2 {
		return commitVersion, -1, "", nil
	}
	return commitVersion, req.Generation, req.MemberID, req.InstanceID
}

// memberCommitMessage explains the coordinator's code for a member's commit.
func memberCommitMessage(code errcode.Code, r *groups.CommitRequest) string {
	switch code {
	case errcode.IllegalGeneration:
		return fmt.Sprintf("generation %d is not group %q's current one: rejoin", r.Generation, r.Group)
	case errcode.UnknownMemberID:
		return fmt.Sprintf("group %q has no member %q: rejoin", r.Group, r.MemberID)
	case errcode.RebalanceInProgress:
		return fmt.Sprintf("group %q is rebalancing: rejoin, then commit", r.Group)
	case errcode.FencedInstanceID:
		return fmt.Sprintf("another member of group %q has instance id %q", r.Group, stringOrEmpty(r.InstanceID))
	}
	return offsetsErrorMessage(code, r.Group)
}
