package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// emptyConsumerAssignment is a ConsumerProtocolAssignment with no partitions (version 0, no
// topics, null user data). A member of a consumer group that the leader assigned nothing gets it
// instead of zero bytes, which some clients fail to decode. Other protocol types get the leader's
// bytes as they are: their format is not the coordinator's to know.
var emptyConsumerAssignment = []byte{0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}

// Sync handles a SyncGroup request. reply is called once: at once for an error or a Stable group,
// else when the leader's assignment for this generation is durable (or failed, or a rebalance
// started meanwhile).
func (s *Shard) Sync(now time.Time, r SyncRequest, reply func(SyncResponse)) {
	if r.Version < 3 {
		r.InstanceID = nil
	}
	if r.Version < 5 {
		r.ProtocolType, r.ProtocolName = nil, nil
	}
	fail := func(code errcode.Code) { reply(SyncResponse{ErrorCode: code}) }
	if r.Group == "" {
		fail(errcode.InvalidGroupID)
		return
	}
	if !s.loaded {
		fail(errcode.CoordinatorLoadInProgress)
		return
	}
	g := s.groups[r.Group]
	if g == nil || g.is(stateEmpty) {
		fail(errcode.UnknownMemberID)
		return
	}
	if code := s.validateSync(g, &r); code != errcode.None {
		fail(code)
		return
	}
	m := g.members[r.MemberID]
	switch g.state {
	case statePreparingRebalance:
		fail(errcode.RebalanceInProgress)
	case stateCompletingRebalance:
		var assignment map[string][]byte
		if g.isLeader(m.id) {
			var ok bool
			if assignment, ok = s.leaderAssignment(g, r.Assignments); !ok {
				fail(errcode.InvalidRequest)
				return
			}
		}
		// A SyncGroup the member had parked already was given up by its client.
		g.answerSync(m, SyncResponse{ErrorCode: errcode.RebalanceInProgress})
		m.syncReply = reply
		s.syncReceived(g, m.id)
		if assignment != nil {
			s.persistAssignment(g, assignment)
		}
	case stateStable:
		s.syncReceived(g, m.id)
		reply(g.syncResponse(m))
	}
	s.flush(now)
}

// validateSync is Kafka's order: Dead, the member's identity, the generation, the protocol.
func (s *Shard) validateSync(g *group, r *SyncRequest) errcode.Code {
	if g.is(stateDead) {
		return errcode.CoordinatorNotAvailable
	}
	if code := g.validateMember(r.MemberID, r.InstanceID); code != errcode.None {
		return code
	}
	if r.Generation != g.generation {
		return errcode.IllegalGeneration
	}
	if (r.ProtocolType != nil && *r.ProtocolType != g.protocolType) || (r.ProtocolName != nil && *r.ProtocolName != g.protocol) {
		return errcode.InconsistentGroupProtocol
	}
	return errcode.None
}

// leaderAssignment is the leader's assignment for every member, the empty one for a member it
// left out; false if an assignment is larger than MaxProtocolMetadataBytes.
func (s *Shard) leaderAssignment(g *group, assignments []SyncAssignment) (map[string][]byte, bool) {
	out := make(map[string][]byte, len(g.members))
	for _, a := range assignments {
		if _, ok := g.members[a.MemberID]; !ok {
			continue
		}
		if len(a.Assignment) > s.cfg.MaxProtocolMetadataBytes {
			return nil, false
		}
		out[a.MemberID] = a.Assignment
	}
	for id := range g.members {
		if len(out[id]) == 0 {
			out[id] = []byte{}
			if g.protocolType == consumerProtocolType {
				out[id] = emptyConsumerAssignment
			}
		}
	}
	return out, true
}

// syncReceived notes a member's SyncGroup for the pending-sync timeout.
func (s *Shard) syncReceived(g *group, id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		s.timers.cancel(g.syncTimer)
	}
}

// persistAssignment writes the generation with the leader's assignment; once durable the group is
// Stable and every member waiting in SyncGroup gets its assignment. If the write fails they get
// the error and the group rebalances.
func (s *Shard) persistAssignment(g *group, assignment map[string][]byte) {
	v := g.value()
	for i := range v.Members {
		v.Members[i].Assignment = assignment[v.Members[i].MemberID]
	}
	rec := Record{Key: AppendGroupKey(nil, GroupKey{Group: g.id}), Value: AppendGroupValue(nil, v)}
	g.hasRecord = true
	generation := g.generation
	s.emit(func(now time.Time, err error) {
		// Another member may have joined (or left) meanwhile: the write then belongs to a
		// generation that is over.
		if s.groups[g.id] != g || !g.is(stateCompletingRebalance) || g.generation != generation {
			return
		}
		if err != nil {
			s.resetAndPropagateAssignment(now, g, appendErrorCode(err))
			s.maybePrepareRebalanceOrCompleteJoin(now, g)
			return
		}
		for id, m := range g.members {
			m.assignment = assignment[id]
		}
		g.transition(now, stateStable)
		s.propagateAssignment(now, g, errcode.None)
	}, rec)
}

// syncResponse is the member's assignment in the current generation.
func (g *group) syncResponse(m *member) SyncResponse {
	r := SyncResponse{Assignment: m.assignment}
	if g.protocolType != "" {
		pt := g.protocolType
		r.ProtocolType = &pt
	}
	if g.protocol != "" {
		p := g.protocol
		r.ProtocolName = &p
	}
	return r
}
