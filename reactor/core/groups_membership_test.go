package core

import (
	"net"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// memberConn is one client connection to the env's server: a group member needs its own, since
// the coordinator holds a JoinGroup and the session answers in request order.
type memberConn struct {
	t    *testing.T
	e    *env
	tr   *fakeTransport
	sess *Session
	corr int32
}

func (e *env) newMemberConn(addr string) *memberConn {
	c := &memberConn{t: e.t, e: e, tr: newFakeTransport()}
	c.sess = NewSession(c.tr, Limits{})
	if addr != "" {
		c.sess.SetClientAddr(&net.TCPAddr{IP: net.ParseIP(addr), Port: 40000})
	}
	return c
}

func (c *memberConn) send(key, version int16, req interface{ AppendTo([]byte) []byte }) int32 {
	c.t.Helper()
	c.corr++
	f := frame(key, version, c.corr, req.AppendTo(nil))
	seq, ok := c.sess.Begin(len(f.Bytes()))
	if !ok {
		c.t.Fatal("session refused a frame")
	}
	c.e.server.HandleFrame(c.sess, seq, f)
	return c.corr
}

// recv decodes the response to corr into resp; it must have no top-level error.
func (c *memberConn) recv(corr int32, resp decoder) {
	c.t.Helper()
	b := c.tr.next(c.t)
	h, body, err := proto.ParseResponseHeader(b[proto.SizeLen:])
	if err != nil || h.CorrelationID != corr || h.ErrorCode != 0 {
		c.t.Fatalf("response %+v, %v; want correlation id %d and no top-level error", h, err, corr)
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatal(err)
	}
}

func (c *memberConn) call(key, version int16, req interface{ AppendTo([]byte) []byte }, resp decoder) {
	c.t.Helper()
	c.recv(c.send(key, version, req), resp)
}

// rawBody sends bytes as they are.
type rawBody []byte

func (b rawBody) AppendTo(dst []byte) []byte { return append(dst, b...) }

func joinReq(group, memberID string) *proto.JoinGroupRequest {
	return &proto.JoinGroupRequest{Group: group, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000, MemberID: memberID,
		ClientID: "billing-app", ProtocolType: "consumer",
		Protocols: []proto.JoinGroupProtocol{{Name: "range", Metadata: []byte("subscription of " + memberID)}}}
}

// joinFirst joins as a new member: MEMBER_ID_REQUIRED hands out the id, the rejoin is sent and
// its correlation id returned (its response comes once the join phase completes).
func (c *memberConn) joinFirst(group string) (memberID string, corr int32) {
	c.t.Helper()
	var resp proto.JoinGroupResponse
	c.call(proto.KeyJoinGroup, proto.Version, joinReq(group, ""), &resp)
	if errcode.Code(resp.ErrorCode) != errcode.MemberIDRequired || resp.MemberID == "" || resp.Generation != -1 {
		c.t.Fatalf("first JoinGroup: %+v", resp)
	}
	return resp.MemberID, c.send(proto.KeyJoinGroup, proto.Version, joinReq(group, resp.MemberID))
}

func (c *memberConn) heartbeat(group, memberID string, generation int32) errcode.Code {
	c.t.Helper()
	var resp proto.HeartbeatResponse
	c.call(proto.KeyHeartbeat, proto.Version, &proto.HeartbeatRequest{Group: group, Generation: generation, MemberID: memberID}, &resp)
	return errcode.Code(resp.ErrorCode)
}

func commitV2(group, memberID string, generation int32, offset int64) *proto.OffsetCommitRequest {
	return &proto.OffsetCommitRequest{Version: 2, Group: group, Generation: generation, MemberID: memberID,
		Topics: []proto.OffsetCommitTopic{{Name: "orders", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: offset}}}}}
}

func commitCode(t *testing.T, resp *proto.OffsetCommitResponse) errcode.Code {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetCommit response %+v", resp)
	}
	return errcode.Code(resp.Topics[0].Partitions[0].ErrorCode)
}

// TestGroupMembership walks a group through the binary protocol's membership APIs: two members
// join (MEMBER_ID_REQUIRED first), the leader assigns, a heartbeat learns of the second member's
// join, both rejoin, member commits are checked against the generation, one member leaves.
func TestGroupMembership(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("orders", 2)
	a, b := e.newMemberConn("10.0.0.7"), e.newMemberConn("10.0.0.8")

	idA, corr := a.joinFirst("billing")
	var join proto.JoinGroupResponse
	a.recv(corr, &join)
	if join.ErrorCode != 0 || join.Generation != 1 || join.Leader != idA || join.MemberID != idA || join.ProtocolType != "consumer" ||
		join.ProtocolName != "range" || len(join.Members) != 1 || string(join.Members[0].Metadata) != "subscription of "+idA {
		t.Fatalf("JoinGroup: %+v", join)
	}
	var sync proto.SyncGroupResponse
	a.call(proto.KeySyncGroup, proto.Version, &proto.SyncGroupRequest{Group: "billing", Generation: 1, MemberID: idA,
		ProtocolType: "consumer", ProtocolName: "range",
		Assignments: []proto.SyncGroupAssignment{{MemberID: idA, Assignment: []byte("both partitions")}}}, &sync)
	if sync.ErrorCode != 0 || string(sync.Assignment) != "both partitions" || sync.ProtocolName != "range" || sync.ProtocolType != "consumer" {
		t.Fatalf("SyncGroup: %+v", sync)
	}
	if code := a.heartbeat("billing", idA, 1); code != errcode.None {
		t.Fatalf("Heartbeat: %v", code)
	}

	var commit proto.OffsetCommitResponse
	a.call(proto.KeyOffsetCommit, 2, commitV2("billing", idA, 1, 40), &commit)
	if code := commitCode(t, &commit); code != errcode.None {
		t.Fatalf("member commit: %v %q", code, commit.Topics[0].Partitions[0].ErrorMessage)
	}
	a.call(proto.KeyOffsetCommit, 2, commitV2("billing", idA, 9, 41), &commit)
	if code := commitCode(t, &commit); code != errcode.IllegalGeneration || commit.Topics[0].Partitions[0].ErrorMessage == "" {
		t.Fatalf("commit with a wrong generation: %+v", commit)
	}
	// Version 1 is a commit from outside group management: refused while the group has members.
	a.call(proto.KeyOffsetCommit, proto.Version, &proto.OffsetCommitRequest{Group: "billing", Topics: commitV2("", "", 0, 42).Topics}, &commit)
	if code := commitCode(t, &commit); code != errcode.UnknownMemberID {
		t.Fatalf("simple commit to a group with members: %v", code)
	}

	// A second member: its join starts a rebalance, which a's heartbeat learns of.
	idB, corrB := b.joinFirst("billing")
	if code := a.heartbeat("billing", idA, 1); code != errcode.RebalanceInProgress {
		t.Fatalf("Heartbeat during the rebalance: %v", code)
	}
	// A commit of the current generation is still accepted while the group prepares the
	// rebalance (consumers commit as their partitions are revoked).
	a.call(proto.KeyOffsetCommit, 2, commitV2("billing", idA, 1, 43), &commit)
	if code := commitCode(t, &commit); code != errcode.None {
		t.Fatalf("commit while rebalancing: %v", code)
	}
	corrA := a.send(proto.KeyJoinGroup, proto.Version, joinReq("billing", idA))
	var joinA, joinB proto.JoinGroupResponse
	a.recv(corrA, &joinA)
	b.recv(corrB, &joinB)
	if joinA.Generation != 2 || joinB.Generation != 2 || joinA.Leader != idA || joinB.Leader != idA || len(joinA.Members) != 2 || len(joinB.Members) != 0 {
		t.Fatalf("rejoin: leader %+v, follower %+v", joinA, joinB)
	}
	// The follower's SyncGroup waits for the leader's.
	corrB = b.send(proto.KeySyncGroup, proto.Version, &proto.SyncGroupRequest{Group: "billing", Generation: 2, MemberID: idB})
	b.tr.none(t, 50*time.Millisecond)
	a.call(proto.KeySyncGroup, proto.Version, &proto.SyncGroupRequest{Group: "billing", Generation: 2, MemberID: idA,
		Assignments: []proto.SyncGroupAssignment{{MemberID: idA, Assignment: []byte("partition 0")}, {MemberID: idB, Assignment: []byte("partition 1")}}}, &sync)
	if sync.ErrorCode != 0 || string(sync.Assignment) != "partition 0" {
		t.Fatalf("leader's SyncGroup: %+v", sync)
	}
	b.recv(corrB, &sync)
	if sync.ErrorCode != 0 || string(sync.Assignment) != "partition 1" {
		t.Fatalf("follower's SyncGroup: %+v", sync)
	}
	a.call(proto.KeyOffsetCommit, 2, commitV2("billing", idA, 1, 44), &commit)
	if code := commitCode(t, &commit); code != errcode.IllegalGeneration {
		t.Fatalf("commit of the generation before: %v", code)
	}

	// The members as DescribeGroups reports them: client id from the JoinGroup, host from the
	// connection.
	var described proto.DescribeGroupsResponse
	e.call(proto.KeyDescribeGroups, &proto.DescribeGroupsRequest{Groups: []string{"billing"}}, &described)
	hosts := map[string]string{}
	for _, m := range described.Groups[0].Members {
		if m.ClientID != "billing-app" {
			t.Errorf("member %s has client id %q", m.MemberID, m.ClientID)
		}
		hosts[m.MemberID] = m.ClientHost
	}
	if described.Groups[0].State != "Stable" || hosts[idA] != "/10.0.0.7" || hosts[idB] != "/10.0.0.8" {
		t.Fatalf("DescribeGroups: %+v", described)
	}

	var leave proto.LeaveGroupResponse
	b.call(proto.KeyLeaveGroup, proto.Version, &proto.LeaveGroupRequest{Group: "billing", Members: []proto.LeaveGroupMember{
		{MemberID: idB, Reason: "closing"}, {MemberID: "nobody"},
	}}, &leave)
	if leave.ErrorCode != 0 || len(leave.Members) != 2 || leave.Members[0].MemberID != idB || leave.Members[0].ErrorCode != 0 ||
		errcode.Code(leave.Members[1].ErrorCode) != errcode.UnknownMemberID {
		t.Fatalf("LeaveGroup: %+v", leave)
	}
	if code := a.heartbeat("billing", idA, 2); code != errcode.RebalanceInProgress {
		t.Fatalf("Heartbeat after a member left: %v", code)
	}
	if code := b.heartbeat("billing", idB, 2); code != errcode.UnknownMemberID {
		t.Fatalf("Heartbeat of the member that left: %v", code)
	}
}

// TestGroupMembershipErrors: what is answered before the coordinator sees a request (a body that
// does not decode, OffsetCommit version 3) and the coordinator's own checks.
func TestGroupMembershipErrors(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	c := e.newMemberConn("")
	for _, key := range []int16{proto.KeyJoinGroup, proto.KeySyncGroup, proto.KeyHeartbeat, proto.KeyLeaveGroup} {
		corr := c.send(key, proto.Version, rawBody((&proto.HeartbeatRequest{Group: "g"}).AppendTo(nil)[:3]))
		h, _, err := proto.ParseResponseHeader(c.tr.next(t)[proto.SizeLen:])
		if err != nil || h.CorrelationID != corr || errcode.Code(h.ErrorCode) != errcode.InvalidRequest {
			t.Fatalf("%s with a truncated body: %+v, %v", proto.KeyName(key), h, err)
		}
	}
	corr := c.send(proto.KeyOffsetCommit, 3, commitV2("g", "m", 1, 1))
	h, _, _ := proto.ParseResponseHeader(c.tr.next(t)[proto.SizeLen:])
	if h.CorrelationID != corr || errcode.Code(h.ErrorCode) != errcode.UnsupportedVersion || h.ErrorMessage != "OffsetCommit version 3 is not supported (supported: 1-2)" {
		t.Fatalf("OffsetCommit version 3: %+v", h)
	}

	var join proto.JoinGroupResponse
	bad := joinReq("g", "")
	bad.SessionTimeoutMs = 1
	c.call(proto.KeyJoinGroup, proto.Version, bad, &join)
	if errcode.Code(join.ErrorCode) != errcode.InvalidSessionTimeout || join.Generation != -1 {
		t.Fatalf("JoinGroup with a 1 ms session: %+v", join)
	}
	c.call(proto.KeyJoinGroup, proto.Version, joinReq("", ""), &join)
	if errcode.Code(join.ErrorCode) != errcode.InvalidGroupID {
		t.Fatalf("JoinGroup without a group id: %+v", join)
	}
	c.call(proto.KeyJoinGroup, proto.Version, joinReq("g", "never-handed-out"), &join)
	if errcode.Code(join.ErrorCode) != errcode.UnknownMemberID {
		t.Fatalf("JoinGroup with an unknown member id: %+v", join)
	}
	var sync proto.SyncGroupResponse
	c.call(proto.KeySyncGroup, proto.Version, &proto.SyncGroupRequest{Group: "g", Generation: 1, MemberID: "m"}, &sync)
	if errcode.Code(sync.ErrorCode) != errcode.UnknownMemberID {
		t.Fatalf("SyncGroup of an unknown group: %+v", sync)
	}
	var leave proto.LeaveGroupResponse
	c.call(proto.KeyLeaveGroup, proto.Version, &proto.LeaveGroupRequest{Group: "g", Members: []proto.LeaveGroupMember{{MemberID: "m"}}}, &leave)
	if errcode.Code(leave.ErrorCode) != errcode.UnknownMemberID {
		t.Fatalf("LeaveGroup of an unknown group: %+v", leave)
	}
	var commit proto.OffsetCommitResponse
	c.call(proto.KeyOffsetCommit, 2, commitV2("g", "m", 1, 5), &commit)
	if code := commitCode(t, &commit); code != errcode.IllegalGeneration {
		t.Fatalf("member commit to an unknown group: %v", code)
	}
	// Version 2 with generation -1 and no member is a simple commit.
	c.call(proto.KeyOffsetCommit, 2, commitV2("g", "", -1, 5), &commit)
	if code := commitCode(t, &commit); code != errcode.None {
		t.Fatalf("simple commit as version 2: %v", code)
	}
}

// TestGroupMembershipWithoutCoordinator: a broker started without a coordinator answers every
// membership API COORDINATOR_NOT_AVAILABLE at the top level.
func TestGroupMembershipWithoutCoordinator(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.server.coordinator = nil
	c := e.newMemberConn("")
	reqs := map[int16]interface{ AppendTo([]byte) []byte }{
		proto.KeyJoinGroup: joinReq("g", ""), proto.KeySyncGroup: &proto.SyncGroupRequest{Group: "g"},
		proto.KeyHeartbeat: &proto.HeartbeatRequest{Group: "g"}, proto.KeyLeaveGroup: &proto.LeaveGroupRequest{Group: "g"},
	}
	for key, req := range reqs {
		corr := c.send(key, proto.Version, req)
		h, _, _ := proto.ParseResponseHeader(c.tr.next(t)[proto.SizeLen:])
		if h.CorrelationID != corr || errcode.Code(h.ErrorCode) != errcode.CoordinatorNotAvailable {
			t.Fatalf("%s: %+v", proto.KeyName(key), h)
		}
	}
}
