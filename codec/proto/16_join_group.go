package proto

// JoinGroup (key 16), version 1: join a consumer group, or rejoin it for a rebalance. The group
// membership protocol is Kafka's classic one (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, keys
// 16-19) with the same states, timeouts and error codes, so members on this protocol and on the
// Kafka listener share groups.
//
// Request:
//
//	groupId string | sessionTimeoutMs int32 | rebalanceTimeoutMs int32 | memberId string |
//	groupInstanceId string (null: dynamic member) | clientId string | protocolType string |
//	protocols [ name string | metadata bytes ] | reason string
//
// Response body:
//
//	errorCode int16 | errorMessage string | generationId int32 | protocolType string |
//	protocolName string | leader string | skipAssignment int8 | memberId string |
//	members [ memberId string | groupInstanceId string | metadata bytes ]
//
// A first join sends an empty memberId and is answered MEMBER_ID_REQUIRED with the member id to
// join with; the response to a join is held until every member has rejoined (at most the
// rebalance timeout). members is set for the leader only, which assigns the group's partitions
// and sends the assignments in its SyncGroup.

// JoinGroupRequest is a decoded JoinGroup request.
type JoinGroupRequest struct {
	Group              string
	SessionTimeoutMs   int32
	RebalanceTimeoutMs int32
	MemberID           string
	InstanceID         *string // nil for a dynamic member
	ClientID           string
	ProtocolType       string
	Protocols          []JoinGroupProtocol
	Reason             string
}

// JoinGroupProtocol is one protocol (assignor) the member supports, in order of preference.
type JoinGroupProtocol struct {
	Name     string
	Metadata []byte // for protocol type "consumer", a ConsumerProtocolSubscription
}

// ReadFrom decodes the request body.
func (v *JoinGroupRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	v.SessionTimeoutMs = r.Int32()
	v.RebalanceTimeoutMs = r.Int32()
	v.MemberID = r.String()
	v.InstanceID = readNullableString(&r)
	v.ClientID = r.String()
	v.ProtocolType = r.String()
	v.Protocols = growSlice(v.Protocols, max(r.ArrayLen(2+4), 0))
	for i := range v.Protocols {
		v.Protocols[i].Name = r.String()
		v.Protocols[i].Metadata = r.Bytes()
	}
	v.Reason = r.String()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *JoinGroupRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	dst = AppendInt32(dst, v.SessionTimeoutMs)
	dst = AppendInt32(dst, v.RebalanceTimeoutMs)
	dst = AppendString(dst, v.MemberID)
	dst = appendNullableString(dst, v.InstanceID)
	dst = AppendString(dst, v.ClientID)
	dst = AppendString(dst, v.ProtocolType)
	dst = AppendArrayLen(dst, len(v.Protocols))
	for _, p := range v.Protocols {
		dst = AppendString(dst, p.Name)
		dst = AppendBytes(dst, p.Metadata)
	}
	return AppendString(dst, v.Reason)
}

// JoinGroupResponse is a decoded JoinGroup response body.
type JoinGroupResponse struct {
	ErrorCode      int16
	ErrorMessage   string
	Generation     int32 // -1 with an error
	ProtocolType   string
	ProtocolName   string // the protocol the group selected
	Leader         string
	SkipAssignment bool // a static leader that rejoined without changes keeps the assignment
	MemberID       string
	Members        []JoinGroupMember // the leader only
}

// JoinGroupMember is one member of the group, as the leader is told.
type JoinGroupMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte // the member's metadata for the selected protocol
}

// ReadFrom decodes the response body.
func (v *JoinGroupResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ErrorCode = r.Int16()
	v.ErrorMessage = r.String()
	v.Generation = r.Int32()
	v.ProtocolType = r.String()
	v.ProtocolName = r.String()
	v.Leader = r.String()
	v.SkipAssignment = r.Bool()
	v.MemberID = r.String()
	v.Members = growSlice(v.Members, max(r.ArrayLen(2+2+4), 0))
	for i := range v.Members {
		m := &v.Members[i]
		m.MemberID = r.String()
		m.InstanceID = readNullableString(&r)
		m.Metadata = r.Bytes()
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *JoinGroupResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.ErrorCode)
	dst = AppendNullableString(dst, v.ErrorMessage, v.ErrorMessage != "")
	dst = AppendInt32(dst, v.Generation)
	dst = AppendString(dst, v.ProtocolType)
	dst = AppendString(dst, v.ProtocolName)
	dst = AppendString(dst, v.Leader)
	dst = AppendBool(dst, v.SkipAssignment)
	dst = AppendString(dst, v.MemberID)
	dst = AppendArrayLen(dst, len(v.Members))
	for _, m := range v.Members {
		dst = AppendString(dst, m.MemberID)
		dst = appendNullableString(dst, m.InstanceID)
		dst = AppendBytes(dst, m.Metadata)
	}
	return dst
}
