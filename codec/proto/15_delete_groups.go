package proto

// DeleteGroups (key 15), version 1: delete consumer groups and their committed offsets.
//
// Request:
//
//	groups [ string ]
//
// Response body: the layout of CreateTopics' (TopicErrorsResponse), one element per requested
// group, in request order, the group id in place of the topic name:
//
//	groups [ group string | errorCode int16 | errorMessage string ]
//
// Only a group without members can be deleted: NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for
// a group the coordinator does not have.

// DeleteGroupsRequest is a decoded DeleteGroups request.
type DeleteGroupsRequest struct {
	Groups []string
}

// DeleteGroupsResponse is a decoded DeleteGroups response body: TopicError.Name is the group.
type DeleteGroupsResponse = TopicErrorsResponse

// ReadFrom decodes the request body.
func (v *DeleteGroupsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Groups = growSlice(v.Groups, max(r.ArrayLen(2), 0))
	for i := range v.Groups {
		v.Groups[i] = r.String()
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *DeleteGroupsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Groups))
	for _, g := range v.Groups {
		dst = AppendString(dst, g)
	}
	return dst
}
