package groups

import (
	"cmp"
	"slices"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// CommitOffsets handles an OffsetCommit request. Accepted partitions are written; reply is called
// once they are durable (then they are visible to FetchOffsets) or failed, with one code per
// partition in request order.
func (s *Shard) CommitOffsets(now time.Time, r CommitRequest, reply func(CommitResponse)) {
	if r.Version < 7 {
		r.InstanceID = nil
	}
	if code := s.validateCommit(now, &r); code != errcode.None {
		reply(commitResponse(&r, code))
		s.flush(now)
		return
	}
	resp := commitResponse(&r, errcode.None)
	type accepted struct {
		key   OffsetKey
		value OffsetValue
		code  *errcode.Code
	}
	var writes []accepted
	var records []Record
	for ti, t := range r.Topics {
		for pi, p := range t.Partitions {
			code := &resp.Topics[ti].Partitions[pi].ErrorCode
			switch {
			case len(p.Metadata) > s.cfg.MaxMetadataBytes:
				*code = errcode.OffsetMetadataTooLarge
			case tooLong(t.Topic):
				*code = errcode.InvalidTopic // no topic has such a name, and no record could hold it
			default:
				k := OffsetKey{Group: r.Group, Topic: t.Topic, Partition: p.Partition}
				v := OffsetValue{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitTimestamp: now.UnixMilli(), ExpireTimestamp: -1}
				writes = append(writes, accepted{k, v, code})
				records = append(records, Record{Key: AppendOffsetKey(nil, k), Value: AppendOffsetValue(nil, v)})
			}
		}
	}
	if len(records) == 0 {
		reply(resp)
		if g := s.groups[r.Group]; g != nil {
			s.forgetIfUnused(g)
		}
		s.flush(now)
		return
	}
	for _, w := range writes {
		s.inflight[w.key]++
		s.inflightGroups[w.key.Group]++
	}
	s.emit(func(now time.Time, err error) {
		for _, w := range writes {
			s.releaseInflight(w.key)
			if err != nil {
				*w.code = commitErrorCode(err)
				continue
			}
			s.setOffset(w.key, w.value)
		}
		reply(resp)
		if g := s.groups[r.Group]; g != nil {
			s.forgetIfUnused(g)
		}
	}, records...)
	s.flush(now)
}

// validateCommit is Kafka's order: the group (a simple group is created for a commit from outside
// group management), Dead, then the member's identity and generation, then the state. A commit
// while PreparingRebalance with the current generation is accepted: consumers commit in their
// revocation callback.
func (s *Shard) validateCommit(now time.Time, r *CommitRequest) errcode.Code {
	if r.Group == "" || tooLong(r.Group) {
		return errcode.InvalidGroupID
	}
	if !s.loaded {
		return errcode.CoordinatorLoadInProgress
	}
	g := s.groups[r.Group]
	if g == nil {
		if r.Generation >= 0 {
			if r.Version >= 9 {
				return errcode.GroupIDNotFound
			}
			return errcode.IllegalGeneration
		}
		g = newGroup(r.Group)
		g.stateTime = now
		s.groups[g.id] = g
	}
	if g.is(stateDead) {
		return errcode.CoordinatorNotAvailable
	}
	if r.Generation < 0 && g.is(stateEmpty) {
		return errcode.None
	}
	if r.Generation >= 0 || r.MemberID != "" || r.InstanceID != nil {
		if code := g.validateMember(r.MemberID, r.InstanceID); code != errcode.None {
			return code
		}
		if r.Generation != g.generation {
			return errcode.IllegalGeneration
		}
	} else if !g.is(stateEmpty) {
		return errcode.UnknownMemberID
	}
	if g.is(stateCompletingRebalance) {
		return errcode.RebalanceInProgress
	}
	if m := g.members[r.MemberID]; m != nil && (g.is(stateStable) || g.is(statePreparingRebalance)) {
		// A commit keeps the session alive, as a heartbeat does.
		s.scheduleSession(now, g, m, m.sessionTimeout)
	}
	return errcode.None
}

// commitResponse answers every partition of r with code.
func commitResponse(r *CommitRequest, code errcode.Code) CommitResponse {
	resp := CommitResponse{Topics: make([]CommitTopicResponse, len(r.Topics))}
	for ti, t := range r.Topics {
		ps := make([]CommitPartitionResponse, len(t.Partitions))
		for pi, p := range t.Partitions {
			ps[pi] = CommitPartitionResponse{Partition: p.Partition, ErrorCode: code}
		}
		resp.Topics[ti] = CommitTopicResponse{Topic: t.Topic, Partitions: ps}
	}
	return resp
}

// FetchOffsets handles an OffsetFetch request for one group. It reads durable offsets only and
// replies at once. RequireStable never waits: only transactional offsets could be unstable, and
// there are none yet.
func (s *Shard) FetchOffsets(now time.Time, r FetchRequest, reply func(FetchResponse)) {
	reply(s.fetch(&r))
}

func (s *Shard) fetch(r *FetchRequest) FetchResponse {
	if r.Group == "" {
		return FetchResponse{ErrorCode: errcode.InvalidGroupID}
	}
	if !s.loaded {
		return FetchResponse{ErrorCode: errcode.CoordinatorLoadInProgress}
	}
	offsets := s.offsets[r.Group]
	if g := s.groups[r.Group]; g == nil || g.is(stateDead) {
		offsets = nil
	}
	var resp FetchResponse
	if r.Topics == nil {
		tps := make([]TopicPartition, 0, len(offsets))
		for tp := range offsets {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, compareTopicPartitions)
		for _, tp := range tps {
			if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != tp.Topic {
				resp.Topics = append(resp.Topics, FetchTopicResponse{Topic: tp.Topic})
			}
			t := &resp.Topics[len(resp.Topics)-1]
			t.Partitions = append(t.Partitions, fetchPartition(tp.Partition, offsets[tp], true))
		}
		return resp
	}
	resp.Topics = make([]FetchTopicResponse, len(r.Topics))
	for i, t := range r.Topics {
		ps := make([]FetchPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			v, ok := offsets[TopicPartition{t.Topic, p}]
			ps[j] = fetchPartition(p, v, ok)
		}
		resp.Topics[i] = FetchTopicResponse{Topic: t.Topic, Partitions: ps}
	}
	return resp
}

func fetchPartition(partition int32, v OffsetValue, ok bool) FetchPartition {
	if !ok {
		return FetchPartition{Partition: partition, Offset: -1, LeaderEpoch: -1}
	}
	return FetchPartition{Partition: partition, Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata}
}

func compareTopicPartitions(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// setOffset and deleteOffset change the durable table; only completions of durable writes and
// replay call them.
func (s *Shard) setOffset(k OffsetKey, v OffsetValue) {
	offsets := s.offsets[k.Group]
	if offsets == nil {
		offsets = map[TopicPartition]OffsetValue{}
		s.offsets[k.Group] = offsets
	}
	offsets[TopicPartition{k.Topic, k.Partition}] = v
}

func (s *Shard) deleteOffset(k OffsetKey) {
	offsets := s.offsets[k.Group]
	delete(offsets, TopicPartition{k.Topic, k.Partition})
	if len(offsets) == 0 {
		delete(s.offsets, k.Group)
	}
}

func (s *Shard) releaseInflight(k OffsetKey) {
	if s.inflight[k]--; s.inflight[k] <= 0 {
		delete(s.inflight, k)
	}
	if s.inflightGroups[k.Group]--; s.inflightGroups[k.Group] <= 0 {
		delete(s.inflightGroups, k.Group)
	}
}

// offsetKeys lists, in order, the keys of group's offsets, durable or in flight, that keep says
// to (nil keeps all): what a deletion must write tombstones for.
func (s *Shard) offsetKeys(groupID string, keep func(TopicPartition) bool) []OffsetKey {
	var keys []OffsetKey
	for tp := range s.offsets[groupID] {
		if keep == nil || keep(tp) {
			keys = append(keys, OffsetKey{Group: groupID, Topic: tp.Topic, Partition: tp.Partition})
		}
	}
	if s.inflightGroups[groupID] > 0 {
		for k := range s.inflight {
			tp := TopicPartition{k.Topic, k.Partition}
			if _, durable := s.offsets[groupID][tp]; k.Group == groupID && !durable && (keep == nil || keep(tp)) {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, func(a, b OffsetKey) int {
		return compareTopicPartitions(TopicPartition{a.Topic, a.Partition}, TopicPartition{b.Topic, b.Partition})
	})
	return keys
}

func offsetTombstones(keys []OffsetKey) []Record {
	records := make([]Record, len(keys))
	for i, k := range keys {
		records[i] = Record{Key: AppendOffsetKey(nil, k)}
	}
	return records
}
