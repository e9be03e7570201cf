package groups

import (
	"errors"
	"time"
)

// Load replays one record of the shard's offsets partition, oldest first. A record of a type this
// coordinator does not know (written by a newer Kafka) is skipped; a malformed one is reported
// (ErrBadRecord) and changes nothing, and the caller may go on with the next.
func (s *Shard) Load(key, value []byte) error {
	if s.loaded {
		return ErrLoaded
	}
	ok, ov, gk, gv, err := DecodeRecord(key, value)
	switch {
	case errors.Is(err, ErrUnknownRecord):
		return nil
	case err != nil:
		return err
	case ok != nil && ov == nil:
		s.deleteOffset(*ok)
	case ok != nil:
		s.setOffset(*ok, *ov)
	case gk != nil && gv == nil:
		delete(s.loadingGroups, gk.Group)
	case gk != nil:
		s.loadingGroups[gk.Group] = *gv
	}
	return nil
}

// Loaded ends loading: the groups come back as their last record left them, as after a
// coordinator move in Kafka — a group with members is Stable in its generation with its members'
// ids, protocols and assignments, and each member must heartbeat within its session timeout from
// now or is removed; a group without members is Empty. A group with offsets and no record is a
// simple group.
func (s *Shard) Loaded(now time.Time) {
	if s.loaded {
		return
	}
	s.loaded = true
	for id, v := range s.loadingGroups {
		s.groups[id] = loadGroup(id, &v)
	}
	for id := range s.offsets {
		if s.groups[id] == nil {
			g := newGroup(id)
			g.stateTime = now
			s.groups[id] = g
		}
	}
	s.loadingGroups = nil
	for _, id := range s.sortedGroupIDs() {
		g := s.groups[id]
		for _, mid := range g.order {
			m := g.members[mid]
			s.scheduleSession(now, g, m, m.sessionTimeout)
		}
		if len(g.members) > s.cfg.MaxGroupSize {
			// group.max.size was lowered: rebalance, giving the members a chance to commit.
			s.prepareRebalance(now, g)
		}
	}
	for _, topic := range s.loadingTopics {
		s.deleteTopic(topic)
	}
	s.loadingTopics = nil
	s.timers.schedule(s.expiry, now.Add(s.cfg.OffsetsRetentionCheckInterval))
	s.flush(now)
}

// loadGroup rebuilds a group from its record. Members with a repeated member or instance id are
// dropped (a record Thorstream or Kafka wrote has none), and a leader that is not a member is
// replaced by the first member, so a damaged record cannot break the group's invariants.
func loadGroup(id string, v *GroupValue) *group {
	g := newGroup(id)
	g.generation = v.Generation
	g.protocolType = v.ProtocolType
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.CurrentStateTimestamp >= 0 {
		g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	g.hasRecord = true
	for _, mv := range v.Members {
		if _, dup := g.members[mv.MemberID]; dup {
			continue
		}
		if mv.InstanceID != nil {
			if _, dup := g.static[*mv.InstanceID]; dup {
				continue
			}
		}
		m := &member{
			id:               mv.MemberID,
			instanceID:       mv.InstanceID,
			clientID:         mv.ClientID,
			clientHost:       mv.ClientHost,
			rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMs) * time.Millisecond,
			sessionTimeout:   time.Duration(mv.SessionTimeoutMs) * time.Millisecond,
			protocolType:     v.ProtocolType,
			protocols:        []Protocol{{Name: g.protocol, Metadata: mv.Subscription}},
			assignment:       mv.Assignment,
		}
		g.add(m, nil, 0)
	}
	if v.Leader != nil {
		if _, ok := g.members[*v.Leader]; ok {
			g.leader = *v.Leader
		}
	}
	if len(g.members) > 0 {
		g.state = stateStable
	}
	g.previousState = g.state
	g.computeSubscriptions()
	return g
}
