package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Heartbeat handles a Heartbeat request: it keeps the member's session alive and tells it when a
// rebalance is under way. The reply comes at once.
func (s *Shard) Heartbeat(now time.Time, r HeartbeatRequest, reply func(errcode.Code)) {
	if r.Version < 3 {
		r.InstanceID = nil
	}
	reply(s.heartbeat(now, &r))
}

func (s *Shard) heartbeat(now time.Time, r *HeartbeatRequest) errcode.Code {
	if r.Group == "" {
		return errcode.InvalidGroupID
	}
	if !s.loaded {
		return errcode.CoordinatorLoadInProgress
	}
	g := s.groups[r.Group]
	if g == nil {
		return errcode.UnknownMemberID
	}
	if g.is(stateDead) {
		return errcode.CoordinatorNotAvailable
	}
	if code := g.validateMember(r.MemberID, r.InstanceID); code != errcode.None {
		return code
	}
	if r.Generation != g.generation {
		return errcode.IllegalGeneration
	}
	m := g.members[r.MemberID]
	switch g.state {
	case statePreparingRebalance:
		s.scheduleSession(now, g, m, m.sessionTimeout)
		return errcode.RebalanceInProgress
	case stateCompletingRebalance, stateStable:
		// Members heartbeat from their JoinGroup response on, before their SyncGroup is answered.
		s.scheduleSession(now, g, m, m.sessionTimeout)
		return errcode.None
	}
	return errcode.UnknownMemberID
}

// Leave handles a LeaveGroup request: members leave (v3+ batches them, and an administrator may
// remove a static member by instance id alone) and the group rebalances without them. The reply
// comes once what the departure wrote (the group's record when it becomes Empty) is durable.
func (s *Shard) Leave(now time.Time, r LeaveRequest, reply func(LeaveResponse)) {
	resp := s.leave(now, &r)
	if resp.ErrorCode != errcode.None {
		reply(resp)
		s.flush(now)
		return
	}
	s.afterDurable(func(_ time.Time, err error) {
		if err != nil {
			code := appendErrorCode(err)
			resp.ErrorCode = code
			for i := range resp.Members {
				if resp.Members[i].ErrorCode == errcode.None {
					resp.Members[i].ErrorCode = code
				}
			}
		}
		reply(resp)
	})
	s.flush(now)
}

func (s *Shard) leave(now time.Time, r *LeaveRequest) LeaveResponse {
	if r.Version < 3 {
		r.Members = []LeaveMember{{MemberID: r.MemberID}}
	}
	if r.Group == "" {
		return LeaveResponse{ErrorCode: errcode.InvalidGroupID}
	}
	if !s.loaded {
		return LeaveResponse{ErrorCode: errcode.CoordinatorLoadInProgress}
	}
	g := s.groups[r.Group]
	if g == nil {
		return LeaveResponse{ErrorCode: errcode.UnknownMemberID}
	}
	if g.is(stateDead) {
		return LeaveResponse{ErrorCode: errcode.CoordinatorNotAvailable}
	}
	resp := LeaveResponse{Members: make([]LeaveMemberResponse, 0, len(r.Members))}
	left := false
	for _, lm := range r.Members {
		code := errcode.None
		switch {
		case lm.MemberID == "":
			id, ok := "", false
			if lm.InstanceID != nil {
				id, ok = g.static[*lm.InstanceID]
			}
			if ok {
				s.removeMember(g, id)
			} else {
				code = errcode.UnknownMemberID
			}
		case g.pending[lm.MemberID] != nil:
			s.removePending(g, lm.MemberID)
		default:
			if code = g.validateMember(lm.MemberID, lm.InstanceID); code == errcode.None {
				s.removeMember(g, lm.MemberID)
			}
		}
		left = left || code == errcode.None
		resp.Members = append(resp.Members, LeaveMemberResponse{MemberID: lm.MemberID, InstanceID: lm.InstanceID, ErrorCode: code})
	}
	if left {
		switch g.state {
		case stateStable, stateCompletingRebalance:
			s.maybePrepareRebalanceOrCompleteJoin(now, g)
		case statePreparingRebalance:
			s.maybeCompleteJoinPhase(now, g)
		}
	}
	s.forgetIfUnused(g)
	if r.Version < 3 && len(resp.Members) == 1 {
		// Versions 0-2 answer for their one member at the top.
		resp.ErrorCode = resp.Members[0].ErrorCode
		if resp.ErrorCode != errcode.None {
			resp.Members = nil
		}
	}
	return resp
}
