package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Join handles a JoinGroup request. reply is called once: at once for an error, a
// MEMBER_ID_REQUIRED or a rejoin that changes nothing, else when the join phase of the rebalance
// completes (or the member is removed or fenced meanwhile).
func (s *Shard) Join(now time.Time, r JoinRequest, reply func(JoinResponse)) {
	if code := s.validateJoin(&r); code != errcode.None {
		reply(JoinResponse{ErrorCode: code, Generation: -1, MemberID: r.MemberID})
		return
	}
	g := s.groups[r.Group]
	if g == nil {
		if r.MemberID != "" {
			reply(JoinResponse{ErrorCode: errcode.UnknownMemberID, Generation: -1, MemberID: r.MemberID})
			return
		}
		g = newGroup(r.Group)
		g.stateTime = now
		s.groups[g.id] = g
	}
	switch {
	case !s.acceptJoiningMember(g, r.MemberID):
		s.removePending(g, r.MemberID)
		if _, ok := g.members[r.MemberID]; ok {
			s.removeMember(g, r.MemberID)
			s.maybeCompleteJoinPhase(now, g)
		}
		reply(JoinResponse{ErrorCode: errcode.GroupMaxSizeReached, Generation: -1})
	case r.MemberID == "":
		s.joinNewMember(now, &r, g, reply)
	default:
		s.joinExistingMember(now, &r, g, reply)
	}
	s.forgetIfUnused(g)
	s.flush(now)
}

// validateJoin checks what does not depend on the group, normalising r for its version.
func (s *Shard) validateJoin(r *JoinRequest) errcode.Code {
	if r.Version < 5 {
		r.InstanceID = nil
	}
	if r.Group == "" || tooLong(r.Group) {
		return errcode.InvalidGroupID
	}
	if r.SessionTimeout < s.cfg.MinSessionTimeout || r.SessionTimeout > s.cfg.MaxSessionTimeout {
		return errcode.InvalidSessionTimeout
	}
	if r.RebalanceTimeout <= 0 {
		r.RebalanceTimeout = r.SessionTimeout
	}
	if tooLong(r.MemberID) || tooLong(r.ClientID) || tooLong(r.ClientHost) || tooLong(r.ProtocolType) ||
		(r.InstanceID != nil && tooLong(*r.InstanceID)) {
		return errcode.InvalidRequest
	}
	size := 0
	for _, p := range r.Protocols {
		if tooLong(p.Name) {
			return errcode.InvalidRequest
		}
		size += len(p.Name) + len(p.Metadata)
		if size > s.cfg.MaxProtocolMetadataBytes {
			return errcode.InvalidRequest
		}
	}
	r.Protocols = uniqueProtocols(r.Protocols)
	if !s.loaded {
		return errcode.CoordinatorLoadInProgress
	}
	return errcode.None
}

// acceptJoiningMember applies group.max.size. While PreparingRebalance it counts the members that
// have rejoined, so the last ones to rejoin are the ones left out when the limit was lowered.
func (s *Shard) acceptJoiningMember(g *group, memberID string) bool {
	m := g.members[memberID]
	switch g.state {
	case statePreparingRebalance:
		return (m != nil && m.awaitingJoin()) || g.awaitingJoin < s.cfg.MaxGroupSize
	case stateCompletingRebalance, stateStable:
		return m != nil || len(g.members) < s.cfg.MaxGroupSize
	}
	return true
}

func (s *Shard) joinNewMember(now time.Time, r *JoinRequest, g *group, reply func(JoinResponse)) {
	switch {
	case g.is(stateDead):
		reply(JoinResponse{ErrorCode: errcode.CoordinatorNotAvailable, Generation: -1})
		return
	case !g.supportsProtocols(r.ProtocolType, r.Protocols):
		reply(JoinResponse{ErrorCode: errcode.InconsistentGroupProtocol, Generation: -1})
		return
	}
	if r.InstanceID != nil {
		newID := s.newMemberID(*r.InstanceID)
		if oldID, ok := g.static[*r.InstanceID]; ok {
			s.replaceStatic(now, r, g, oldID, newID, reply)
			return
		}
		s.addMemberAndRebalance(now, r, g, newID, reply)
		return
	}
	newID := s.newMemberID(r.ClientID)
	if r.Version < 4 {
		s.addMemberAndRebalance(now, r, g, newID, reply)
		return
	}
	// v4+: hand out the id and wait for the member to come back with it, so that a client whose
	// first response is lost does not leave a member behind in the group.
	for len(g.pending) >= s.cfg.MaxPendingMembers {
		s.removePending(g, g.oldestPending().id)
	}
	p := &pendingMember{id: newID}
	p.session = newTimer(func(now time.Time) { s.expirePending(now, g, p) })
	g.addPending(p)
	s.timers.schedule(p.session, now.Add(r.SessionTimeout))
	reply(JoinResponse{ErrorCode: errcode.MemberIDRequired, Generation: -1, MemberID: newID})
	if g.is(statePreparingRebalance) && g.hasAllMembersJoined() {
		s.completeJoin(now, g) // an evicted id may have been the last one awaited
	}
}

func (s *Shard) joinExistingMember(now time.Time, r *JoinRequest, g *group, reply func(JoinResponse)) {
	fail := func(code errcode.Code) {
		reply(JoinResponse{ErrorCode: code, Generation: -1, MemberID: r.MemberID})
	}
	switch {
	case g.is(stateDead):
		fail(errcode.CoordinatorNotAvailable)
		return
	case !g.supportsProtocols(r.ProtocolType, r.Protocols):
		fail(errcode.InconsistentGroupProtocol)
		return
	}
	if _, ok := g.pending[r.MemberID]; ok {
		if r.InstanceID != nil {
			// Ids are handed out to dynamic members only; Kafka refuses this as well.
			fail(errcode.InvalidRequest)
			return
		}
		s.removePending(g, r.MemberID)
		s.addMemberAndRebalance(now, r, g, r.MemberID, reply)
		return
	}
	if code := g.validateMember(r.MemberID, r.InstanceID); code != errcode.None {
		fail(code)
		return
	}
	m := g.members[r.MemberID]
	switch g.state {
	case statePreparingRebalance:
		s.updateMemberAndRebalance(now, r, g, m, reply)
	case stateCompletingRebalance:
		if m.matches(r.Protocols) {
			// The member lost the JoinGroup response: give it again.
			reply(g.joinResponse(m.id, g.isLeader(m.id)))
			return
		}
		s.updateMemberAndRebalance(now, r, g, m, reply)
	case stateStable:
		// The leader rejoining forces a rebalance: it is how a leader reacts to metadata changes
		// (new partitions) that no member's subscription shows.
		if g.isLeader(m.id) || !m.matches(r.Protocols) {
			s.updateMemberAndRebalance(now, r, g, m, reply)
			return
		}
		reply(g.joinResponse(m.id, false))
	default:
		fail(errcode.UnknownMemberID)
	}
}

func (s *Shard) addMemberAndRebalance(now time.Time, r *JoinRequest, g *group, id string, reply func(JoinResponse)) {
	m := &member{
		id:               id,
		instanceID:       r.InstanceID,
		clientID:         r.ClientID,
		clientHost:       r.ClientHost,
		rebalanceTimeout: r.RebalanceTimeout,
		sessionTimeout:   r.SessionTimeout,
		protocolType:     r.ProtocolType,
		protocols:        r.Protocols,
		isNew:            true,
	}
	if g.is(statePreparingRebalance) && g.previousState == stateEmpty {
		g.newMemberAdded = true
	}
	g.add(m, reply, r.Version)
	// A new member cannot heartbeat while its JoinGroup is parked, and its client may have given up
	// on it: it stays only NewMemberJoinTimeout unless the join phase completes.
	s.scheduleSession(now, g, m, s.cfg.NewMemberJoinTimeout)
	s.maybePrepareRebalanceOrCompleteJoin(now, g)
}

func (s *Shard) updateMemberAndRebalance(now time.Time, r *JoinRequest, g *group, m *member, reply func(JoinResponse)) {
	g.updateMember(m, r.Protocols, r.RebalanceTimeout, r.SessionTimeout, reply, r.Version)
	s.maybePrepareRebalanceOrCompleteJoin(now, g)
}

// replaceStatic lets a static member that restarted (known instance id, no member id) take over
// its old member id, in any state. While Stable with the selected protocol unchanged there is no
// rebalance: the group's record is rewritten with the new id and the member gets the current
// generation once it is durable.
func (s *Shard) replaceStatic(now time.Time, r *JoinRequest, g *group, oldID, newID string, reply func(JoinResponse)) {
	instanceID := *r.InstanceID
	currentLeader := g.leader
	old, m := g.replaceStaticMember(instanceID, oldID, newID)
	s.timers.cancel(old.session)
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeout, m.sessionTimeout
	g.updateMember(m, r.Protocols, r.RebalanceTimeout, r.SessionTimeout, reply, r.Version)
	s.scheduleSession(now, g, m, m.sessionTimeout)

	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			s.prepareRebalance(now, g)
			return
		}
		generation := g.generation
		g.hasRecord = true
		s.emit(func(now time.Time, err error) {
			if !s.live(g, m) || !g.is(stateStable) || g.generation != generation {
				return // a rebalance took the member over, or it is gone: its reply is answered there
			}
			if err != nil {
				// Back to the old member id; the new process learns the coordinator failed.
				resp := g.joinResponse("", false)
				resp.ErrorCode, resp.Leader = appendErrorCode(err), currentLeader
				g.answerJoin(m, resp)
				g.updateMember(m, oldProtocols, oldRebalance, oldSession, nil, 0)
				_, back := g.replaceStaticMember(instanceID, m.id, oldID)
				s.timers.cancel(m.session)
				s.scheduleSession(now, g, back, back.sessionTimeout)
				return
			}
			if m.joinVersion >= 9 {
				// KIP-814: a static leader is told who the members are but keeps the assignment.
				leader := g.isLeader(m.id)
				resp := g.joinResponse(m.id, leader)
				resp.SkipAssignment = leader
				g.answerJoin(m, resp)
				return
			}
			// Older clients would reassign if told they lead: name the leader as it was.
			resp := g.joinResponse(m.id, false)
			resp.Leader = currentLeader
			g.answerJoin(m, resp)
		}, groupRecord(g))
	case stateCompletingRebalance:
		// The leader may be assigning for the old id: start over so the new id gets an assignment.
		s.prepareRebalance(now, g)
	case statePreparingRebalance:
		s.maybeCompleteJoinPhase(now, g)
	}
}
