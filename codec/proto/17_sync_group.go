package proto

// SyncGroup (key 17), version 1: after JoinGroup, every member asks for its assignment; the
// leader sends everyone's.
//
// Request:
//
//	groupId string | generationId int32 | memberId string | groupInstanceId string (null: dynamic member) |
//	protocolType string | protocolName string | assignments [ memberId string | assignment bytes ]
//
// Response body:
//
//	errorCode int16 | errorMessage string | protocolType string | protocolName string | assignment bytes
//
// protocolType and protocolName, when not empty, must be the group's (INCONSISTENT_GROUP_PROTOCOL
// otherwise). assignments is sent by the leader only, for every member of the generation. The
// response to a follower is held until the leader's assignment is stored.

// SyncGroupRequest is a decoded SyncGroup request.
type SyncGroupRequest struct {
	Group        string
	Generation   int32
	MemberID     string
	InstanceID   *string // nil for a dynamic member
	ProtocolType string  // "": not checked
	ProtocolName string  // "": not checked
	Assignments  []SyncGroupAssignment
}

// SyncGroupAssignment is the leader's assignment for one member.
type SyncGroupAssignment struct {
	MemberID   string
	Assignment []byte // for protocol type "consumer", a ConsumerProtocolAssignment
}

// ReadFrom decodes the request body.
func (v *SyncGroupRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	v.Generation = r.Int32()
	v.MemberID = r.String()
	v.InstanceID = readNullableString(&r)
	v.ProtocolType = r.String()
	v.ProtocolName = r.String()
	v.Assignments = growSlice(v.Assignments, max(r.ArrayLen(2+4), 0))
	for i := range v.Assignments {
		v.Assignments[i].MemberID = r.String()
		v.Assignments[i].Assignment = r.Bytes()
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *SyncGroupRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	dst = AppendInt32(dst, v.Generation)
	dst = AppendString(dst, v.MemberID)
	dst = appendNullableString(dst, v.InstanceID)
	dst = AppendString(dst, v.ProtocolType)
	dst = AppendString(dst, v.ProtocolName)
	dst = AppendArrayLen(dst, len(v.Assignments))
	for _, a := range v.Assignments {
		dst = AppendString(dst, a.MemberID)
		dst = AppendBytes(dst, a.Assignment)
	}
	return dst
}

// SyncGroupResponse is a decoded SyncGroup response body.
type SyncGroupResponse struct {
	ErrorCode    int16
	ErrorMessage string
	ProtocolType string
	ProtocolName string
	Assignment   []byte
}

// ReadFrom decodes the response body.
func (v *SyncGroupResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ErrorCode = r.Int16()
	v.ErrorMessage = r.String()
	v.ProtocolType = r.String()
	v.ProtocolName = r.String()
	v.Assignment = r.Bytes()
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *SyncGroupResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.ErrorCode)
	dst = AppendNullableString(dst, v.ErrorMessage, v.ErrorMessage != "")
	dst = AppendString(dst, v.ProtocolType)
	dst = AppendString(dst, v.ProtocolName)
	return AppendBytes(dst, v.Assignment)
}
