package proto

// OffsetCommit (key 4), versions 1 and 2.
//
// Request, version 1 (a commit from outside group management: a consumer that assigns its own
// partitions, an administrator):
//
//	groupId string | topics [ name string | partitions [ partition int32 | offset int64 | metadata string ] ]
//
// Request, version 2 (a member of the group, which the coordinator checks as Kafka does; a
// generation of -1 with an empty member id is a version 1 commit):
//
//	groupId string | generationId int32 | memberId string | groupInstanceId string (null: dynamic member) |
//	topics [ name string | partitions [ partition int32 | offset int64 | metadata string ] ]
//
// Response body, both versions:
//
//	topics [ name string | partitions [ partition int32 | errorCode int16 | errorMessage string ] ]
//
// The committed offset is the next offset the group will consume, as in Kafka.

// OffsetCommitRequest is a decoded OffsetCommit request. Version selects the layout: 2, or
// version 1 for any other value (the zero value included). Version 1 carries no membership and
// decodes Generation, MemberID and InstanceID as zero values: a handler treats it as generation
// -1 with no member.
type OffsetCommitRequest struct {
	Version    int16
	Group      string
	Generation int32   // version 2
	MemberID   string  // version 2
	InstanceID *string // version 2; nil for a dynamic member
	Topics     []OffsetCommitTopic
}

// OffsetCommitTopic is one topic of an OffsetCommitRequest.
type OffsetCommitTopic struct {
	Name       string
	Partitions []OffsetCommitPartition
}

// OffsetCommitPartition commits one partition's offset.
type OffsetCommitPartition struct {
	Partition int32
	Offset    int64
	Metadata  string
}

// ReadFrom decodes the request body.
func (v *OffsetCommitRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Group = r.String()
	v.Generation, v.MemberID, v.InstanceID = 0, "", nil
	if v.Version >= 2 {
		v.Generation = r.Int32()
		v.MemberID = r.String()
		v.InstanceID = readNullableString(&r)
	}
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+8+2), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.Offset = r.Int64()
			p.Metadata = r.String()
		}
	}
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *OffsetCommitRequest) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.Group)
	if v.Version >= 2 {
		dst = AppendInt32(dst, v.Generation)
		dst = AppendString(dst, v.MemberID)
		dst = appendNullableString(dst, v.InstanceID)
	}
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt64(dst, p.Offset)
			dst = AppendString(dst, p.Metadata)
		}
	}
	return dst
}

// PartitionErrorsResponse is the body shared by responses that only report a per-partition error
// (OffsetCommit).
type PartitionErrorsResponse struct {
	Topics []PartitionErrorsTopic
}

// PartitionErrorsTopic is one topic of a PartitionErrorsResponse.
type PartitionErrorsTopic struct {
	Name       string
	Partitions []PartitionError
}

// PartitionError is one partition's outcome.
type PartitionError struct {
	Partition    int32
	ErrorCode    int16
	ErrorMessage string
}

// OffsetCommitResponse is a decoded OffsetCommit response body.
type OffsetCommitResponse = PartitionErrorsResponse

// ReadFrom decodes the response body.
func (v *PartitionErrorsResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+2+2), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.ErrorMessage = r.String()
		}
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *PartitionErrorsResponse) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt16(dst, p.ErrorCode)
			dst = AppendNullableString(dst, p.ErrorMessage, p.ErrorMessage != "")
		}
	}
	return dst
}
