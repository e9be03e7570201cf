package proto

// LeaveGroup (key 19), version 1: members leave a group, which rebalances without them at once
// instead of waiting for their sessions to expire.
//
// Request:
//
//	groupId string | members [ memberId string | groupInstanceId string (null: dynamic member) | reason string ]
//
// Response body:
//
//	errorCode int16 | errorMessage string |
//	members [ memberId string | groupInstanceId string | errorCode int16 | errorMessage string ]
//
// The top error is for the group as a whole (an unknown group, the coordinator loading); members
// answers each member in request order. A static member may be removed by its groupInstanceId
// alone, with an empty memberId.

// LeaveGroupRequest is a decoded LeaveGroup request.
type LeaveGroupRequest struct {
	Group   string
	Members []LeaveGroupMember
}

// LeaveGroupMember is one member leaving.
type LeaveGroupMember struct {
	MemberID   string
	InstanceID *string
	Reason     string
}

// ReadFrom decodes the request body.
func (v *LeaveGroupRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	v.Members = growSlice(v.Members, max(r.ArrayLen(2+2+2), 0))
	for i := range v.Members {
		m := &v.Members[i]
		m.MemberID = r.String()
		m.InstanceID = readNullableString(&r)
		m.Reason = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *LeaveGroupRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	dst = AppendArrayLen(dst, len(v.Members))
	for _, m := range v.Members {
		dst = AppendString(dst, m.MemberID)
		dst = appendNullableString(dst, m.InstanceID)
		dst = AppendString(dst, m.Reason)
	}
	return dst
}

// LeaveGroupResponse is a decoded LeaveGroup response body.
type LeaveGroupResponse struct {
	ErrorCode    int16
	ErrorMessage string
	Members      []LeaveGroupMemberResponse
}

// LeaveGroupMemberResponse is the outcome for one member.
type LeaveGroupMemberResponse struct {
	MemberID     string
	InstanceID   *string
	ErrorCode    int16
	ErrorMessage string
}

// ReadFrom decodes the response body.
func (v *LeaveGroupResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ErrorCode = r.Int16()
	v.ErrorMessage = r.String()
	v.Members = growSlice(v.Members, max(r.ArrayLen(2+2+2+2), 0))
	for i := range v.Members {
		m := &v.Members[i]
		m.MemberID = r.String()
		m.InstanceID = readNullableString(&r)
		m.ErrorCode = r.Int16()
		m.ErrorMessage = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *LeaveGroupResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.ErrorCode)
	dst = AppendNullableString(dst, v.ErrorMessage, v.ErrorMessage != "")
	dst = AppendArrayLen(dst, len(v.Members))
	for _, m := range v.Members {
		dst = AppendString(dst, m.MemberID)
		dst = appendNullableString(dst, m.InstanceID)
		dst = AppendInt16(dst, m.ErrorCode)
		dst = AppendNullableString(dst, m.ErrorMessage, m.ErrorMessage != "")
	}
	return dst
}
