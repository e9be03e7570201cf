package fakebroker

import (
	"bytes"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// Group membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the member commits of
// OffsetCommit version 2) is served by the broker's own group coordinator (package groups),
// running over an offsets log kept in memory, so members see the real protocol: member ids handed
// out with MEMBER_ID_REQUIRED, parked joins, rebalances, session timeouts and generations. The
// committed offsets themselves stay in the cluster's table (Committed, OffsetFetch).
//
// A JoinGroup or SyncGroup the coordinator holds keeps its connection waiting: the fake answers
// one request per connection at a time, as a client's coordinator connection expects.

// memoryOffsetsLog is an offsets log that is durable at once and starts empty.
type memoryOffsetsLog struct{}

func (memoryOffsetsLog) Append(_ int32, _ []byte, done func(error)) { done(nil) }

func (memoryOffsetsLog) Replay(int32, func([]byte) error) error { return nil }

func newCoordinator(cfg groups.Config) *groups.Coordinator {
	return groups.NewCoordinator(groups.CoordinatorOptions{Partitions: 1, Config: cfg, Log: memoryOffsetsLog{}})
}

// Versions of the coordinator's requests whose behaviour the binary protocol has (as the
// broker's reactor/core maps them).
const (
	joinVersion   int16 = 9
	syncVersion   int16 = 5
	beatVersion   int16 = 4
	leaveVersion  int16 = 5
	commitVersion int16 = 8
)

// await waits for a coordinator reply, or for the cluster to close (nil, false).
func await[T any](c *Cluster, ch chan T) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	case <-c.done:
		var zero T
		return zero, false
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (c *Cluster) joinGroup(req *proto.JoinGroupRequest) (*proto.JoinGroupResponse, bool) {
	r := groups.JoinRequest{
		Version:          joinVersion,
		Group:            req.Group,
		SessionTimeout:   time.Duration(req.SessionTimeoutMs) * time.Millisecond,
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMs) * time.Millisecond,
		MemberID:         req.MemberID,
		InstanceID:       req.InstanceID,
		ProtocolType:     req.ProtocolType,
		Reason:           req.Reason,
		ClientID:         req.ClientID,
		ClientHost:       "/127.0.0.1",
	}
	for _, p := range req.Protocols {
		r.Protocols = append(r.Protocols, groups.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	ch := make(chan *proto.JoinGroupResponse, 1)
	c.coordinator.Join(r, func(jr groups.JoinResponse) {
		resp := &proto.JoinGroupResponse{ErrorCode: int16(jr.ErrorCode), Generation: jr.Generation, ProtocolType: orEmpty(jr.ProtocolType),
			ProtocolName: orEmpty(jr.ProtocolName), Leader: jr.Leader, SkipAssignment: jr.SkipAssignment, MemberID: jr.MemberID}
		for _, m := range jr.Members {
			resp.Members = append(resp.Members, proto.JoinGroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: bytes.Clone(m.Metadata)})
		}
		ch <- resp
	})
	return await(c, ch)
}

func (c *Cluster) syncGroup(req *proto.SyncGroupRequest) (*proto.SyncGroupResponse, bool) {
	r := groups.SyncRequest{Version: syncVersion, Group: req.Group, Generation: req.Generation, MemberID: req.MemberID,
		InstanceID: req.InstanceID, ProtocolType: optional(req.ProtocolType), ProtocolName: optional(req.ProtocolName)}
	for _, a := range req.Assignments {
		r.Assignments = append(r.Assignments, groups.SyncAssignment{MemberID: a.MemberID, Assignment: bytes.Clone(a.Assignment)})
	}
	ch := make(chan *proto.SyncGroupResponse, 1)
	c.coordinator.Sync(r, func(sr groups.SyncResponse) {
		ch <- &proto.SyncGroupResponse{ErrorCode: int16(sr.ErrorCode), ProtocolType: orEmpty(sr.ProtocolType),
			ProtocolName: orEmpty(sr.ProtocolName), Assignment: bytes.Clone(sr.Assignment)}
	})
	return await(c, ch)
}

func (c *Cluster) heartbeat(req *proto.HeartbeatRequest) (*proto.HeartbeatResponse, bool) {
	ch := make(chan *proto.HeartbeatResponse, 1)
	c.coordinator.Heartbeat(groups.HeartbeatRequest{Version: beatVersion, Group: req.Group, Generation: req.Generation,
		MemberID: req.MemberID, InstanceID: req.InstanceID}, func(code errcode.Code) {
		ch <- &proto.HeartbeatResponse{ErrorCode: int16(code)}
	})
	return await(c, ch)
}

func (c *Cluster) leaveGroup(req *proto.LeaveGroupRequest) (*proto.LeaveGroupResponse, bool) {
	r := groups.LeaveRequest{Version: leaveVersion, Group: req.Group}
	for _, m := range req.Members {
		r.Members = append(r.Members, groups.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Reason: m.Reason})
	}
	ch := make(chan *proto.LeaveGroupResponse, 1)
	c.coordinator.Leave(r, func(lr groups.LeaveResponse) {
		resp := &proto.LeaveGroupResponse{ErrorCode: int16(lr.ErrorCode)}
		for _, m := range lr.Members {
			resp.Members = append(resp.Members, proto.LeaveGroupMemberResponse{MemberID: m.MemberID, InstanceID: m.InstanceID, ErrorCode: int16(m.ErrorCode)})
		}
		ch <- resp
	})
	return await(c, ch)
}

// memberCommit checks a version 2 commit with the coordinator; the partitions it accepts are
// stored in the cluster's table.
func (c *Cluster) memberCommit(req *proto.OffsetCommitRequest) (*proto.OffsetCommitResponse, bool) {
	r := groups.CommitRequest{Version: commitVersion, Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID}
	for _, t := range req.Topics {
		ct := groups.CommitTopic{Topic: t.Name}
		for _, p := range t.Partitions {
			ct.Partitions = append(ct.Partitions, groups.CommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1, Metadata: p.Metadata})
		}
		r.Topics = append(r.Topics, ct)
	}
	ch := make(chan groups.CommitResponse, 1)
	c.coordinator.CommitOffsets(r, func(cr groups.CommitResponse) { ch <- cr })
	cr, ok := await(c, ch)
	if !ok {
		return nil, false
	}
	accepted := &proto.OffsetCommitRequest{Group: req.Group}
	resp := &proto.OffsetCommitResponse{}
	for ti, t := range req.Topics {
		rt := proto.PartitionErrorsTopic{Name: t.Name}
		at := proto.OffsetCommitTopic{Name: t.Name}
		for pi, p := range t.Partitions {
			code := cr.Topics[ti].Partitions[pi].ErrorCode
			rt.Partitions = append(rt.Partitions, proto.PartitionError{Partition: p.Partition, ErrorCode: int16(code)})
			if code == errcode.None {
				at.Partitions = append(at.Partitions, p)
			}
		}
		resp.Topics = append(resp.Topics, rt)
		accepted.Topics = append(accepted.Topics, at)
	}
	c.offsetCommit(accepted)
	return resp, true
}
