package proto

import (
	"reflect"
	"slices"
	"strings"
)

// message is what every request and response body implements.
type message interface {
	AppendTo(dst []byte) []byte
	ReadFrom(body []byte) error
}

// api lists, for one API key, a fresh-value constructor for its request and response bodies and a
// representative sample of each. The golden files, the fuzz seed corpus and the round-trip tests
// are all built from this table, so a new API only needs a row here. An API that is never
// answered (Peer) has nil newResp and response.
type api struct {
	key      int16
	version  int16  // 0: Version
	name     string // file-name stem: 00_produce, 04_offset_commit_v2 for a later version
	newReq   func() message
	newResp  func() message
	request  message
	response message
}

// someRecords stands in for RecordBatch v2 bytes: the protocol layer treats records as opaque.
var someRecords = []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x31batch")

var apis = []api{
	{
		key: KeyProduce, name: "00_produce",
		newReq: func() message { return new(ProduceRequest) }, newResp: func() message { return new(ProduceResponse) },
		request: &ProduceRequest{Acks: AcksAll, TimeoutMs: 30000, Topics: []ProduceTopic{
			{Name: []byte("orders"), Partitions: []ProducePartition{{Partition: 0, Records: someRecords}, {Partition: 3, Records: []byte{}}}},
			{Name: []byte("audit"), Partitions: []ProducePartition{{Partition: 1, Records: nil}}},
		}},
		response: &ProduceResponse{ThrottleTimeMs: 5, Topics: []ProduceTopicResponse{
			{Name: "orders", Partitions: []ProducePartitionResponse{
				{Partition: 0, BaseOffset: 100, LogAppendTime: -1, LogStartOffset: 0, Leader: LeaderHint{ID: 1, Addr: "10.0.0.1:9092"}},
				{Partition: 3, ErrorCode: 6, ErrorMessage: "not the leader", BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Leader: LeaderHint{ID: 2, Addr: "10.0.0.2:9092"}},
			}},
		}},
	},
	{
		key: KeyFetch, name: "01_fetch",
		newReq: func() message { return new(FetchRequest) }, newResp: func() message { return new(FetchResponse) },
		request: &FetchRequest{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, Topics: []FetchTopic{
			{Name: []byte("orders"), Partitions: []FetchPartition{{Partition: 0, FetchOffset: 42, PartitionMaxBytes: 1 << 16}, {Partition: 1, FetchOffset: 0, PartitionMaxBytes: 1024}}},
		}},
		response: &FetchResponse{ThrottleTimeMs: 0, Topics: []FetchTopicResponse{
			{Name: "orders", Partitions: []FetchPartitionResponse{
				{Partition: 0, HighWatermark: 50, LogStartOffset: 10, Leader: LeaderHint{ID: 1, Addr: "10.0.0.1:9092"}, Records: someRecords},
				{Partition: 1, ErrorCode: 6, ErrorMessage: "not the leader", HighWatermark: -1, LogStartOffset: -1, Leader: LeaderHint{ID: 2, Addr: "10.0.0.2:9092"}, Records: nil},
				{Partition: 2, HighWatermark: 7, LogStartOffset: 7, Leader: NoLeader, Records: []byte{}},
			}},
		}},
	},
	{
		key: KeyListOffsets, name: "02_list_offsets",
		newReq: func() message { return new(ListOffsetsRequest) }, newResp: func() message { return new(ListOffsetsResponse) },
		request: &ListOffsetsRequest{Topics: []ListOffsetsTopic{
			{Name: "orders", Partitions: []ListOffsetsPartition{{0, TimestampEarliest}, {1, TimestampLatest}, {2, 1_700_000_000_000}}},
		}},
		response: &ListOffsetsResponse{Topics: []ListOffsetsTopicResponse{
			{Name: "orders", Partitions: []ListOffsetsPartitionResponse{
				{Partition: 0, Timestamp: -1, Offset: 10, Leader: LeaderHint{ID: 1, Addr: "a:1"}},
				{Partition: 1, Timestamp: -1, Offset: 50, Leader: LeaderHint{ID: 1, Addr: "a:1"}},
				{Partition: 2, ErrorCode: 6, ErrorMessage: "moved", Timestamp: -1, Offset: -1, Leader: NoLeader},
			}},
		}},
	},
	{
		key: KeyMetadata, name: "03_metadata",
		newReq: func() message { return new(MetadataRequest) }, newResp: func() message { return new(MetadataResponse) },
		request: &MetadataRequest{Topics: []string{"orders", "audit"}, AllowAutoCreate: true},
		response: &MetadataResponse{ClusterID: "thorstream-1", ControllerID: 1,
			Brokers: []MetadataBroker{{1, "10.0.0.1", 9092}, {2, "10.0.0.2", 9092}},
			Topics: []MetadataTopic{
				{Name: "orders", Partitions: []MetadataPartition{
					{Partition: 0, Leader: 1, LeaderEpoch: 3, Replicas: []int32{1, 2}, ISR: []int32{1, 2}},
					{Partition: 1, ErrorCode: 5, Leader: -1, LeaderEpoch: 4, Replicas: []int32{2, 1}, ISR: []int32{1}},
				}, Configs: []ConfigEntry{{"retention.ms", "604800000"}}},
				{ErrorCode: 3, ErrorMessage: "unknown topic", Name: "missing"},
			}},
	},
	{
		key: KeyOffsetCommit, name: "04_offset_commit",
		newReq: func() message { return new(OffsetCommitRequest) }, newResp: func() message { return new(OffsetCommitResponse) },
		request: &OffsetCommitRequest{Group: "billing", Topics: []OffsetCommitTopic{
			{Name: "orders", Partitions: []OffsetCommitPartition{{0, 43, ""}, {1, 7, "checkpoint"}}},
		}},
		response: &OffsetCommitResponse{Topics: []PartitionErrorsTopic{
			{Name: "orders", Partitions: []PartitionError{{0, 0, ""}, {1, 25, "unknown member"}}},
		}},
	},
	{
		key: KeyOffsetFetch, name: "05_offset_fetch",
		newReq: func() message { return new(OffsetFetchRequest) }, newResp: func() message { return new(OffsetFetchResponse) },
		request: &OffsetFetchRequest{Group: "billing", Topics: []OffsetFetchTopic{{Name: "orders", Partitions: []int32{0, 1, 2}}}},
		response: &OffsetFetchResponse{Topics: []OffsetFetchTopicResponse{
			{Name: "orders", Partitions: []OffsetFetchPartitionResponse{{0, 43, "", 0, ""}, {1, 7, "checkpoint", 0, ""}, {2, -1, "", 0, ""}}},
		}},
	},
	{
		key: KeyCreateTopics, name: "06_create_topics",
		newReq: func() message { return new(CreateTopicsRequest) }, newResp: func() message { return new(TopicErrorsResponse) },
		request: &CreateTopicsRequest{TimeoutMs: 10000, ValidateOnly: false, Topics: []CreateTopic{
			{Name: "orders", NumPartitions: 6, ReplicationFactor: 3, Configs: []ConfigEntry{{"cleanup.policy", "delete"}}},
			{Name: "audit", NumPartitions: -1, ReplicationFactor: -1},
		}},
		response: &TopicErrorsResponse{Topics: []TopicError{{"orders", 0, ""}, {"audit", 36, "topic already exists"}}},
	},
	{
		key: KeyDeleteTopics, name: "07_delete_topics",
		newReq: func() message { return new(DeleteTopicsRequest) }, newResp: func() message { return new(TopicErrorsResponse) },
		request:  &DeleteTopicsRequest{Names: []string{"orders", "audit"}, TimeoutMs: 10000},
		response: &TopicErrorsResponse{Topics: []TopicError{{"orders", 0, ""}, {"audit", 3, "unknown topic"}}},
	},
	{
		key: KeyAPIVersions, name: "08_api_versions",
		newReq: func() message { return new(APIVersionsRequest) }, newResp: func() message { return new(APIVersionsResponse) },
		request:  &APIVersionsRequest{},
		response: &APIVersionsResponse{APIs: Supported, NodeID: 1, Software: "thorstream/0.1.0"},
	},
	{
		key: KeyPing, name: "09_ping",
		newReq: func() message { return new(PingRequest) }, newResp: func() message { return new(PingResponse) },
		request:  &PingRequest{Echo: 1_700_000_000_123},
		response: &PingResponse{Echo: 1_700_000_000_123, NodeID: 1},
	},
	{
		key: KeyBrokerStatus, name: "10_broker_status",
		newReq: func() message { return new(BrokerStatusRequest) }, newResp: func() message { return new(BrokerStatusResponse) },
		request: &BrokerStatusRequest{},
		response: &BrokerStatusResponse{NodeID: 1, Version: "v0.1.0", UptimeMs: 90_061_000, Topics: 3, Partitions: 7, DataBytes: 1 << 30,
			Listeners: []BrokerListener{{"binary", "0.0.0.0:9092", "10.0.0.1:9092"}, {"kafka", "0.0.0.0:9093", "10.0.0.1:9093"}}},
	},
	{
		key: KeyAlterConfigs, name: "11_alter_configs",
		newReq: func() message { return new(AlterConfigsRequest) }, newResp: func() message { return new(TopicErrorsResponse) },
		request: &AlterConfigsRequest{Topics: []AlterConfigsTopic{
			{Name: "orders", Configs: []ConfigOp{{ConfigOpSet, "retention.ms", "3600000"}, {ConfigOpDelete, "max.message.bytes", ""}}},
			{Name: "audit", Configs: []ConfigOp{{ConfigOpAppend, "cleanup.policy", "compact"}}},
		}},
		response: &TopicErrorsResponse{Topics: []TopicError{{"orders", 0, ""}, {"audit", 40, "config cleanup.policy: bad value"}}},
	},
	{
		key: KeyCreatePartitions, name: "12_create_partitions",
		newReq: func() message { return new(CreatePartitionsRequest) }, newResp: func() message { return new(TopicErrorsResponse) },
		request:  &CreatePartitionsRequest{Topics: []CreatePartitionsTopic{{"orders", 12}, {"audit", 2}}, TimeoutMs: 10000},
		response: &TopicErrorsResponse{Topics: []TopicError{{"orders", 0, ""}, {"audit", 37, "topic \"audit\" already has 2 partitions"}}},
	},
	{
		key: KeyListGroups, name: "13_list_groups",
		newReq: func() message { return new(ListGroupsRequest) }, newResp: func() message { return new(ListGroupsResponse) },
		request: &ListGroupsRequest{States: []string{"Stable", "Empty"}},
		response: &ListGroupsResponse{Groups: []ListedGroup{
			{Group: "billing", ProtocolType: "consumer", State: "Stable"},
			{Group: "audit-archiver", ProtocolType: "consumer", State: "Empty"},
		}},
	},
	{
		key: KeyDescribeGroups, name: "14_describe_groups",
		newReq: func() message { return new(DescribeGroupsRequest) }, newResp: func() message { return new(DescribeGroupsResponse) },
		request: &DescribeGroupsRequest{Groups: []string{"billing", "gone"}},
		response: &DescribeGroupsResponse{Groups: []DescribedGroup{
			{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Members: []DescribedMember{
				{MemberID: "thorctl-1f3a", InstanceID: nil, ClientID: "thorctl", ClientHost: "/10.0.0.7",
					// ConsumerProtocolSubscription v0: topics ["orders"], null user data.
					Metadata: []byte("\x00\x00\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff"),
					// ConsumerProtocolAssignment v0: orders partitions [0, 1], null user data.
					Assignment: []byte("\x00\x00\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff")},
				{MemberID: "app-2-9c0d", InstanceID: ptr("app-2"), ClientID: "app", ClientHost: "/10.0.0.8", Metadata: []byte{}, Assignment: nil},
			}},
			{ErrorCode: 69, ErrorMessage: "group gone does not exist", Group: "gone", State: "Dead"},
		}},
	},
	{
		key: KeyDeleteGroups, name: "15_delete_groups",
		newReq: func() message { return new(DeleteGroupsRequest) }, newResp: func() message { return new(DeleteGroupsResponse) },
		request:  &DeleteGroupsRequest{Groups: []string{"billing", "audit-archiver"}},
		response: &DeleteGroupsResponse{Topics: []TopicError{{"billing", 68, "group billing has 2 members"}, {"audit-archiver", 0, ""}}},
	},
	{
		key: KeyJoinGroup, name: "16_join_group",
		newReq: func() message { return new(JoinGroupRequest) }, newResp: func() message { return new(JoinGroupResponse) },
		request: &JoinGroupRequest{Group: "billing", SessionTimeoutMs: 45000, RebalanceTimeoutMs: 60000,
			MemberID: "thorstream-go-7c1e", InstanceID: nil, ClientID: "thorstream-go", ProtocolType: "consumer",
			// ConsumerProtocolSubscription v3: topics ["orders"], null user data, no owned
			// partitions, generation -1, null rack.
			Protocols: []JoinGroupProtocol{{Name: "range", Metadata: []byte("\x00\x03\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff")}},
			Reason:    "rebalance: app-2 joined"},
		response: &JoinGroupResponse{Generation: 7, ProtocolType: "consumer", ProtocolName: "range", Leader: "thorstream-go-7c1e",
			MemberID: "thorstream-go-7c1e", Members: []JoinGroupMember{
				{MemberID: "thorstream-go-7c1e", InstanceID: nil, Metadata: []byte("\x00\x00\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff")},
				{MemberID: "app-2-9c0d", InstanceID: ptr("app-2"), Metadata: []byte{}},
			}},
	},
	{
		key: KeySyncGroup, name: "17_sync_group",
		newReq: func() message { return new(SyncGroupRequest) }, newResp: func() message { return new(SyncGroupResponse) },
		request: &SyncGroupRequest{Group: "billing", Generation: 7, MemberID: "thorstream-go-7c1e", ProtocolType: "consumer", ProtocolName: "range",
			Assignments: []SyncGroupAssignment{
				// ConsumerProtocolAssignment v3: orders partitions [0, 1], null user data.
				{MemberID: "thorstream-go-7c1e", Assignment: []byte("\x00\x03\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff")},
				{MemberID: "app-2-9c0d", Assignment: []byte("\x00\x03\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x01\x00\x00\x00\x02\xff\xff\xff\xff")},
			}},
		response: &SyncGroupResponse{ProtocolType: "consumer", ProtocolName: "range",
			Assignment: []byte("\x00\x03\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff")},
	},
	{
		key: KeyHeartbeat, name: "18_heartbeat",
		newReq: func() message { return new(HeartbeatRequest) }, newResp: func() message { return new(HeartbeatResponse) },
		request:  &HeartbeatRequest{Group: "billing", Generation: 7, MemberID: "app-2-9c0d", InstanceID: ptr("app-2")},
		response: &HeartbeatResponse{ErrorCode: 27, ErrorMessage: "the group is rebalancing"},
	},
	{
		key: KeyLeaveGroup, name: "19_leave_group",
		newReq: func() message { return new(LeaveGroupRequest) }, newResp: func() message { return new(LeaveGroupResponse) },
		request: &LeaveGroupRequest{Group: "billing", Members: []LeaveGroupMember{
			{MemberID: "thorstream-go-7c1e", Reason: "the consumer is closing"},
			{MemberID: "", InstanceID: ptr("app-3")},
		}},
		response: &LeaveGroupResponse{Members: []LeaveGroupMemberResponse{
			{MemberID: "thorstream-go-7c1e"},
			{MemberID: "", InstanceID: ptr("app-3"), ErrorCode: 25, ErrorMessage: "no member has instance id app-3"},
		}},
	},
	{
		key: KeyOffsetCommit, version: 2, name: "04_offset_commit_v2",
		newReq: func() message { return &OffsetCommitRequest{Version: 2} }, newResp: func() message { return new(OffsetCommitResponse) },
		request: &OffsetCommitRequest{Version: 2, Group: "billing", Generation: 7, MemberID: "app-2-9c0d", InstanceID: ptr("app-2"), Topics: []OffsetCommitTopic{
			{Name: "orders", Partitions: []OffsetCommitPartition{{2, 118, ""}}},
		}},
		response: &OffsetCommitResponse{Topics: []PartitionErrorsTopic{
			{Name: "orders", Partitions: []PartitionError{{2, 22, "generation 7 is not the group's (8)"}}},
		}},
	}, {
		key: KeyPeer, name: "20_peer",
		newReq:  func() message { return new(PeerRequest) },
		request: &PeerRequest{From: 2, Kind: 1, Payload: []byte("a consensus message")},
	},
	{
		key: KeyListOffsets, version: 2, name: "02_list_offsets_v2",
		newReq: func() message { return new(ListOffsetsRequest) }, newResp: func() message { return &ListOffsetsResponse{Version: 2} },
		request: &ListOffsetsRequest{Topics: []ListOffsetsTopic{
			{Name: "orders", Partitions: []ListOffsetsPartition{{0, TimestampLatest}, {1, TimestampLatest}}},
		}},
		response: &ListOffsetsResponse{Version: 2, Topics: []ListOffsetsTopicResponse{
			{Name: "orders", Partitions: []ListOffsetsPartitionResponse{
				{Partition: 0, Timestamp: -1, Offset: 48_480, Leader: LeaderHint{ID: 1, Addr: "a:1"}, Replicas: []ListOffsetsReplica{
					{Node: 1, LogEndOffset: 50_000, LastCaughtUpMs: 1_700_000_060_000},
					{Node: 2, LogEndOffset: 50_000, LastCaughtUpMs: 1_700_000_059_990},
					{Node: 0, LogEndOffset: 48_480, LastCaughtUpMs: 1_700_000_050_000},
				}},
				{Partition: 1, ErrorCode: 6, ErrorMessage: "moved", Timestamp: -1, Offset: -1, Leader: LeaderHint{ID: 2, Addr: "b:2"}},
			}},
		}},
	},
}

// apiVersion is the version a row's frames are sent with.
func (a api) apiVersion() int16 {
	if a.version == 0 {
		return Version
	}
	return a.version
}

// requestTypes and responseTypes are every distinct body type, fresh.
func requestTypes() []func() message {
	out := make([]func() message, 0, len(apis))
	for _, a := range apis {
		out = append(out, a.newReq)
	}
	return out
}

// responseTypes are every distinct response layout: a type, and for a versioned type each
// version its fresh value selects (ListOffsetsResponse{Version: 2}).
func responseTypes() []func() message {
	var seen []message
	var out []func() message
	for _, a := range apis {
		if a.newResp == nil {
			continue // never answered
		}
		fresh := a.newResp()
		if !slices.ContainsFunc(seen, func(m message) bool { return reflect.DeepEqual(m, fresh) }) {
			seen = append(seen, fresh)
			out = append(out, a.newResp)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func typeName(m message) string { return strings.TrimPrefix(reflect.TypeOf(m).String(), "*proto.") }
