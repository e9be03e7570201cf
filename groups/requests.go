package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// The requests and responses of the classic group protocol as the Shard sees them. The Kafka and
// binary-protocol handlers translate wire requests into these and back; fields a version does not
// carry are left zero (a nil InstanceID, a nil protocol name), and each request carries the
// Version where the coordinator's behaviour depends on it. The slices in a request (protocols,
// metadata, assignments) belong to the Shard from the call on: the caller must not change or
// reuse them. Slices in responses are shared with the Shard's state and are read-only.

// Protocol is one protocol (assignor) a member supports, with its metadata (for the consumer
// protocol type, a ConsumerProtocolSubscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request (API key 11, versions 0-9).
type JoinRequest struct {
	Version int16
	Group   string
	// SessionTimeout must lie within [Config.MinSessionTimeout, Config.MaxSessionTimeout].
	SessionTimeout time.Duration
	// RebalanceTimeout (v1+) bounds how long a rebalance waits for members to rejoin. Version 0
	// has none; zero or negative means the session timeout, as Kafka does for v0.
	RebalanceTimeout time.Duration
	// MemberID is empty on a member's first join.
	MemberID string
	// InstanceID is the static member's group.instance.id (v5+), nil for a dynamic member.
	InstanceID   *string
	ProtocolType string
	// Protocols in the member's order of preference; a repeated name counts once (the first).
	Protocols []Protocol
	// Reason is the client's reason for joining (v8+), for logs.
	Reason string
	// ClientID and ClientHost come from the request header and the connection.
	ClientID   string
	ClientHost string
}

// JoinMember is one member in the leader's JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	// Metadata is the member's metadata for the selected protocol.
	Metadata []byte
}

// JoinResponse is a JoinGroup response.
type JoinResponse struct {
	ErrorCode  errcode.Code
	Generation int32 // -1 with an error
	// ProtocolType (v7+) and ProtocolName are nil with an error.
	ProtocolType *string
	ProtocolName *string
	Leader       string
	// SkipAssignment (v9+) tells a static leader that rejoined without changes to keep the
	// current assignment rather than compute a new one.
	SkipAssignment bool
	// MemberID is the member's id: the generated one with MEMBER_ID_REQUIRED or a successful
	// first join, empty when the member must forget its id.
	MemberID string
	// Members is set for the leader only.
	Members []JoinMember
}

// SyncAssignment is the leader's assignment for one member.
type SyncAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncRequest is a SyncGroup request (API key 14, versions 0-5).
type SyncRequest struct {
	Version    int16
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string // v3+
	// ProtocolType and ProtocolName (v5+) must match the group's when set.
	ProtocolType *string
	ProtocolName *string
	// Assignments is sent by the leader only.
	Assignments []SyncAssignment
}

// SyncResponse is a SyncGroup response.
type SyncResponse struct {
	ErrorCode    errcode.Code
	ProtocolType *string // v5+, nil with an error
	ProtocolName *string // v5+, nil with an error
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat request (API key 12, versions 0-4).
type HeartbeatRequest struct {
	Version    int16
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string // v3+
}

// LeaveMember is one member leaving in a LeaveGroup request (v3+ batches them). A static member
// may be removed by its instance id alone, with an empty MemberID (an administrator's removal).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
	Reason     string // v5+
}

// LeaveRequest is a LeaveGroup request (API key 13, versions 0-5): MemberID for versions 0-2,
// Members from version 3.
type LeaveRequest struct {
	Version  int16
	Group    string
	MemberID string
	Members  []LeaveMember
}

// LeaveMemberResponse is the outcome for one LeaveMember.
type LeaveMemberResponse struct {
	MemberID   string
	InstanceID *string
	ErrorCode  errcode.Code
}

// LeaveResponse is a LeaveGroup response. For versions 0-2 ErrorCode carries the one member's
// outcome as well.
type LeaveResponse struct {
	ErrorCode errcode.Code
	Members   []LeaveMemberResponse
}

// CommitPartition is one partition's offset in an OffsetCommit request.
type CommitPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32  // v6+, -1 for none
	Metadata    string // a null metadata is stored as ""
}

// CommitTopic is one topic of an OffsetCommit request.
type CommitTopic struct {
	Topic      string
	Partitions []CommitPartition
}

// CommitRequest is an OffsetCommit request (API key 8, versions 0-9). Generation -1 with an empty
// MemberID is a commit from outside group management (a simple consumer, an administrator),
// accepted only while the group is Empty.
type CommitRequest struct {
	Version    int16
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string // v7+
	Topics     []CommitTopic
}

// CommitPartitionResponse is one partition's outcome.
type CommitPartitionResponse struct {
	Partition int32
	ErrorCode errcode.Code
}

// CommitTopicResponse is one topic's outcomes, in request order.
type CommitTopicResponse struct {
	Topic      string
	Partitions []CommitPartitionResponse
}

// CommitResponse is an OffsetCommit response: one code per partition, in request order.
type CommitResponse struct {
	Topics []CommitTopicResponse
}

// FetchTopic asks for some partitions of a topic.
type FetchTopic struct {
	Topic      string
	Partitions []int32
}

// FetchRequest is an OffsetFetch request for one group (API key 9; v8+ batches groups, which the
// handler splits). Topics nil asks for every committed offset of the group.
type FetchRequest struct {
	Version       int16
	Group         string
	Topics        []FetchTopic
	RequireStable bool // v7+
}

// FetchPartition is one partition's committed offset: Offset -1, LeaderEpoch -1 and Metadata ""
// when the group has none.
type FetchPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	ErrorCode   errcode.Code
}

// FetchTopicResponse is one topic of a FetchResponse.
type FetchTopicResponse struct {
	Topic      string
	Partitions []FetchPartition
}

// FetchResponse is an OffsetFetch response for one group. An unknown group is not an error: its
// partitions come back with offset -1 (and none at all when every offset was asked for).
type FetchResponse struct {
	ErrorCode errcode.Code
	Topics    []FetchTopicResponse
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// OffsetDeletePartition is one partition's outcome in an OffsetDelete response.
type OffsetDeletePartition struct {
	Topic     string
	Partition int32
	ErrorCode errcode.Code
}

// OffsetDeleteResponse is an OffsetDelete response (API key 47): ErrorCode for the group, then
// one code per requested partition, in request order.
type OffsetDeleteResponse struct {
	ErrorCode  errcode.Code
	Partitions []OffsetDeletePartition
}

// DescribedMember is one member in a DescribeGroups response.
type DescribedMember struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	// Metadata is the member's metadata for the selected protocol, set only while Stable.
	Metadata   []byte
	Assignment []byte
}

// DescribedGroup is one group in a DescribeGroups response (API key 15). A group this shard does
// not have is State "Dead" with GROUP_ID_NOT_FOUND, which the handler sends from version 6 and
// replaces with NONE below it, as Kafka does.
type DescribedGroup struct {
	ErrorCode    errcode.Code
	Group        string
	State        string
	ProtocolType string
	// Protocol is the selected protocol, set only while Stable.
	Protocol string
	Members  []DescribedMember
}

// ListedGroup is one group in a ListGroups response (API key 16).
type ListedGroup struct {
	Group        string
	ProtocolType string
	State        string
	Type         string // "classic"
}
