package proto

// DescribeGroups (key 14), version 1: consumer groups' state and members.
//
// Request:
//
//	groups [ string ]
//
// Response body, one element per requested group, in request order:
//
//	groups [ errorCode int16 | errorMessage string | group string | state string |
//	         protocolType string | protocol string |
//	         members [ memberId string | instanceId string | clientId string | clientHost string |
//	                   metadata bytes | assignment bytes ] ]
//
// A group the coordinator does not have answers GROUP_ID_NOT_FOUND with state "Dead" and no
// members. protocol is the selected assignor, set only while the group is Stable; instanceId is
// null for a dynamic member. metadata (the member's subscription for the selected protocol, only
// while Stable) and assignment are opaque to the broker: for protocolType "consumer" they are
// Kafka's ConsumerProtocolSubscription and ConsumerProtocolAssignment.

// DescribeGroupsRequest is a decoded DescribeGroups request.
type DescribeGroupsRequest struct {
	Groups []string
}

// ReadFrom decodes the request body.
func (v *DescribeGroupsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Groups = growSlice(v.Groups, max(r.ArrayLen(2), 0))
	for i := range v.Groups {
		v.Groups[i] = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *DescribeGroupsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Groups))
	for _, g := range v.Groups {
		dst = AppendString(dst, g)
	}
	return dst
}

// DescribeGroupsResponse is a decoded DescribeGroups response body.
type DescribeGroupsResponse struct {
	Groups []DescribedGroup
}

// DescribedGroup is one group of a DescribeGroupsResponse.
type DescribedGroup struct {
	ErrorCode    int16
	ErrorMessage string
	Group        string
	State        string // Empty, PreparingRebalance, CompletingRebalance, Stable or Dead
	ProtocolType string
	Protocol     string // the selected assignor while Stable, else ""
	Members      []DescribedMember
}

// DescribedMember is one member of a DescribedGroup. Metadata and Assignment alias the decoded
// body: copy what outlives it.
type DescribedMember struct {
	MemberID   string
	InstanceID *string // nil: a dynamic member
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// ReadFrom decodes the response body.
func (v *DescribeGroupsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Groups = growSlice(v.Groups, max(r.ArrayLen(2+2+2+2+2+2+4), 0))
	for i := range v.Groups {
		g := &v.Groups[i]
		g.ErrorCode = r.Int16()
		g.ErrorMessage = r.String()
		g.Group = r.String()
		g.State = r.String()
		g.ProtocolType = r.String()
		g.Protocol = r.String()
		g.Members = growSlice(g.Members, max(r.ArrayLen(2+2+2+2+4+4), 0))
		for j := range g.Members {
			m := &g.Members[j]
			m.MemberID = r.String()
			m.InstanceID = nil
			if s, ok := r.NullableString(); ok {
				m.InstanceID = &s
			}
			m.ClientID = r.String()
			m.ClientHost = r.String()
			m.Metadata = r.Bytes()
			m.Assignment = r.Bytes()
		}
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *DescribeGroupsResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Groups))
	for _, g := range v.Groups {
		dst = AppendInt16(dst, g.ErrorCode)
		dst = AppendNullableString(dst, g.ErrorMessage, g.ErrorMessage != "")
		dst = AppendString(dst, g.Group)
		dst = AppendString(dst, g.State)
		dst = AppendString(dst, g.ProtocolType)
		dst = AppendString(dst, g.Protocol)
		dst = AppendArrayLen(dst, len(g.Members))
		for _, m := range g.Members {
			dst = AppendString(dst, m.MemberID)
			if m.InstanceID == nil {
				dst = AppendInt16(dst, -1)
			} else {
				dst = AppendString(dst, *m.InstanceID)
			}
			dst = AppendString(dst, m.ClientID)
			dst = AppendString(dst, m.ClientHost)
			dst = AppendBytes(dst, m.Metadata)
			dst = AppendBytes(dst, m.Assignment)
		}
	}
	return dst
}
