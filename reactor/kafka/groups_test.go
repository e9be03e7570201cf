package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

// The group APIs over the Kafka wire, as clients drive them: a member's whole life at the
// versions current clients pick, and the older versions' shapes.

func joinRequest(version int16, group, memberID string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("subscription")
	req.Group, req.MemberID, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, memberID, 10000, 10000
	req.ProtocolType, req.Protocols = "consumer", []kmsg.JoinGroupRequestProtocol{p}
	return req
}

func commitRequest(version int16, group string, generation int32, memberID, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = 0, offset, 7, kmsg.StringPtr("meta")
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic, t.Partitions = topic, []kmsg.OffsetCommitRequestTopicPartition{p}
	req.Group, req.Generation, req.MemberID, req.Topics = group, generation, memberID, []kmsg.OffsetCommitRequestTopic{t}
	return req
}

// TestKafkaGroupMemberLifecycle: join (MEMBER_ID_REQUIRED, then the generation), sync, heartbeat,
// commit, fetch (batched), describe, list with filters, leave, then delete the group, at the
// versions franz-go and librdkafka use.
func TestKafkaGroupMemberLifecycle(t *testing.T) {
	e := newEnv(t)
	if err := e.broker.CreateTopic(cluster.TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	first := e.call(joinRequest(9, "app", "")).(*kmsg.JoinGroupResponse)
	if first.ErrorCode != int16(errcode.MemberIDRequired) || first.MemberID == "" {
		t.Fatalf("first join: %+v", first)
	}
	member := first.MemberID
	joined := e.call(joinRequest(9, "app", member)).(*kmsg.JoinGroupResponse)
	if joined.ErrorCode != 0 || joined.Generation != 1 || joined.LeaderID != member || joined.Protocol == nil || *joined.Protocol != "range" ||
		joined.ProtocolType == nil || *joined.ProtocolType != "consumer" || len(joined.Members) != 1 || string(joined.Members[0].ProtocolMetadata) != "subscription" {
		t.Fatalf("join: %+v", joined)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = member, []byte("assignment")
	sync.Group, sync.Generation, sync.MemberID = "app", 1, member
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{a}
	synced := e.call(sync).(*kmsg.SyncGroupResponse)
	if synced.ErrorCode != 0 || string(synced.MemberAssignment) != "assignment" || synced.Protocol == nil || *synced.Protocol != "range" {
		t.Fatalf("sync: %+v", synced)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, "app", 1, member
	if r := e.call(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
		t.Fatalf("heartbeat: %+v", r)
	}
	hb.Generation = 2
	if r := e.call(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != int16(errcode.IllegalGeneration) {
		t.Fatalf("heartbeat of a wrong generation: %+v", r)
	}
	if r := e.call(commitRequest(9, "app", 1, member, "orders", 42)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", r)
	}
	if r := e.call(commitRequest(9, "app", -1, "", "orders", 1)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != int16(errcode.UnknownMemberID) {
		t.Fatalf("a simple commit to a group with members: %+v", r)
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 8
	for _, g := range []string{"app", "nobody"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = "orders", []int32{0}
		rg.Group, rg.Topics = g, []kmsg.OffsetFetchRequestGroupTopic{rt}
		fetch.Groups = append(fetch.Groups, rg)
	}
	all := kmsg.NewOffsetFetchRequestGroup()
	all.Group = "app" // null topics: every committed offset
	fetch.Groups = append(fetch.Groups, all)
	fetched := e.call(fetch).(*kmsg.OffsetFetchResponse)
	if len(fetched.Groups) != 3 {
		t.Fatalf("fetch: %+v", fetched)
	}
	for i, want := range []int64{42, -1, 42} {
		g := fetched.Groups[i]
		if g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].Offset != want {
			t.Fatalf("fetch group %d: %+v", i, g)
		}
	}
	if p := fetched.Groups[0].Topics[0].Partitions[0]; p.LeaderEpoch != 7 || p.Metadata == nil || *p.Metadata != "meta" {
		t.Fatalf("fetched %+v", p)
	}

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Version, describe.Groups, describe.IncludeAuthorizedOperations = 5, []string{"app", "nobody"}, true
	described := e.call(describe).(*kmsg.DescribeGroupsResponse)
	if len(described.Groups) != 2 {
		t.Fatalf("describe: %+v", described)
	}
	g := described.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || g.Protocol != "range" || g.ProtocolType != "consumer" || len(g.Members) != 1 ||
		g.Members[0].MemberID != member || g.Members[0].ClientID != "unit-test" || string(g.Members[0].MemberAssignment) != "assignment" ||
		g.AuthorizedOperations != groupOperations {
		t.Fatalf("describe app: %+v", g)
	}
	if g := described.Groups[1]; g.ErrorCode != 0 || g.State != "Dead" {
		t.Fatalf("describe an unknown group: %+v", g)
	}

	list := kmsg.NewPtrListGroupsRequest()
	list.Version = 5
	listed := e.call(list).(*kmsg.ListGroupsResponse)
	if listed.ErrorCode != 0 || len(listed.Groups) != 1 || listed.Groups[0].Group != "app" || listed.Groups[0].GroupState != "Stable" ||
		listed.Groups[0].GroupType != "classic" || listed.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("list: %+v", listed)
	}
	list.StatesFilter = []string{"empty"}
	if listed := e.call(list).(*kmsg.ListGroupsResponse); len(listed.Groups) != 0 {
		t.Fatalf("list Empty groups: %+v", listed)
	}
	list.StatesFilter, list.TypesFilter = nil, []string{"consumer"}
	if listed := e.call(list).(*kmsg.ListGroupsResponse); len(listed.Groups) != 0 {
		t.Fatalf("list consumer (KIP-848) groups: %+v", listed)
	}
	list.TypesFilter = []string{"Classic"}
	if listed := e.call(list).(*kmsg.ListGroupsResponse); len(listed.Groups) != 1 {
		t.Fatalf("list classic groups: %+v", listed)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"app"}
	if r := e.call(del).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != int16(errcode.NonEmptyGroup) {
		t.Fatalf("delete a group with members: %+v", r)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "app"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID, m.Reason = member, kmsg.StringPtr("done")
	leave.Members = []kmsg.LeaveGroupRequestMember{m}
	if r := e.call(leave).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 || len(r.Members) != 1 || r.Members[0].ErrorCode != 0 || r.Members[0].MemberID != member {
		t.Fatalf("leave: %+v", r)
	}
	odel := kmsg.NewPtrOffsetDeleteRequest()
	ot := kmsg.NewOffsetDeleteRequestTopic()
	ot.Topic, ot.Partitions = "orders", []kmsg.OffsetDeleteRequestTopicPartition{kmsg.NewOffsetDeleteRequestTopicPartition()}
	odel.Group, odel.Topics = "app", []kmsg.OffsetDeleteRequestTopic{ot}
	if r := e.call(odel).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r)
	}
	if r := e.call(commitRequest(9, "app", -1, "", "orders", 5)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("a simple commit to the empty group: %+v", r)
	}
	if r := e.call(del).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete the empty group: %+v", r)
	}
	if r := e.call(del).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != int16(errcode.GroupIDNotFound) {
		t.Fatalf("delete it again: %+v", r)
	}
}

// TestKafkaGroupOldVersions: v0 of each API, as kafka-go and old clients send them.
func TestKafkaGroupOldVersions(t *testing.T) {
	e := newEnv(t)
	joined := e.call(joinRequest(0, "old", "")).(*kmsg.JoinGroupResponse)
	if joined.ErrorCode != 0 || joined.MemberID == "" || joined.Generation != 1 || joined.Protocol == nil || *joined.Protocol != "range" {
		t.Fatalf("join v0 (no member id round trip): %+v", joined)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = joined.MemberID, []byte("a")
	sync.Group, sync.Generation, sync.MemberID, sync.GroupAssignment = "old", 1, joined.MemberID, []kmsg.SyncGroupRequestGroupAssignment{a}
	if r := e.call(sync).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 || string(r.MemberAssignment) != "a" {
		t.Fatalf("sync v0: %+v", r)
	}
	// v0 commits carry no generation: a simple commit, refused while the group has members.
	if r := e.call(commitRequest(0, "old", 0, "", "t", 3)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != int16(errcode.UnknownMemberID) {
		t.Fatalf("commit v0 to a group with members: %+v", r)
	}
	if r := e.call(commitRequest(1, "old", 1, joined.MemberID, "t", 3)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit v1 as the member: %+v", r)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1}
	fetch.Group, fetch.Topics = "old", []kmsg.OffsetFetchRequestTopic{ft}
	fetched := e.call(fetch).(*kmsg.OffsetFetchResponse)
	if got := fetched.Topics[0].Partitions; len(got) != 2 || got[0].Offset != 3 || got[1].Offset != -1 || *got[0].Metadata != "meta" {
		t.Fatalf("fetch v0: %+v", fetched)
	}
	fetch.Group = ""
	fetched = e.call(fetch).(*kmsg.OffsetFetchResponse)
	if got := fetched.Topics[0].Partitions; len(got) != 2 || got[0].ErrorCode != int16(errcode.InvalidGroupID) || got[1].ErrorCode != int16(errcode.InvalidGroupID) {
		t.Fatalf("fetch v0 of an empty group id carries the error in every partition: %+v", fetched)
	}
	fetch.Version, fetch.Topics = 3, nil
	fetched = e.call(fetch).(*kmsg.OffsetFetchResponse)
	if fetched.ErrorCode != int16(errcode.InvalidGroupID) || len(fetched.Topics) != 0 {
		t.Fatalf("fetch v3 of an empty group id: %+v", fetched)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "old", 1, joined.MemberID
	if r := e.call(hb).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
		t.Fatalf("heartbeat v0: %+v", r)
	}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"old"}
	d := e.call(describe).(*kmsg.DescribeGroupsResponse)
	if len(d.Groups) != 1 || d.Groups[0].State != "Stable" || len(d.Groups[0].Members) != 1 {
		t.Fatalf("describe v0: %+v", d)
	}
	list := kmsg.NewPtrListGroupsRequest()
	if r := e.call(list).(*kmsg.ListGroupsResponse); len(r.Groups) != 1 || r.Groups[0].Group != "old" {
		t.Fatalf("list v0: %+v", r)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "old", joined.MemberID
	if r := e.call(leave).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("leave v0: %+v", r)
	}
	if r := e.call(leave).(*kmsg.LeaveGroupResponse); r.ErrorCode != int16(errcode.UnknownMemberID) {
		t.Fatalf("leave v0 again: %+v", r)
	}
	if r := e.call(commitRequest(0, "old", 0, "", "t", 9)).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit v0 to the empty group: %+v", r)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"old", "never"}
	r := e.call(del).(*kmsg.DeleteGroupsResponse)
	codes := []int16{r.Groups[0].ErrorCode, r.Groups[1].ErrorCode}
	if !slices.Equal(codes, []int16{0, int16(errcode.GroupIDNotFound)}) || r.Groups[0].Group != "old" || r.Groups[1].Group != "never" {
		t.Fatalf("delete v0: %+v", r)
	}
}

// TestKafkaFindCoordinator: groups are coordinated here, batched from v4; without a coordinator
// the answer is COORDINATOR_NOT_AVAILABLE.
func TestKafkaFindCoordinator(t *testing.T) {
	e := newEnv(t)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorKeys = 4, []string{"a", "b"}
	r := e.call(req).(*kmsg.FindCoordinatorResponse)
	if len(r.Coordinators) != 2 || r.Coordinators[1].Key != "b" || r.Coordinators[1].Port != 9092 || r.Coordinators[1].ErrorCode != 0 {
		t.Fatalf("v4: %+v", r)
	}
	e.server.coordinator = nil
	req.Version, req.CoordinatorKey = 3, "a"
	r = e.call(req).(*kmsg.FindCoordinatorResponse)
	if r.ErrorCode != int16(errcode.CoordinatorNotAvailable) || r.NodeID != -1 {
		t.Fatalf("v3 without a coordinator: %+v", r)
	}
	join := e.call(joinRequest(9, "g", "")).(*kmsg.JoinGroupResponse)
	if join.ErrorCode != int16(errcode.CoordinatorNotAvailable) {
		t.Fatalf("join without a coordinator: %+v", join)
	}
}
