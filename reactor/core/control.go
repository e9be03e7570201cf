package core

import (
	"fmt"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

func (s *Server) metadata(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.MetadataRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	resp := proto.MetadataResponse{
		ClusterID:    s.Broker.ClusterID(),
		ControllerID: s.Broker.ControllerID(),
	}
	// Every live node at its binary listener; this node at its own advertised address.
	for _, b := range s.Brokers(s.Broker.Snapshot()) {
		resp.Brokers = append(resp.Brokers, proto.MetadataBroker{NodeID: b.ID, Host: b.Host, Port: b.Port})
	}
	names := req.Topics
	if names == nil {
		names = s.Broker.Snapshot().Names
	}
	snap := s.Broker.Snapshot()
	topics := make([]*cluster.Topic, len(names))
	errs := make([]error, len(names))
	var missing []string
	var idx []int
	for i, name := range names {
		if topics[i] = snap.Topics[name]; topics[i] == nil {
			if req.AllowAutoCreate && s.Broker.AutoCreateTopics() {
				missing = append(missing, name)
				idx = append(idx, i)
			}
		}
	}
	if len(missing) > 0 {
		// Created together, at most the broker's per-request number (see EnsureTopics).
		created, cerrs := s.Broker.EnsureTopics(missing)
		for k := range missing {
			topics[idx[k]], errs[idx[k]] = created[k], cerrs[k]
		}
	}
	for i, name := range names {
		t := topics[i]
		if t == nil && errs[i] != nil && errcode.Of(errs[i]) != errcode.UnknownTopicOrPartition {
			code, msg := codeAndMessage(errs[i])
			resp.Topics = append(resp.Topics, proto.MetadataTopic{Name: name, ErrorCode: code, ErrorMessage: msg})
			continue
		}
		if t == nil {
			resp.Topics = append(resp.Topics, proto.MetadataTopic{
				Name: name, ErrorCode: int16(errcode.UnknownTopicOrPartition), ErrorMessage: "topic does not exist",
			})
			continue
		}
		resp.Topics = append(resp.Topics, s.describeTopic(t))
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

// describeTopic is a topic's metadata: each partition's leader, leader epoch, replicas and
// in-sync replicas as the cluster's metadata has them; LEADER_NOT_AVAILABLE while it has no
// leader, KAFKA_STORAGE_ERROR when this node's replica is fenced after a storage error.
func (s *Server) describeTopic(t *cluster.Topic) proto.MetadataTopic {
	mt := proto.MetadataTopic{Name: t.Name, Internal: t.Internal}
	mt.Partitions = make([]proto.MetadataPartition, 0, len(t.Partitions))
	for p := range t.Partitions {
		pa := &t.Partitions[p]
		mp := proto.MetadataPartition{
			Partition:   int32(p),
			Leader:      pa.Leader,
			LeaderEpoch: pa.LeaderEpoch,
			Replicas:    pa.Replicas,
			ISR:         pa.ISR,
		}
		if pa.Leader == meta.NoLeader {
			mp.ErrorCode = int16(errcode.LeaderNotAvailable)
		}
		if p < len(t.Replicas) && t.Replicas[p] != nil && t.Replicas[p].Fenced() != nil {
			mp.ErrorCode = int16(errcode.KafkaStorageError)
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	for _, kv := range t.Config.Effective() {
		mt.Configs = append(mt.Configs, proto.ConfigEntry{Key: kv[0], Value: kv[1]})
	}
	return mt
}

func (s *Server) createTopics(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.CreateTopicsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	var resp proto.TopicErrorsResponse
	// The valid topics are created together: the request's limits apply to all of them, and the
	// metadata is written once.
	errs := make([]error, len(req.Topics))
	var specs []cluster.TopicSpec
	var idx []int
	seen := map[string]bool{}
	for i, t := range req.Topics {
		if seen[t.Name] {
			errs[i] = errcode.New(errcode.InvalidRequest, "topic %q appears twice in the request", t.Name)
			continue
		}
		seen[t.Name] = true
		configs := make(map[string]string, len(t.Configs))
		for _, c := range t.Configs {
			configs[c.Key] = c.Value
		}
		specs = append(specs, cluster.TopicSpec{
			Name:              t.Name,
			Partitions:        t.NumPartitions,
			ReplicationFactor: t.ReplicationFactor,
			Configs:           configs,
		})
		idx = append(idx, i)
	}
	if len(specs) > 0 {
		for k, err := range s.Broker.CreateTopics(specs, req.ValidateOnly) {
			errs[idx[k]] = err
		}
	}
	for i, t := range req.Topics {
		code, msg := codeAndMessage(errs[i])
		resp.Topics = append(resp.Topics, proto.TopicError{Name: t.Name, ErrorCode: code, ErrorMessage: msg})
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

func (s *Server) deleteTopics(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.DeleteTopicsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	var resp proto.TopicErrorsResponse
	for _, name := range req.Names {
		err := s.Broker.DeleteTopic(name)
		code, msg := codeAndMessage(err)
		resp.Topics = append(resp.Topics, proto.TopicError{Name: name, ErrorCode: code, ErrorMessage: msg})
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

func (s *Server) listOffsets(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.ListOffsetsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	// Version 2 adds where each replica is, as this node (the leader) sees them.
	resp := proto.ListOffsetsResponse{Version: hdr.APIVersion}
	for _, t := range req.Topics {
		rt := proto.ListOffsetsTopicResponse{Name: t.Name}
		for _, p := range t.Partitions {
			rp := proto.ListOffsetsPartitionResponse{Partition: p.Partition, Timestamp: -1, Offset: -1, Leader: s.leaderHint()}
			route := s.Broker.Route(t.Name, p.Partition)
			r := route.Replica
			if r == nil {
				// Another node leads it (the hint names it), none does, or it does not exist.
				rp.ErrorCode = int16(route.Code)
				rp.ErrorMessage = RouteError(route.Code).Message
				rp.Leader = proto.NoLeader
				if route.Code == errcode.NotLeaderOrFollower {
					rp.Leader = s.routeHint(route)
				}
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			offset, ts, err := OffsetAt(r, p.Timestamp)
			rp.ErrorCode, rp.ErrorMessage = codeAndMessage(err)
			rp.Offset, rp.Timestamp = offset, ts
			if resp.Version >= 2 && err == nil {
				rp.Replicas = replicaPositions(r, s.Broker.NodeID(), time.Now())
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

// OffsetAt answers a ListOffsets query for one partition: -2 the log start offset, -1 the high
// watermark, otherwise the offset of the first record whose timestamp is at or after ts (-1 and
// timestamp -1 when there is none). It may read the disk.
func OffsetAt(r *cluster.Replica, ts int64) (offset, timestamp int64, err error) {
	switch ts {
	case proto.TimestampEarliest:
		return r.LogStartOffset(), -1, nil
	case proto.TimestampLatest:
		return r.HighWatermark(), -1, nil
	}
	if ts < 0 {
		return -1, -1, errcode.New(errcode.InvalidRequest, "timestamp %d is neither -1, -2 nor a time", ts)
	}
	// The time index finds the batch; the replica walks its records for the first at or after ts.
	offset, timestamp, found, err := r.RecordForTimestamp(ts)
	if err != nil {
		return -1, -1, errcode.New(errcode.KafkaStorageError, "%v", err)
	}
	if !found {
		return -1, -1, nil
	}
	return offset, timestamp, nil
}

// offsetCommit stores a group's positions through the coordinator: a commit from outside group
// management (generation -1, no member), the binary protocol's version 1. Negative offsets are
// refused with INVALID_COMMIT_OFFSET_SIZE before the coordinator sees them.
func (s *Server) offsetCommit(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte, f *Frame) {
	defer f.Release()
	req := proto.OffsetCommitRequest{Version: hdr.APIVersion}
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		sess.Complete(seq, errorResponse(hdr.CorrelationID, errcode.CoordinatorNotAvailable, "offsets are not available"))
		return
	}
	// The request's strings are copies (ReadFrom owns nothing of the frame), so the coordinator
	// may keep them. Version 2 commits as the member it names (groups_membership.go).
	cr := groups.CommitRequest{Group: req.Group}
	cr.Version, cr.Generation, cr.MemberID, cr.InstanceID = commitMembership(&req)
	for _, t := range req.Topics {
		ct := groups.CommitTopic{Topic: t.Name}
		for _, p := range t.Partitions {
			if p.Offset >= 0 {
				ct.Partitions = append(ct.Partitions, groups.CommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1, Metadata: p.Metadata})
			}
		}
		cr.Topics = append(cr.Topics, ct)
	}
	corrID := hdr.CorrelationID
	s.coordinator.CommitOffsets(cr, func(cresp groups.CommitResponse) {
		var resp proto.OffsetCommitResponse
		for ti, t := range req.Topics {
			rt := proto.PartitionErrorsTopic{Name: t.Name}
			accepted := cresp.Topics[ti].Partitions
			for _, p := range t.Partitions {
				pe := proto.PartitionError{Partition: p.Partition}
				if p.Offset < 0 {
					pe.ErrorCode, pe.ErrorMessage = int16(errcode.InvalidCommitOffsetSize), fmt.Sprintf("offset %d is negative", p.Offset)
				} else {
					code := accepted[0].ErrorCode
					accepted = accepted[1:]
					pe.ErrorCode, pe.ErrorMessage = int16(code), offsetsErrorMessage(code, req.Group)
					if req.Version >= 2 {
						pe.ErrorMessage = memberCommitMessage(code, &cr)
					}
				}
				rt.Partitions = append(rt.Partitions, pe)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

// offsetFetch reads a group's committed positions through the coordinator. An error for the
// whole group (loading, unavailable, an empty group id) is the response's top-level error.
func (s *Server) offsetFetch(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.OffsetFetchRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	if s.coordinator == nil {
		sess.Complete(seq, errorResponse(hdr.CorrelationID, errcode.CoordinatorNotAvailable, "offsets are not available"))
		return
	}
	fr := groups.FetchRequest{Version: 8, Group: req.Group}
	if req.Topics != nil {
		fr.Topics = make([]groups.FetchTopic, len(req.Topics))
		for i, t := range req.Topics {
			fr.Topics[i] = groups.FetchTopic{Topic: t.Name, Partitions: t.Partitions}
		}
	}
	corrID := hdr.CorrelationID
	s.coordinator.FetchOffsets(fr, func(fresp groups.FetchResponse) {
		if fresp.ErrorCode != errcode.None {
			sess.Complete(seq, errorResponse(corrID, fresp.ErrorCode, offsetsErrorMessage(fresp.ErrorCode, req.Group)))
			return
		}
		resp := proto.OffsetFetchResponse{Topics: make([]proto.OffsetFetchTopicResponse, 0, len(fresp.Topics))}
		for _, t := range fresp.Topics {
			rt := proto.OffsetFetchTopicResponse{Name: t.Topic, Partitions: make([]proto.OffsetFetchPartitionResponse, 0, len(t.Partitions))}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, proto.OffsetFetchPartitionResponse{Partition: p.Partition, Offset: p.Offset, Metadata: p.Metadata,
					ErrorCode: int16(p.ErrorCode), ErrorMessage: offsetsErrorMessage(p.ErrorCode, req.Group)})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		sess.Complete(seq, bodyResponse(corrID, &resp))
	})
}

// offsetsErrorMessage explains a coordinator's code for an offset commit or fetch.
func offsetsErrorMessage(code errcode.Code, group string) string {
	switch code {
	case errcode.None:
		return ""
	case errcode.InvalidGroupID:
		return "the group id is empty or too long"
	case errcode.OffsetMetadataTooLarge:
		return fmt.Sprintf("commit metadata is longer than the limit of %d bytes", groups.MaxMetadataBytes)
	case errcode.CoordinatorLoadInProgress:
		return "the group coordinator is loading its state, retry"
	case errcode.CoordinatorNotAvailable, errcode.NotCoordinator:
		return "the group coordinator is not available, retry"
	case errcode.UnknownMemberID, errcode.IllegalGeneration, errcode.RebalanceInProgress:
		return fmt.Sprintf("group %q is managed by its members: %s", group, code)
	}
	return code.String()
}
