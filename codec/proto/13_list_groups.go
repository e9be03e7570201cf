package proto

// ListGroups (key 13), version 1: the consumer groups the broker coordinates.
//
// Request:
//
//	states [ string ]
//
// An empty (or null) states array lists every group; otherwise only the groups in one of the
// named states (Empty, PreparingRebalance, CompletingRebalance, Stable; matched without regard to
// case).
//
// Response body:
//
//	errorCode int16 | errorMessage string | groups [ group string | protocolType string | state string ]
//
// errorCode is the coordinator's: COORDINATOR_LOAD_IN_PROGRESS while it loads its state (retry),
// and then no groups are listed.

// ListGroupsRequest is a decoded ListGroups request.
type ListGroupsRequest struct {
	States []string // empty: every group
}

// ReadFrom decodes the request body.
func (v *ListGroupsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.States = growSlice(v.States, max(r.ArrayLen(2), 0))
	for i := range v.States {
		v.States[i] = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *ListGroupsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.States))
	for _, s := range v.States {
		dst = AppendString(dst, s)
	}
	return dst
}

// ListGroupsResponse is a decoded ListGroups response body.
type ListGroupsResponse struct {
	ErrorCode    int16
	ErrorMessage string
	Groups       []ListedGroup
}

// ListedGroup is one group of a ListGroupsResponse.
type ListedGroup struct {
	Group        string
	ProtocolType string // "consumer" for Kafka consumers and the Go client; "" before any member joined
	State        string
}

// ReadFrom decodes the response body.
func (v *ListGroupsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ErrorCode = r.Int16()
	v.ErrorMessage = r.String()
	v.Groups = growSlice(v.Groups, max(r.ArrayLen(2+2+2), 0))
	for i := range v.Groups {
		g := &v.Groups[i]
		g.Group = r.String()
		g.ProtocolType = r.String()
		g.State = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *ListGroupsResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt16(dst, v.ErrorCode)
	dst = AppendNullableString(dst, v.ErrorMessage, v.ErrorMessage != "")
	dst = AppendArrayLen(dst, len(v.Groups))
	for _, g := range v.Groups {
		dst = AppendString(dst, g.Group)
		dst = AppendString(dst, g.ProtocolType)
		dst = AppendString(dst, g.State)
	}
	return dst
}
