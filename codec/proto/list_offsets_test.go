package proto

import (
	"bytes"
	"testing"
)

// TestListOffsetsVersions pins what the version changes: version 1 (also a zero Version) is the
// layout it always was and ignores Replicas; version 2 adds each partition's replicas after its
// leader hint.
func TestListOffsetsVersions(t *testing.T) {
	partitions := func() []ListOffsetsPartitionResponse {
		return []ListOffsetsPartitionResponse{{Partition: 0, Timestamp: -1, Offset: 7, Leader: LeaderHint{ID: 1, Addr: "a"},
			Replicas: []ListOffsetsReplica{{Node: 1, LogEndOffset: 9, LastCaughtUpMs: 5}, {Node: 2, LogEndOffset: -1, LastCaughtUpMs: -1}}}}
	}
	topics := func() []ListOffsetsTopicResponse {
		return []ListOffsetsTopicResponse{{Name: "t", Partitions: partitions()}}
	}
	v1 := (&ListOffsetsResponse{Version: 1, Topics: topics()}).AppendTo(nil)
	want1 := "\x00\x00\x00\x01" + "\x00\x01t" + "\x00\x00\x00\x01" +
		"\x00\x00\x00\x00" + "\x00\x00" + "\xff\xff" + "\xff\xff\xff\xff\xff\xff\xff\xff" + "\x00\x00\x00\x00\x00\x00\x00\x07" +
		"\x00\x00\x00\x01" + "\x00\x01a"
	if string(v1) != want1 {
		t.Fatalf("version 1 = % x\nwant        % x", v1, want1)
	}
	if zero := (&ListOffsetsResponse{Topics: topics()}).AppendTo(nil); !bytes.Equal(zero, v1) {
		t.Fatalf("version 0 encodes as % x, version 1 as % x", zero, v1)
	}
	v2 := (&ListOffsetsResponse{Version: 2, Topics: topics()}).AppendTo(nil)
	replicas := "\x00\x00\x00\x02" +
		"\x00\x00\x00\x01" + "\x00\x00\x00\x00\x00\x00\x00\x09" + "\x00\x00\x00\x00\x00\x00\x00\x05" +
		"\x00\x00\x00\x02" + "\xff\xff\xff\xff\xff\xff\xff\xff" + "\xff\xff\xff\xff\xff\xff\xff\xff"
	if string(v2) != want1+replicas {
		t.Fatalf("version 2 = % x\nwant        % x", v2, want1+replicas)
	}

	// A version 1 decode leaves no replicas behind, even in a value that held some.
	used := ListOffsetsResponse{Version: 1, Topics: topics()}
	if err := used.ReadFrom(v1); err != nil {
		t.Fatal(err)
	}
	if p := used.Topics[0].Partitions[0]; len(p.Replicas) != 0 || p.Offset != 7 {
		t.Fatalf("version 1 decoded as %+v", p)
	}
	got := ListOffsetsResponse{Version: 2}
	if err := got.ReadFrom(v2); err != nil {
		t.Fatal(err)
	}
	if r := got.Topics[0].Partitions[0].Replicas; len(r) != 2 || r[0] != (ListOffsetsReplica{1, 9, 5}) || r[1] != (ListOffsetsReplica{2, -1, -1}) {
		t.Fatalf("version 2 replicas decoded as %+v", r)
	}
	// Each version's bytes are malformed in the other's layout.
	if err := (&ListOffsetsResponse{Version: 2}).ReadFrom(v1); err == nil {
		t.Error("version 1 bytes decoded as version 2")
	}
	if err := (&ListOffsetsResponse{Version: 1}).ReadFrom(v2); err == nil {
		t.Error("version 2 bytes decoded as version 1")
	}
}
