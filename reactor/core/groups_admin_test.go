package core

import (
	"reflect"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// joinStable makes one consumer the only member of group, through the coordinator as a Kafka
// client would (JoinGroup, then SyncGroup as the leader), and returns its member id.
func joinStable(t *testing.T, e *env, group string, assignment []byte) string {
	t.Helper()
	joined := make(chan groups.JoinResponse, 1)
	e.coord.Join(groups.JoinRequest{Version: 3, Group: group, SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
		ProtocolType: "consumer", Protocols: []groups.Protocol{{Name: "range", Metadata: []byte("subscription")}},
		ClientID: "app", ClientHost: "/10.0.0.7"}, func(r groups.JoinResponse) { joined <- r })
	var j groups.JoinResponse
	select {
	case j = <-joined:
	case <-time.After(waitTimeout):
		t.Fatal("JoinGroup did not complete")
	}
	if j.ErrorCode != errcode.None || j.Leader != j.MemberID {
		t.Fatalf("JoinGroup: %+v", j)
	}
	synced := make(chan groups.SyncResponse, 1)
	e.coord.Sync(groups.SyncRequest{Version: 3, Group: group, Generation: j.Generation, MemberID: j.MemberID,
		Assignments: []groups.SyncAssignment{{MemberID: j.MemberID, Assignment: assignment}}}, func(r groups.SyncResponse) { synced <- r })
	select {
	case s := <-synced:
		if s.ErrorCode != errcode.None {
			t.Fatalf("SyncGroup: %+v", s)
		}
	case <-time.After(waitTimeout):
		t.Fatal("SyncGroup did not complete")
	}
	return j.MemberID
}

// TestGroupAdmin: ListGroups, DescribeGroups and DeleteGroups over the binary protocol, served
// by the coordinator: a group that only has offsets, one with a member, unknown and empty ids.
func TestGroupAdmin(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("orders", 2)

	var list proto.ListGroupsResponse
	e.call(proto.KeyListGroups, &proto.ListGroupsRequest{}, &list)
	if list.ErrorCode != 0 || len(list.Groups) != 0 {
		t.Fatalf("ListGroups with no groups: %+v", list)
	}

	var commit proto.OffsetCommitResponse
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "archiver", Topics: []proto.OffsetCommitTopic{
		{Name: "orders", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 5}, {Partition: 1, Offset: 9}}},
	}}, &commit)
	if commit.Topics[0].Partitions[0].ErrorCode != 0 || commit.Topics[0].Partitions[1].ErrorCode != 0 {
		t.Fatalf("OffsetCommit: %+v", commit)
	}
	member := joinStable(t, e, "billing", []byte("assignment"))

	e.call(proto.KeyListGroups, &proto.ListGroupsRequest{}, &list)
	want := []proto.ListedGroup{{Group: "archiver", ProtocolType: "", State: "Empty"}, {Group: "billing", ProtocolType: "consumer", State: "Stable"}}
	if list.ErrorCode != 0 || !reflect.DeepEqual(list.Groups, want) {
		t.Fatalf("ListGroups = %+v, want %+v", list, want)
	}
	e.call(proto.KeyListGroups, &proto.ListGroupsRequest{States: []string{"stable", "PreparingRebalance"}}, &list)
	if !reflect.DeepEqual(list.Groups, want[1:]) {
		t.Fatalf("ListGroups(stable) = %+v", list.Groups)
	}

	var described proto.DescribeGroupsResponse
	e.call(proto.KeyDescribeGroups, &proto.DescribeGroupsRequest{Groups: []string{"billing", "archiver", "nobody", "", "billing"}}, &described)
	billing := proto.DescribedGroup{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Members: []proto.DescribedMember{
		{MemberID: member, ClientID: "app", ClientHost: "/10.0.0.7", Metadata: []byte("subscription"), Assignment: []byte("assignment")},
	}}
	wantDescribed := []proto.DescribedGroup{
		billing,
		{Group: "archiver", State: "Empty"},
		{ErrorCode: int16(errcode.GroupIDNotFound), ErrorMessage: `group "nobody" does not exist`, Group: "nobody", State: "Dead"},
		{ErrorCode: int16(errcode.InvalidGroupID), ErrorMessage: "the group id is empty", Group: "", State: "Dead"},
		billing,
	}
	if !reflect.DeepEqual(described.Groups, wantDescribed) {
		t.Fatalf("DescribeGroups =\n%+v\nwant\n%+v", described.Groups, wantDescribed)
	}
	e.call(proto.KeyDescribeGroups, &proto.DescribeGroupsRequest{}, &described)
	if len(described.Groups) != 0 {
		t.Fatalf("DescribeGroups of no groups: %+v", described)
	}

	var deleted proto.DeleteGroupsResponse
	e.call(proto.KeyDeleteGroups, &proto.DeleteGroupsRequest{Groups: []string{"billing", "archiver", "archiver", "nobody"}}, &deleted)
	wantDeleted := []proto.TopicError{
		{Name: "billing", ErrorCode: int16(errcode.NonEmptyGroup), ErrorMessage: `group "billing" has members: it can be deleted once they have left`},
		{Name: "archiver"},
		{Name: "archiver", ErrorCode: int16(errcode.InvalidRequest), ErrorMessage: `group "archiver" appears twice in the request`},
		{Name: "nobody", ErrorCode: int16(errcode.GroupIDNotFound), ErrorMessage: `group "nobody" does not exist`},
	}
	if !reflect.DeepEqual(deleted.Topics, wantDeleted) {
		t.Fatalf("DeleteGroups =\n%+v\nwant\n%+v", deleted.Topics, wantDeleted)
	}
	// The deleted group's offsets are gone; the other group is untouched.
	var fetched proto.OffsetFetchResponse
	e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "archiver", Topics: nil}, &fetched)
	if len(fetched.Topics) != 0 {
		t.Fatalf("offsets of the deleted group: %+v", fetched)
	}
	e.call(proto.KeyListGroups, &proto.ListGroupsRequest{}, &list)
	if !reflect.DeepEqual(list.Groups, want[1:]) {
		t.Fatalf("ListGroups after the deletion = %+v", list.Groups)
	}

	// Once its member has left, the group can be deleted.
	left := make(chan groups.LeaveResponse, 1)
	e.coord.Leave(groups.LeaveRequest{Version: 3, Group: "billing", Members: []groups.LeaveMember{{MemberID: member}}},
		func(r groups.LeaveResponse) { left <- r })
	select {
	case r := <-left:
		if r.ErrorCode != errcode.None {
			t.Fatalf("LeaveGroup: %+v", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("LeaveGroup did not complete")
	}
	e.call(proto.KeyDeleteGroups, &proto.DeleteGroupsRequest{Groups: []string{"billing"}}, &deleted)
	if len(deleted.Topics) != 1 || deleted.Topics[0].ErrorCode != 0 {
		t.Fatalf("DeleteGroups after the member left: %+v", deleted)
	}
}

// TestGroupAdminMalformedAndWithoutCoordinator: bodies that do not decode get INVALID_REQUEST; a
// broker without a coordinator answers COORDINATOR_NOT_AVAILABLE, which clients retry.
func TestGroupAdminMalformedAndWithoutCoordinator(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	for _, key := range []int16{proto.KeyListGroups, proto.KeyDescribeGroups, proto.KeyDeleteGroups} {
		for _, body := range [][]byte{{0, 0, 0}, {0, 0, 0, 1, 0}, {0, 0, 0, 0, 9}} {
			corr := e.send(key, proto.Version, body)
			if h, rest := e.recv(corr); h.ErrorCode != int16(errcode.InvalidRequest) || len(rest) != 0 {
				t.Errorf("%s % x: %+v, body % x; want INVALID_REQUEST and no body", proto.KeyName(key), body, h, rest)
			}
		}
	}

	s, err := NewServer(Options{Broker: e.broker, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	for _, key := range []int16{proto.KeyListGroups, proto.KeyDescribeGroups, proto.KeyDeleteGroups} {
		corr := e.send(key, proto.Version, proto.AppendArrayLen(nil, 0))
		if h, _ := e.recv(corr); h.ErrorCode != int16(errcode.CoordinatorNotAvailable) {
			t.Errorf("%s without a coordinator: %+v", proto.KeyName(key), h)
		}
	}
}
