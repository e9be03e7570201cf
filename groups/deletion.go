package groups

import (
	"slices"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Deletions: DeleteGroups, OffsetDelete, a deleted topic and KIP-211 expiry. Each writes
// tombstones; the table changes once they are durable.

// DeleteGroup handles one group of a DeleteGroups request: an Empty group is deleted with its
// offsets. GROUP_ID_NOT_FOUND for a group this shard does not have, NON_EMPTY_GROUP for one with
// members. reply is called once the tombstones are durable.
func (s *Shard) DeleteGroup(now time.Time, group string, reply func(errcode.Code)) {
	code := s.deletableGroup(group)
	if code != errcode.None {
		reply(code)
		return
	}
	g := s.groups[group]
	keys := s.offsetKeys(group, nil)
	records := append(offsetTombstones(keys), groupTombstone(group))
	emptySince := s.kill(now, g)
	s.emit(func(now time.Time, err error) {
		if err != nil {
			s.revive(g, emptySince)
			reply(appendErrorCode(err))
			return
		}
		s.bury(g, keys)
		reply(errcode.None)
	}, records...)
	s.flush(now)
}

func (s *Shard) deletableGroup(group string) errcode.Code {
	if group == "" {
		return errcode.InvalidGroupID
	}
	if !s.loaded {
		return errcode.CoordinatorLoadInProgress
	}
	g := s.groups[group]
	switch {
	case g == nil || g.is(stateDead):
		return errcode.GroupIDNotFound
	case !g.is(stateEmpty):
		return errcode.NonEmptyGroup
	}
	return errcode.None
}

// kill makes an Empty group Dead while its deletion is written: requests meanwhile get
// COORDINATOR_NOT_AVAILABLE and retry. Handed-out member ids are forgotten. It returns since when
// the group was Empty, for revive.
func (s *Shard) kill(now time.Time, g *group) time.Time {
	for id := range g.pending {
		s.removePending(g, id)
	}
	s.timers.cancel(g.joinTimer)
	s.timers.cancel(g.syncTimer)
	emptySince := g.stateTime
	g.transition(now, stateDead)
	return emptySince
}

// revive undoes kill after a failed deletion: the group is Empty again, since when it was (its
// offsets' retention still counts from then).
func (s *Shard) revive(g *group, emptySince time.Time) {
	if s.groups[g.id] == g && g.is(stateDead) {
		g.state, g.previousState, g.stateTime = stateEmpty, stateEmpty, emptySince
	}
}

// bury completes a durable deletion.
func (s *Shard) bury(g *group, keys []OffsetKey) {
	for _, k := range keys {
		s.deleteOffset(k)
	}
	if s.groups[g.id] == g {
		delete(s.groups, g.id)
	}
}

// DeleteOffsets handles an OffsetDelete request: the group's offsets for parts are deleted, unless
// the group is active and consumes the topic (GROUP_SUBSCRIBED_TO_TOPIC for that partition). A
// group with members that is not a consumer group cannot lose offsets (NON_EMPTY_GROUP).
func (s *Shard) DeleteOffsets(now time.Time, group string, parts []TopicPartition, reply func(OffsetDeleteResponse)) {
	resp, keys := s.deleteOffsets(group, parts)
	if resp.ErrorCode != errcode.None || len(keys) == 0 {
		reply(resp)
		return
	}
	s.emit(func(now time.Time, err error) {
		if err != nil {
			reply(OffsetDeleteResponse{ErrorCode: appendErrorCode(err)})
			return
		}
		for _, k := range keys {
			s.deleteOffset(k)
		}
		reply(resp)
		if g := s.groups[group]; g != nil {
			s.forgetIfUnused(g)
		}
	}, offsetTombstones(keys)...)
	s.flush(now)
}

func (s *Shard) deleteOffsets(group string, parts []TopicPartition) (OffsetDeleteResponse, []OffsetKey) {
	if group == "" {
		return OffsetDeleteResponse{ErrorCode: errcode.InvalidGroupID}, nil
	}
	if !s.loaded {
		return OffsetDeleteResponse{ErrorCode: errcode.CoordinatorLoadInProgress}, nil
	}
	g := s.groups[group]
	switch {
	case g == nil || g.is(stateDead):
		return OffsetDeleteResponse{ErrorCode: errcode.GroupIDNotFound}, nil
	case !g.is(stateEmpty) && g.protocolType != consumerProtocolType:
		return OffsetDeleteResponse{ErrorCode: errcode.NonEmptyGroup}, nil
	}
	wanted := make(map[TopicPartition]bool, len(parts))
	for _, tp := range parts {
		wanted[tp] = true
	}
	existing := map[TopicPartition]bool{}
	for _, k := range s.offsetKeys(group, func(tp TopicPartition) bool { return wanted[tp] }) {
		existing[TopicPartition{k.Topic, k.Partition}] = true
	}
	resp := OffsetDeleteResponse{Partitions: make([]OffsetDeletePartition, len(parts))}
	var keys []OffsetKey
	for i, tp := range parts {
		resp.Partitions[i] = OffsetDeletePartition{Topic: tp.Topic, Partition: tp.Partition}
		switch {
		case g.isSubscribedTo(tp.Topic):
			resp.Partitions[i].ErrorCode = errcode.GroupSubscribedToTopic
		case existing[tp]:
			existing[tp] = false // a partition named twice is deleted once
			keys = append(keys, OffsetKey{Group: group, Topic: tp.Topic, Partition: tp.Partition})
		}
	}
	return resp, keys
}

// DeleteTopic deletes every group's offsets for a deleted topic. Called while loading, it takes
// effect when loading ends.
func (s *Shard) DeleteTopic(now time.Time, topic string) {
	if !s.loaded {
		s.loadingTopics = append(s.loadingTopics, topic)
		return
	}
	s.deleteTopic(topic)
	s.flush(now)
}

func (s *Shard) deleteTopic(topic string) {
	var ids []string
	for id := range s.offsets {
		ids = append(ids, id)
	}
	for id := range s.inflightGroups {
		if _, ok := s.offsets[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var keys []OffsetKey
	for _, id := range ids {
		keys = append(keys, s.offsetKeys(id, func(tp TopicPartition) bool { return tp.Topic == topic })...)
	}
	if len(keys) == 0 {
		return
	}
	s.emit(func(now time.Time, err error) {
		if err != nil {
			return
		}
		for _, k := range keys {
			s.deleteOffset(k)
			if g := s.groups[k.Group]; g != nil {
				s.forgetIfUnused(g)
			}
		}
	}, offsetTombstones(keys)...)
}

// expireOffsets is the periodic KIP-211 pass. An Empty group's offsets expire OffsetsRetention
// after it became Empty; a simple group's (no protocol type) and, in a Stable consumer group,
// those of topics no member subscribes to, OffsetsRetention after their commit. An Empty group
// left without offsets is deleted.
func (s *Shard) expireOffsets(now time.Time) {
	s.timers.schedule(s.expiry, now.Add(s.cfg.OffsetsRetentionCheckInterval))
	nowMs, retentionMs := now.UnixMilli(), s.cfg.OffsetsRetention.Milliseconds()
	for _, id := range s.sortedGroupIDs() {
		g := s.groups[id]
		base, ok := expiryBase(g)
		if !ok {
			continue
		}
		offsets := s.offsets[id]
		expired := s.offsetKeys(id, func(tp TopicPartition) bool {
			v, durable := offsets[tp]
			if !durable || g.isSubscribedTo(tp.Topic) || s.inflight[OffsetKey{id, tp.Topic, tp.Partition}] > 0 {
				return false
			}
			if v.ExpireTimestamp >= 0 {
				return nowMs >= v.ExpireTimestamp
			}
			return nowMs-base(v) >= retentionMs
		})
		deleteGroup := g.is(stateEmpty) && len(g.pending) == 0 && len(expired) == len(offsets) && s.inflightGroups[id] == 0
		if deleteGroup && !g.hasRecord && len(expired) == 0 {
			s.forgetIfUnused(g)
			continue
		}
		if len(expired) == 0 && !deleteGroup {
			continue
		}
		records := offsetTombstones(expired)
		var emptySince time.Time
		if deleteGroup {
			if g.hasRecord {
				records = append(records, groupTombstone(id))
			}
			emptySince = s.kill(now, g)
		}
		s.emit(func(now time.Time, err error) {
			if err != nil {
				if deleteGroup {
					s.revive(g, emptySince)
				}
				return
			}
			if deleteGroup {
				s.bury(g, expired)
				return
			}
			for _, k := range expired {
				s.deleteOffset(k)
			}
		}, records...)
	}
}

// expiryBase is what an offset's retention counts from, false when the group's offsets do not
// expire now (an active group that is not a Stable consumer group with known subscriptions).
func expiryBase(g *group) (func(OffsetValue) int64, bool) {
	commitTime := func(v OffsetValue) int64 { return v.CommitTimestamp }
	switch {
	case g.is(stateDead):
		return nil, false
	case g.protocolType == "":
		return commitTime, true
	case g.is(stateEmpty):
		if g.stateTime.IsZero() {
			return commitTime, true
		}
		emptySince := g.stateTime.UnixMilli()
		return func(OffsetValue) int64 { return emptySince }, true
	case g.is(stateStable) && g.protocolType == consumerProtocolType && g.subscribedKnown:
		return commitTime, true
	}
	return nil, false
}
