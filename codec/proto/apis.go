package proto

// API keys of the binary protocol. Peer (key 20) carries the traffic between the nodes of a
// cluster (consensus, heartbeats) and is never answered.
const (
	KeyProduce          int16 = 0
	KeyFetch            int16 = 1
	KeyListOffsets      int16 = 2
	KeyMetadata         int16 = 3
	KeyOffsetCommit     int16 = 4
	KeyOffsetFetch      int16 = 5
	KeyCreateTopics     int16 = 6
	KeyDeleteTopics     int16 = 7
	KeyAPIVersions      int16 = 8
	KeyPing             int16 = 9
	KeyBrokerStatus     int16 = 10
	KeyAlterConfigs     int16 = 11
	KeyCreatePartitions int16 = 12
	KeyListGroups       int16 = 13
	KeyDescribeGroups   int16 = 14
	KeyDeleteGroups     int16 = 15
	KeyJoinGroup        int16 = 16
	KeySyncGroup        int16 = 17
	KeyHeartbeat        int16 = 18
	KeyLeaveGroup       int16 = 19
	KeyPeer             int16 = 20
)

// APIRange is the span of versions the broker serves for one key.
type APIRange struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
}

// Supported lists every API of protocol v1 and its versions, by key. Every API has version 1;
// ListOffsets also version 2 (the leader's view of each replica), OffsetCommit version 2 (a group
// member's commit). Peer is for the nodes of a cluster, not for clients.
var Supported = []APIRange{
	{KeyProduce, 1, 1},
	{KeyFetch, 1, 1},
	{KeyListOffsets, 1, 2},
	{KeyMetadata, 1, 1},
	{KeyOffsetCommit, 1, 2},
	{KeyOffsetFetch, 1, 1},
	{KeyCreateTopics, 1, 1},
	{KeyDeleteTopics, 1, 1},
	{KeyAPIVersions, 1, 1},
	{KeyPing, 1, 1},
	{KeyBrokerStatus, 1, 1},
	{KeyAlterConfigs, 1, 1},
	{KeyCreatePartitions, 1, 1},
	{KeyListGroups, 1, 1},
	{KeyDescribeGroups, 1, 1},
	{KeyDeleteGroups, 1, 1},
	{KeyJoinGroup, 1, 1},
	{KeySyncGroup, 1, 1},
	{KeyHeartbeat, 1, 1},
	{KeyLeaveGroup, 1, 1},
	{KeyPeer, 1, 1},
}

// Version is the first version of every API, the one a request is sent with unless Supported
// lists a later one the client needs.
const Version int16 = 1

// KeyName names an API key for logs and errors.
func KeyName(key int16) string {
	switch key {
	case KeyProduce:
		return "Produce"
	case KeyFetch:
		return "Fetch"
	case KeyListOffsets:
		return "ListOffsets"
	case KeyMetadata:
		return "Metadata"
	case KeyOffsetCommit:
		return "OffsetCommit"
	case KeyOffsetFetch:
		return "OffsetFetch"
	case KeyCreateTopics:
		return "CreateTopics"
	case KeyDeleteTopics:
		return "DeleteTopics"
	case KeyAPIVersions:
		return "ApiVersions"
	case KeyPing:
		return "Ping"
	case KeyBrokerStatus:
		return "BrokerStatus"
	case KeyAlterConfigs:
		return "AlterConfigs"
	case KeyCreatePartitions:
		return "CreatePartitions"
	case KeyListGroups:
		return "ListGroups"
	case KeyDescribeGroups:
		return "DescribeGroups"
	case KeyDeleteGroups:
		return "DeleteGroups"
	case KeyJoinGroup:
		return "JoinGroup"
	case KeySyncGroup:
		return "SyncGroup"
	case KeyHeartbeat:
		return "Heartbeat"
	case KeyLeaveGroup:
		return "LeaveGroup"
	case KeyPeer:
		return "Peer"
	}
	return "Unknown"
}

// Acks values of a Produce request.
const (
	AcksNone   int16 = 0  // no response is sent
	AcksLeader int16 = 1  // acknowledged once the leader has appended (and synced, per policy)
	AcksAll    int16 = -1 // acknowledged once every in-sync replica has it
)

// Special ListOffsets timestamps.
const (
	TimestampLatest   int64 = -1
	TimestampEarliest int64 = -2
)

// growSlice returns s resized to n elements, reusing its capacity (old elements keep their
// contents so nested slices can be reused too).
func growSlice[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}
