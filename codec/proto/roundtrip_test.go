package proto

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// roundTripCases are extra values per body type on top of the samples in apis: zero values,
// extremes and the null/empty distinctions the protocol makes.
func roundTripCases() []struct {
	name   string
	in     message
	newMsg func() message
} {
	long := strings.Repeat("x", math.MaxInt16)
	type c = struct {
		name   string
		in     message
		newMsg func() message
	}
	cases := []c{
		{"produce zero", &ProduceRequest{}, func() message { return new(ProduceRequest) }},
		{"produce null name, null and empty records", &ProduceRequest{Acks: AcksNone, TimeoutMs: math.MaxInt32, Topics: []ProduceTopic{
			{Name: nil, Partitions: []ProducePartition{{Partition: math.MaxInt32, Records: nil}, {Partition: -1, Records: []byte{}}}},
			{Name: []byte{}, Partitions: nil},
		}}, func() message { return new(ProduceRequest) }},
		{"produce response zero", &ProduceResponse{}, func() message { return new(ProduceResponse) }},
		{"produce response extremes", &ProduceResponse{ThrottleTimeMs: math.MaxInt32, Topics: []ProduceTopicResponse{{Name: long, Partitions: []ProducePartitionResponse{
			{Partition: -1, ErrorCode: math.MinInt16, ErrorMessage: long, BaseOffset: math.MinInt64, LogAppendTime: math.MaxInt64, LogStartOffset: -1, Leader: NoLeader},
		}}}}, func() message { return new(ProduceResponse) }},
		{"fetch zero", &FetchRequest{}, func() message { return new(FetchRequest) }},
		{"fetch extremes", &FetchRequest{MaxWaitMs: -1, MinBytes: math.MaxInt32, MaxBytes: math.MinInt32, Topics: []FetchTopic{{Name: nil, Partitions: []FetchPartition{{math.MinInt32, math.MaxInt64, 0}}}}}, func() message { return new(FetchRequest) }},
		{"fetch response zero", &FetchResponse{}, func() message { return new(FetchResponse) }},
		{"fetch response topic without partitions", &FetchResponse{ThrottleTimeMs: 100, Topics: []FetchTopicResponse{{Name: ""}}}, func() message { return new(FetchResponse) }},
		{"list offsets zero", &ListOffsetsRequest{}, func() message { return new(ListOffsetsRequest) }},
		{"list offsets response zero", &ListOffsetsResponse{}, func() message { return new(ListOffsetsResponse) }},
		{"list offsets v2 response zero", &ListOffsetsResponse{Version: 2}, func() message { return &ListOffsetsResponse{Version: 2} }},
		{"list offsets v2 response extremes, unknown replicas, error without replicas", &ListOffsetsResponse{Version: 2, Topics: []ListOffsetsTopicResponse{
			{Name: long, Partitions: []ListOffsetsPartitionResponse{
				{Partition: math.MaxInt32, Timestamp: math.MinInt64, Offset: math.MaxInt64, Leader: NoLeader, Replicas: []ListOffsetsReplica{
					{Node: math.MinInt32, LogEndOffset: math.MaxInt64, LastCaughtUpMs: math.MinInt64}, {Node: 3, LogEndOffset: -1, LastCaughtUpMs: -1},
				}},
				{Partition: -1, ErrorCode: math.MinInt16, ErrorMessage: long, Timestamp: -1, Offset: -1, Leader: LeaderHint{ID: 2, Addr: long}},
			}},
			{Name: ""},
		}}, func() message { return &ListOffsetsResponse{Version: 2} }},
		{"metadata all topics", &MetadataRequest{Topics: nil}, func() message { return new(MetadataRequest) }},
		{"metadata no topics", &MetadataRequest{Topics: []string{}, AllowAutoCreate: true}, func() message { return new(MetadataRequest) }},
		{"metadata empty name", &MetadataRequest{Topics: []string{""}}, func() message { return new(MetadataRequest) }},
		{"metadata response zero", &MetadataResponse{}, func() message { return new(MetadataResponse) }},
		{"metadata response internal topic", &MetadataResponse{ClusterID: "c", ControllerID: -1, Topics: []MetadataTopic{{Name: "__consumer_offsets", Internal: true, Partitions: []MetadataPartition{{Partition: 0, Leader: 1, Replicas: []int32{1}}}}}}, func() message { return new(MetadataResponse) }},
		{"offset commit zero", &OffsetCommitRequest{}, func() message { return new(OffsetCommitRequest) }},
		{"offset commit response zero", &OffsetCommitResponse{}, func() message { return new(OffsetCommitResponse) }},
		{"offset fetch everything", &OffsetFetchRequest{Group: "g", Topics: nil}, func() message { return new(OffsetFetchRequest) }},
		{"offset fetch nothing", &OffsetFetchRequest{Group: "g", Topics: []OffsetFetchTopic{}}, func() message { return new(OffsetFetchRequest) }},
		{"offset fetch topic without partitions", &OffsetFetchRequest{Group: "g", Topics: []OffsetFetchTopic{{Name: "t"}}}, func() message { return new(OffsetFetchRequest) }},
		{"offset fetch response zero", &OffsetFetchResponse{}, func() message { return new(OffsetFetchResponse) }},
		{"create topics zero", &CreateTopicsRequest{}, func() message { return new(CreateTopicsRequest) }},
		{"create topics validate only", &CreateTopicsRequest{ValidateOnly: true, TimeoutMs: -1, Topics: []CreateTopic{{Name: "t", NumPartitions: math.MaxInt32, ReplicationFactor: math.MaxInt16}}}, func() message { return new(CreateTopicsRequest) }},
		{"topic errors zero", &TopicErrorsResponse{}, func() message { return new(TopicErrorsResponse) }},
		{"delete topics zero", &DeleteTopicsRequest{}, func() message { return new(DeleteTopicsRequest) }},
		{"api versions response zero", &APIVersionsResponse{}, func() message { return new(APIVersionsResponse) }},
		{"ping extremes", &PingRequest{Echo: math.MinInt64}, func() message { return new(PingRequest) }},
		{"alter configs zero", &AlterConfigsRequest{}, func() message { return new(AlterConfigsRequest) }},
		{"alter configs validate only, topic without configs, unknown op", &AlterConfigsRequest{ValidateOnly: true, Topics: []AlterConfigsTopic{
			{Name: "t"}, {Name: long, Configs: []ConfigOp{{Op: math.MinInt8, Key: "", Value: long}, {Op: ConfigOpSubtract, Key: "cleanup.policy", Value: "compact,delete"}}},
		}}, func() message { return new(AlterConfigsRequest) }},
		{"create partitions zero", &CreatePartitionsRequest{}, func() message { return new(CreatePartitionsRequest) }},
		{"create partitions extremes", &CreatePartitionsRequest{ValidateOnly: true, TimeoutMs: math.MinInt32, Topics: []CreatePartitionsTopic{{"", math.MaxInt32}, {long, -1}}}, func() message { return new(CreatePartitionsRequest) }},
		{"ping response extremes", &PingResponse{Echo: math.MaxInt64, NodeID: math.MinInt32}, func() message { return new(PingResponse) }},
		{"list groups every state", &ListGroupsRequest{}, func() message { return new(ListGroupsRequest) }},
		{"list groups response loading", &ListGroupsResponse{ErrorCode: 14, ErrorMessage: long}, func() message { return new(ListGroupsResponse) }},
		{"list groups response group without protocol type", &ListGroupsResponse{Groups: []ListedGroup{{Group: "", State: "Empty"}, {Group: long, ProtocolType: long, State: long}}}, func() message { return new(ListGroupsResponse) }},
		{"describe groups zero", &DescribeGroupsRequest{}, func() message { return new(DescribeGroupsRequest) }},
		{"describe groups empty name", &DescribeGroupsRequest{Groups: []string{"", long}}, func() message { return new(DescribeGroupsRequest) }},
		{"describe groups response zero", &DescribeGroupsResponse{}, func() message { return new(DescribeGroupsResponse) }},
		{"describe groups response null and empty member fields", &DescribeGroupsResponse{Groups: []DescribedGroup{{Group: "g", State: "PreparingRebalance", Members: []DescribedMember{
			{MemberID: "", InstanceID: ptr(""), Metadata: nil, Assignment: []byte{}},
			{MemberID: long, InstanceID: ptr(long), ClientID: long, ClientHost: long, Metadata: []byte{0}, Assignment: nil},
		}}}}, func() message { return new(DescribeGroupsResponse) }},
		{"delete groups zero", &DeleteGroupsRequest{}, func() message { return new(DeleteGroupsRequest) }},
		{"offset commit v2 zero", &OffsetCommitRequest{Version: 2}, func() message { return &OffsetCommitRequest{Version: 2} }},
		{"offset commit v2 simple commit, empty instance id", &OffsetCommitRequest{Version: 2, Group: "g", Generation: -1, InstanceID: ptr(""),
			Topics: []OffsetCommitTopic{{Name: "t"}}}, func() message { return &OffsetCommitRequest{Version: 2} }},
		{"offset commit v2 extremes", &OffsetCommitRequest{Version: 2, Group: long, Generation: math.MaxInt32, MemberID: long, InstanceID: ptr(long),
			Topics: []OffsetCommitTopic{{Name: long, Partitions: []OffsetCommitPartition{{math.MinInt32, math.MinInt64, long}}}}}, func() message { return &OffsetCommitRequest{Version: 2} }},
		{"join group zero", &JoinGroupRequest{}, func() message { return new(JoinGroupRequest) }},
		{"join group first join, static, null and empty metadata", &JoinGroupRequest{Group: "g", SessionTimeoutMs: math.MaxInt32, RebalanceTimeoutMs: -1,
			InstanceID: ptr(""), Protocols: []JoinGroupProtocol{{Name: "range", Metadata: nil}, {Name: "", Metadata: []byte{}}, {Name: long, Metadata: []byte{0}}}},
			func() message { return new(JoinGroupRequest) }},
		{"join group response zero", &JoinGroupResponse{}, func() message { return new(JoinGroupResponse) }},
		{"join group response member id required", &JoinGroupResponse{ErrorCode: 79, ErrorMessage: long, Generation: -1, MemberID: long},
			func() message { return new(JoinGroupResponse) }},
		{"join group response static leader keeps its assignment", &JoinGroupResponse{Generation: math.MaxInt32, ProtocolType: long, ProtocolName: long, Leader: "m",
			SkipAssignment: true, MemberID: "m", Members: []JoinGroupMember{{MemberID: "m", InstanceID: ptr("i"), Metadata: nil}, {MemberID: "", InstanceID: ptr(""), Metadata: []byte{}}}},
			func() message { return new(JoinGroupResponse) }},
		{"sync group zero", &SyncGroupRequest{}, func() message { return new(SyncGroupRequest) }},
		{"sync group follower", &SyncGroupRequest{Group: "g", Generation: math.MinInt32, MemberID: long, InstanceID: ptr(long)},
			func() message { return new(SyncGroupRequest) }},
		{"sync group leader, null and empty assignments", &SyncGroupRequest{Group: "g", Assignments: []SyncGroupAssignment{{MemberID: "a", Assignment: nil}, {MemberID: "", Assignment: []byte{}}}},
			func() message { return new(SyncGroupRequest) }},
		{"sync group response zero", &SyncGroupResponse{}, func() message { return new(SyncGroupResponse) }},
		{"sync group response empty assignment", &SyncGroupResponse{ErrorCode: 27, ErrorMessage: long, Assignment: []byte{}},
			func() message { return new(SyncGroupResponse) }},
		{"heartbeat zero", &HeartbeatRequest{}, func() message { return new(HeartbeatRequest) }},
		{"heartbeat extremes", &HeartbeatRequest{Group: long, Generation: -1, MemberID: long, InstanceID: ptr("")}, func() message { return new(HeartbeatRequest) }},
		{"heartbeat response zero", &HeartbeatResponse{}, func() message { return new(HeartbeatResponse) }},
		{"leave group zero", &LeaveGroupRequest{}, func() message { return new(LeaveGroupRequest) }},
		{"leave group extremes", &LeaveGroupRequest{Group: long, Members: []LeaveGroupMember{{MemberID: long, InstanceID: ptr(long), Reason: long}, {InstanceID: ptr("")}}},
			func() message { return new(LeaveGroupRequest) }},
		{"leave group response zero", &LeaveGroupResponse{}, func() message { return new(LeaveGroupResponse) }},
		{"leave group response group error", &LeaveGroupResponse{ErrorCode: 14, ErrorMessage: long}, func() message { return new(LeaveGroupResponse) }},
		{"peer zero", &PeerRequest{}, func() message { return new(PeerRequest) }},
		{"peer hello", &PeerRequest{From: 2147483647, Kind: 0, Payload: []byte{}}, func() message { return new(PeerRequest) }},
		{"peer extremes", &PeerRequest{From: -1, Kind: -128, Payload: []byte(long)}, func() message { return new(PeerRequest) }},
	}
	for _, a := range apis {
		cases = append(cases, c{a.name + " request sample", a.request, a.newReq})
		if a.response != nil {
			cases = append(cases, c{a.name + " response sample", a.response, a.newResp})
		}
	}
	return cases
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.in.AppendTo(nil)
			got := tc.newMsg()
			if err := got.ReadFrom(enc); err != nil {
				t.Fatalf("ReadFrom: %v\n% x", err, enc)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip changed the value\n got %#v\nwant %#v", got, tc.in)
			}
			// AppendTo appends: a prefix in dst is kept.
			prefixed := tc.in.AppendTo([]byte("prefix"))
			if !bytes.Equal(prefixed, append([]byte("prefix"), enc...)) {
				t.Fatalf("AppendTo did not append to dst")
			}
			// Decoding into a value that already holds another message reuses its slices and
			// gives the same encoding.
			reused := tc.newMsg()
			for _, a := range apis {
				if reflect.TypeOf(a.request) == reflect.TypeOf(reused) {
					_ = reused.ReadFrom(a.request.AppendTo(nil))
				}
				if reflect.TypeOf(a.response) == reflect.TypeOf(reused) {
					_ = reused.ReadFrom(a.response.AppendTo(nil))
				}
			}
			if err := reused.ReadFrom(enc); err != nil {
				t.Fatalf("ReadFrom into a used value: %v", err)
			}
			if again := reused.AppendTo(nil); !bytes.Equal(again, enc) {
				t.Fatalf("decoding into a used value changed the encoding\n got % x\nwant % x", again, enc)
			}
		})
	}
}

// TestTruncatedAndTrailing checks every strict prefix of every sample fails and a trailing byte
// is rejected, both with ErrMalformed.
func TestTruncatedAndTrailing(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.in.AppendTo(nil)
			if len(enc) > 4096 {
				t.Skip("long value: prefixes covered by the shorter cases")
			}
			for n := 0; n < len(enc); n++ {
				if err := tc.newMsg().ReadFrom(enc[:n:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(enc), err)
				}
			}
			err := tc.newMsg().ReadFrom(append(enc[:len(enc):len(enc)], 0))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "1 trailing bytes") {
				t.Fatalf("trailing byte: err = %v", err)
			}
		})
	}
}

// TestNullVersusEmpty pins the two arrays where null and empty mean different things.
func TestNullVersusEmpty(t *testing.T) {
	t.Run("metadata", func(t *testing.T) {
		f := func(in []string, wantBytes string, wantNil bool) {
			t.Helper()
			enc := (&MetadataRequest{Topics: in}).AppendTo(nil)
			if string(enc) != wantBytes {
				t.Fatalf("encoding % x, want % x", enc, wantBytes)
			}
			for _, start := range []MetadataRequest{{}, {Topics: []string{"stale"}}} {
				got := start
				if err := got.ReadFrom(enc); err != nil {
					t.Fatal(err)
				}
				if (got.Topics == nil) != wantNil || len(got.Topics) != len(in) {
					t.Fatalf("decoded into %v: Topics = %#v, want nil=%v", start.Topics, got.Topics, wantNil)
				}
			}
		}
		f(nil, "\xff\xff\xff\xff\x00", true)
		f([]string{}, "\x00\x00\x00\x00\x00", false)
		f([]string{"a"}, "\x00\x00\x00\x01\x00\x01a\x00", false)
	})
	t.Run("offset fetch", func(t *testing.T) {
		f := func(in []OffsetFetchTopic, wantBytes string, wantNil bool) {
			t.Helper()
			enc := (&OffsetFetchRequest{Group: "g", Topics: in}).AppendTo(nil)
			if string(enc) != wantBytes {
				t.Fatalf("encoding % x, want % x", enc, wantBytes)
			}
			for _, start := range []OffsetFetchRequest{{}, {Topics: []OffsetFetchTopic{{Name: "stale"}}}} {
				got := start
				if err := got.ReadFrom(enc); err != nil {
					t.Fatal(err)
				}
				if (got.Topics == nil) != wantNil || len(got.Topics) != len(in) {
					t.Fatalf("decoded into %v: Topics = %#v, want nil=%v", start.Topics, got.Topics, wantNil)
				}
			}
		}
		f(nil, "\x00\x01g\xff\xff\xff\xff", true)
		f([]OffsetFetchTopic{}, "\x00\x01g\x00\x00\x00\x00", false)
	})
	t.Run("nullable strings and bytes", func(t *testing.T) {
		// Produce topic names and records keep null apart from empty.
		in := &ProduceRequest{Topics: []ProduceTopic{{Name: nil, Partitions: []ProducePartition{{Records: nil}}}, {Name: []byte{}, Partitions: []ProducePartition{{Records: []byte{}}}}}}
		var got ProduceRequest
		if err := got.ReadFrom(in.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		if got.Topics[0].Name != nil || got.Topics[0].Partitions[0].Records != nil {
			t.Fatalf("null read back as non-nil: %#v", got.Topics[0])
		}
		if got.Topics[1].Name == nil || got.Topics[1].Partitions[0].Records == nil {
			t.Fatalf("empty read back as nil: %#v", got.Topics[1])
		}
		// An error message of "" is sent as null and a null one reads back as "".
		enc := (&TopicErrorsResponse{Topics: []TopicError{{Name: "t"}}}).AppendTo(nil)
		if want := "\x00\x00\x00\x01\x00\x01t\x00\x00\xff\xff"; string(enc) != want {
			t.Fatalf("encoding % x, want % x", enc, want)
		}
	})
}

// TestAliasing documents that byte fields of requests alias the frame (zero copy).
func TestAliasing(t *testing.T) {
	enc := apis[0].request.AppendTo(nil)
	var req ProduceRequest
	if err := req.ReadFrom(enc); err != nil {
		t.Fatal(err)
	}
	req.Topics[0].Name[0] = 'O'
	if !bytes.Contains(enc, []byte("Orders")) {
		t.Fatal("Name does not alias the body")
	}
	// Aliased slices are capped: appending to one must not overwrite the next field.
	if cap(req.Topics[0].Name) != len(req.Topics[0].Name) {
		t.Fatalf("Name has spare capacity %d", cap(req.Topics[0].Name))
	}
}

func TestStringTruncation(t *testing.T) {
	long := strings.Repeat("y", math.MaxInt16+10)
	r := NewReader(AppendString(nil, long))
	if got := r.String(); len(got) != math.MaxInt16 || r.Complete() != nil {
		t.Fatalf("len %d, err %v", len(got), r.Err())
	}
	r = NewReader(AppendStringBytes(nil, []byte(long)))
	if got := r.StringBytes(); len(got) != math.MaxInt16 || r.Complete() != nil {
		t.Fatalf("len %d, err %v", len(got), r.Err())
	}
}

func TestKeyNameAndSupported(t *testing.T) {
	// Every version of every supported key has a row in apis, and every row is a supported
	// version.
	rows := map[[2]int16]bool{}
	for _, a := range apis {
		rows[[2]int16{a.key, a.apiVersion()}] = true
	}
	versions := 0
	for i, r := range Supported {
		if i > 0 && Supported[i-1].Key >= r.Key {
			t.Errorf("Supported[%d] = %+v is out of key order", i, r)
		}
		if r.MinVersion != Version || r.MaxVersion < r.MinVersion {
			t.Errorf("Supported[%d] = %+v", i, r)
		}
		for v := r.MinVersion; v <= r.MaxVersion; v++ {
			versions++
			if !rows[[2]int16{r.Key, v}] {
				t.Errorf("%s version %d has no row in apis", KeyName(r.Key), v)
			}
		}
		if KeyName(r.Key) == "Unknown" {
			t.Errorf("KeyName(%d) unknown", r.Key)
		}
	}
	if versions != len(rows) || len(rows) != len(apis) {
		t.Errorf("Supported has %d versions, apis %d rows (%d distinct)", versions, len(apis), len(rows))
	}
	last := Supported[len(Supported)-1].Key
	if KeyName(last+1) != "Unknown" || KeyName(-1) != "Unknown" || KeyName(99) != "Unknown" {
		t.Error("KeyName of an unknown key")
	}
}
