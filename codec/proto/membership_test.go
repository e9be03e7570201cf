package proto

import (
	"bytes"
	"testing"
)

// TestOffsetCommitVersions pins what the version changes: version 2 puts the membership after
// the group id, version 1 (also a zero Version) has none and decodes it as zero values.
func TestOffsetCommitVersions(t *testing.T) {
	topics := []OffsetCommitTopic{{Name: "t", Partitions: []OffsetCommitPartition{{Partition: 0, Offset: 5}}}}
	v1 := (&OffsetCommitRequest{Version: 1, Group: "g", Generation: 3, MemberID: "m", InstanceID: ptr("i"), Topics: topics}).AppendTo(nil)
	if zero := (&OffsetCommitRequest{Group: "g", Topics: topics}).AppendTo(nil); !bytes.Equal(v1, zero) {
		t.Fatalf("version 0 encodes as % x, version 1 as % x", zero, v1)
	}
	v2 := (&OffsetCommitRequest{Version: 2, Group: "g", Generation: 3, MemberID: "m", InstanceID: ptr("i"), Topics: topics}).AppendTo(nil)
	membership := "\x00\x00\x00\x03" + "\x00\x01m" + "\x00\x01i"
	if want := string(v1[:3]) + membership + string(v1[3:]); string(v2) != want {
		t.Fatalf("version 2 = % x\nwant        % x", v2, want)
	}
	used := OffsetCommitRequest{Version: 1, Generation: 9, MemberID: "stale", InstanceID: ptr("stale")}
	if err := used.ReadFrom(v1); err != nil {
		t.Fatal(err)
	}
	if used.Generation != 0 || used.MemberID != "" || used.InstanceID != nil || used.Group != "g" || len(used.Topics) != 1 {
		t.Fatalf("version 1 decoded as %+v", used)
	}
	// Each version's bytes are malformed in the other's layout.
	if err := (&OffsetCommitRequest{Version: 2}).ReadFrom(v1); err == nil {
		t.Error("version 1 bytes decoded as version 2")
	}
	if err := (&OffsetCommitRequest{Version: 1}).ReadFrom(v2); err == nil {
		t.Error("version 2 bytes decoded as version 1")
	}
}

// TestInstanceIDNullVersusEmpty: a null groupInstanceId is a dynamic member, an empty one is
// kept apart from it in every message that carries one.
func TestInstanceIDNullVersusEmpty(t *testing.T) {
	f := func(name string, in message, newMsg func() message, get func(message) *string) {
		t.Helper()
		got := newMsg()
		if err := got.ReadFrom(in.AppendTo(nil)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, have := get(in), get(got)
		if (want == nil) != (have == nil) || (want != nil && *want != *have) {
			t.Fatalf("%s: instance id %v read back as %v", name, want, have)
		}
	}
	for _, id := range []*string{nil, ptr(""), ptr("app-1")} {
		f("JoinGroup", &JoinGroupRequest{InstanceID: id}, func() message { return new(JoinGroupRequest) },
			func(m message) *string { return m.(*JoinGroupRequest).InstanceID })
		f("JoinGroup member", &JoinGroupResponse{Members: []JoinGroupMember{{InstanceID: id}}}, func() message { return new(JoinGroupResponse) },
			func(m message) *string { return m.(*JoinGroupResponse).Members[0].InstanceID })
		f("SyncGroup", &SyncGroupRequest{InstanceID: id}, func() message { return new(SyncGroupRequest) },
			func(m message) *string { return m.(*SyncGroupRequest).InstanceID })
		f("Heartbeat", &HeartbeatRequest{InstanceID: id}, func() message { return new(HeartbeatRequest) },
			func(m message) *string { return m.(*HeartbeatRequest).InstanceID })
		f("LeaveGroup", &LeaveGroupRequest{Members: []LeaveGroupMember{{InstanceID: id}}}, func() message { return new(LeaveGroupRequest) },
			func(m message) *string { return m.(*LeaveGroupRequest).Members[0].InstanceID })
		f("LeaveGroup response", &LeaveGroupResponse{Members: []LeaveGroupMemberResponse{{InstanceID: id}}}, func() message { return new(LeaveGroupResponse) },
			func(m message) *string { return m.(*LeaveGroupResponse).Members[0].InstanceID })
		f("OffsetCommit v2", &OffsetCommitRequest{Version: 2, InstanceID: id}, func() message { return &OffsetCommitRequest{Version: 2} },
			func(m message) *string { return m.(*OffsetCommitRequest).InstanceID })
	}
}
