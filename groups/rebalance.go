package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// The rebalance: PreparingRebalance collects the members' JoinGroups, completeJoin starts the next
// generation (CompletingRebalance), the leader's SyncGroup makes it Stable (sync.go). Timers end
// each phase when members are slow: the rebalance timeout ends the join phase without the
// members that did not rejoin, the pending-sync timeout removes the members that got a JoinGroup
// response and never synced, and every member's session timer runs in every state.

// maybePrepareRebalanceOrCompleteJoin starts a rebalance if the group may, else tries to end the
// join phase of the one in progress.
func (s *Shard) maybePrepareRebalanceOrCompleteJoin(now time.Time, g *group) {
	if g.canRebalance() {
		s.prepareRebalance(now, g)
		return
	}
	s.maybeCompleteJoinPhase(now, g)
}

// prepareRebalance enters PreparingRebalance. Members waiting in SyncGroup are told
// REBALANCE_IN_PROGRESS and rejoin. A new group waits InitialRebalanceDelay for more members
// first; otherwise the join phase ends when every member rejoined or at the rebalance timeout.
func (s *Shard) prepareRebalance(now time.Time, g *group) {
	if g.is(stateCompletingRebalance) {
		s.resetAndPropagateAssignment(now, g, errcode.RebalanceInProgress)
	}
	clear(g.pendingSync)
	s.timers.cancel(g.syncTimer)

	initial := g.is(stateEmpty)
	g.transition(now, statePreparingRebalance)
	if initial {
		g.newMemberAdded = false
		g.initialDelay = s.cfg.InitialRebalanceDelay
		g.initialRemaining = max(g.rebalanceTimeout()-s.cfg.InitialRebalanceDelay, 0)
		s.armJoinTimer(g, now.Add(g.initialDelay), func(now time.Time) { s.initialDelayExpired(now, g) })
		return
	}
	if g.hasAllMembersJoined() {
		s.completeJoin(now, g)
		return
	}
	s.armJoinTimer(g, now.Add(g.rebalanceTimeout()), func(now time.Time) { s.rebalanceTimeoutExpired(now, g) })
}

func (s *Shard) armJoinTimer(g *group, when time.Time, fire func(time.Time)) {
	if g.joinTimer == nil {
		g.joinTimer = newTimer(nil)
	}
	g.joinTimer.fire = fire
	s.timers.schedule(g.joinTimer, when)
}

// initialDelayExpired extends the initial delay while members keep arriving, up to the rebalance
// timeout, then ends the join phase.
func (s *Shard) initialDelayExpired(now time.Time, g *group) {
	if s.groups[g.id] != g || !g.is(statePreparingRebalance) {
		return
	}
	if g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		delay := min(s.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-g.initialDelay, 0)
		g.initialDelay = delay
		s.armJoinTimer(g, now.Add(delay), func(now time.Time) { s.initialDelayExpired(now, g) })
		return
	}
	s.completeJoin(now, g)
}

func (s *Shard) rebalanceTimeoutExpired(now time.Time, g *group) {
	if s.groups[g.id] == g && g.is(statePreparingRebalance) {
		s.completeJoin(now, g)
	}
}

// maybeCompleteJoinPhase ends the join phase once every member rejoined, except during the
// initial delay, which always runs its course.
func (s *Shard) maybeCompleteJoinPhase(now time.Time, g *group) {
	if g.is(statePreparingRebalance) && g.previousState != stateEmpty && g.hasAllMembersJoined() {
		s.completeJoin(now, g)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin are removed (static ones
// stay until their session expires), and the next generation starts, CompletingRebalance with
// every member answered (the leader with the members' metadata), or Empty, which is persisted.
func (s *Shard) completeJoin(now time.Time, g *group) {
	s.timers.cancel(g.joinTimer)
	for _, id := range append([]string(nil), g.order...) {
		if m := g.members[id]; !m.awaitingJoin() && m.instanceID == nil {
			s.removeMember(g, id)
		}
	}
	if g.is(stateDead) {
		return
	}
	if !g.maybeElectNewJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined are left: wait for them (or for their
		// sessions to expire) another rebalance timeout.
		s.armJoinTimer(g, now.Add(g.rebalanceTimeout()), func(now time.Time) { s.rebalanceTimeoutExpired(now, g) })
		return
	}

	g.generation++
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocol = ""
		g.computeSubscriptions()
		g.transition(now, stateEmpty)
		s.persistEmpty(g)
		return
	}
	g.protocol = g.selectProtocol()
	g.computeSubscriptions()
	g.transition(now, stateCompletingRebalance)
	for _, id := range g.order {
		m := g.members[id]
		g.answerJoin(m, g.joinResponse(m.id, g.isLeader(m.id)))
		s.scheduleSession(now, g, m, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[m.id] = true
	}
	generation := g.generation
	if g.syncTimer == nil {
		g.syncTimer = newTimer(nil)
	}
	g.syncTimer.fire = func(now time.Time) { s.pendingSyncExpired(now, g, generation) }
	s.timers.schedule(g.syncTimer, now.Add(g.rebalanceTimeout()))
}

// persistEmpty writes the metadata of a group that has just become Empty. A failure changes
// nothing in memory (see the package notes); the caller's reply, if any, waits for the write.
func (s *Shard) persistEmpty(g *group) {
	g.hasRecord = true
	s.emit(nil, groupRecord(g))
}

// pendingSyncExpired removes the members of generation that never sent SyncGroup, and rebalances.
func (s *Shard) pendingSyncExpired(now time.Time, g *group, generation int32) {
	if s.groups[g.id] != g || g.generation != generation || len(g.pendingSync) == 0 {
		return
	}
	if !g.is(stateCompletingRebalance) && !g.is(stateStable) {
		return
	}
	for _, id := range append([]string(nil), g.order...) {
		if g.pendingSync[id] {
			s.removeMember(g, id)
		}
	}
	s.prepareRebalance(now, g)
}

// expireMember is a member's session timer: a member that neither heartbeat nor waits in a join
// or sync is removed, and the group rebalances without it. A member that waits is looked at again
// a session later, so that every member always has a deadline (whatever answers its request).
func (s *Shard) expireMember(now time.Time, g *group, m *member) {
	if !s.live(g, m) || g.is(stateDead) {
		return
	}
	if m.hasSatisfiedHeartbeat() {
		s.scheduleSession(now, g, m, m.sessionTimeout)
		return
	}
	s.removeMember(g, m.id)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		s.maybePrepareRebalanceOrCompleteJoin(now, g)
	case statePreparingRebalance:
		if g.hasAllMembersJoined() {
			s.completeJoin(now, g)
		}
	}
}

// expirePending forgets a handed-out id whose owner never came back.
func (s *Shard) expirePending(now time.Time, g *group, p *pendingMember) {
	if s.groups[g.id] != g || g.pending[p.id] != p {
		return
	}
	s.removePending(g, p.id)
	if g.is(statePreparingRebalance) && g.hasAllMembersJoined() {
		s.completeJoin(now, g)
	}
	s.forgetIfUnused(g)
}

// resetAndPropagateAssignment drops the assignments and answers every member waiting in SyncGroup
// with code.
func (s *Shard) resetAndPropagateAssignment(now time.Time, g *group, code errcode.Code) {
	for _, m := range g.members {
		m.assignment = nil
	}
	s.propagateAssignment(now, g, code)
}

// propagateAssignment answers every member waiting in SyncGroup with its assignment (or code),
// restarting its session: its heartbeats may have been ignored while it waited.
func (s *Shard) propagateAssignment(now time.Time, g *group, code errcode.Code) {
	for _, id := range g.order {
		m := g.members[id]
		r := SyncResponse{ErrorCode: code}
		if code == errcode.None {
			r = g.syncResponse(m)
		}
		if g.answerSync(m, r) {
			s.scheduleSession(now, g, m, m.sessionTimeout)
		}
	}
}
