package proto

// Heartbeat (key 18), version 1: a member keeps its session alive and learns of rebalances.
//
// Request:
//
//	groupId string | generationId int32 | memberId string | groupInstanceId string (null: dynamic member)
//
// Response body:
//
//	errorCode int16 | errorMessage string
//
// REBALANCE_IN_PROGRESS means the group is rebalancing: the member must rejoin (JoinGroup with
// its member id). Between a member's JoinGroup response and its SyncGroup response heartbeats are
// answered NONE. A member sends one every third of its session timeout.

// HeartbeatRequest is a decoded Heartbeat request.
type HeartbeatRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string // nil for a dynamic member
}

// ReadFrom decodes the request body.
func (v *HeartbeatRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	v.Generation = r.Int32()
	v.MemberID = r.String()
	v.InstanceID = readNullableString(&r)
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *HeartbeatRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	dst = AppendInt32(dst, v.Generation)
	dst = AppendString(dst, v.MemberID)
	return appendNullableString(dst, v.InstanceID)
}

// HeartbeatResponse is a decoded Heartbeat response body.
type HeartbeatResponse struct {
	ErrorCode    int16
	ErrorMessage string
}

// ReadFrom decodes the response body.
func (v *HeartbeatResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ErrorCode = r.Int16()
	v.ErrorMessage = r.String()
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *HeartbeatResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.ErrorCode)
	return AppendNullableString(dst, v.ErrorMessage, v.ErrorMessage != "")
}
