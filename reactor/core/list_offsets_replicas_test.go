package core

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// listOffsetsVersion sends a ListOffsets request at version and decodes the answer in that version's
// layout.
func (e *env) listOffsetsVersion(version int16, req *proto.ListOffsetsRequest) proto.ListOffsetsResponse {
	e.t.Helper()
	corr := e.send(proto.KeyListOffsets, version, req.AppendTo(nil))
	h, body := e.recv(corr)
	if h.ErrorCode != 0 {
		e.t.Fatalf("ListOffsets v%d: top-level error %d %s", version, h.ErrorCode, h.ErrorMessage)
	}
	resp := proto.ListOffsetsResponse{Version: version}
	if err := resp.ReadFrom(body); err != nil {
		e.t.Fatalf("ListOffsets v%d response: %v", version, err)
	}
	return resp
}

// inWindow reports whether ms is a time between from and to, to the millisecond.
func inWindow(ms int64, from, to time.Time) bool {
	return ms >= from.UnixMilli() && ms <= to.UnixMilli()
}

// A single node answers version 2 with itself as the partition's one replica, at its log end;
// version 1 keeps its layout.
func TestListOffsetsV2SingleNode(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	e.produce("t", 0, makeBatch(4, testNow.UnixMilli(), 1))
	req := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: "t", Partitions: []proto.ListOffsetsPartition{
		{Partition: 0, Timestamp: proto.TimestampLatest}, {Partition: 0, Timestamp: -7}, {Partition: 5, Timestamp: proto.TimestampLatest},
	}}}}
	before := time.Now()
	resp := e.listOffsetsVersion(2, req)
	after := time.Now()
	ps := resp.Topics[0].Partitions
	if p := ps[0]; p.ErrorCode != 0 || p.Offset != 4 || len(p.Replicas) != 1 || p.Replicas[0].Node != e.broker.NodeID() ||
		p.Replicas[0].LogEndOffset != 4 || !inWindow(p.Replicas[0].LastCaughtUpMs, before, after) {
		t.Errorf("partition 0: %+v", p)
	}
	// Partitions answered with an error have no replicas.
	if p := ps[1]; errcode.Code(p.ErrorCode) != errcode.InvalidRequest || len(p.Replicas) != 0 {
		t.Errorf("timestamp -7: %+v", p)
	}
	if p := ps[2]; errcode.Code(p.ErrorCode) != errcode.UnknownTopicOrPartition || len(p.Replicas) != 0 {
		t.Errorf("partition 5: %+v", p)
	}
	if v1 := e.listOffsetsVersion(1, req); v1.Topics[0].Partitions[0].Offset != 4 {
		t.Errorf("version 1: %+v", v1)
	}
}

// The leader of a replicated partition answers version 2 with every replica in the metadata's
// order: itself at its log end, a follower where its last fetch put it (caught up last when this
// node became leader, as it has not caught up since), and -1 for a follower it has not heard
// from.
func TestListOffsetsV2ReplicatedLeader(t *testing.T) {
	img := clustertest.Copy(clustertest.Cluster())
	img.Index++
	img.Topics["replicated"] = &meta.Topic{Name: "replicated", ID: [16]byte{9, 9}, ReplicationFactor: 3, Partitions: []meta.Partition{
		{Replicas: []int32{clustertest.Self, 2, 0}, ISR: []int32{clustertest.Self, 2, 0}, Leader: clustertest.Self, LeaderEpoch: 5, PartitionEpoch: 5},
	}}
	img.Names = slices.Sorted(maps.Keys(img.Topics))
	store := clustertest.Fixed(img, clustertest.Controller)
	start := time.Now()
	b := clustertest.Open(t, clustertest.Self, store)
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = NewSession(e.tr, Limits{})

	if p := e.produce("replicated", 0, makeBatch(3, testNow.UnixMilli(), 1)); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	r := b.Replica("replicated", 0)
	if f := r.FollowerFetched(2, int64(img.Nodes[2].Incarnation), 5, 1, -1, 1); f.Code != errcode.None || f.DivergingEpoch != -1 {
		t.Fatalf("node 2's fetch: %+v", f)
	}
	req := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: "replicated", Partitions: []proto.ListOffsetsPartition{
		{Partition: 0, Timestamp: proto.TimestampEarliest},
	}}, {Name: clustertest.Routed, Partitions: []proto.ListOffsetsPartition{{Partition: 1, Timestamp: proto.TimestampLatest}}}}}
	before := time.Now()
	resp := e.listOffsetsVersion(2, req)
	after := time.Now()
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.Offset != 0 || len(p.Replicas) != 3 {
		t.Fatalf("replicated partition: %+v", p)
	}
	self, follower, silent := p.Replicas[0], p.Replicas[1], p.Replicas[2]
	if self.Node != clustertest.Self || self.LogEndOffset != 3 || !inWindow(self.LastCaughtUpMs, before, after) {
		t.Errorf("the leader's own entry: %+v", self)
	}
	if follower.Node != 2 || follower.LogEndOffset != 1 || !inWindow(follower.LastCaughtUpMs, start, before) {
		t.Errorf("node 2: %+v (caught up last between %d and %d)", follower, start.UnixMilli(), before.UnixMilli())
	}
	if silent != (proto.ListOffsetsReplica{Node: 0, LogEndOffset: -1, LastCaughtUpMs: -1}) {
		t.Errorf("node 0, never heard from: %+v", silent)
	}
	// Another node's partition: NOT_LEADER_OR_FOLLOWER and no replicas.
	if p := resp.Topics[1].Partitions[0]; errcode.Code(p.ErrorCode) != errcode.NotLeaderOrFollower || len(p.Replicas) != 0 {
		t.Errorf("a partition led elsewhere: %+v", p)
	}

	// Once node 2 has fetched everything it is caught up as of that fetch, at the leader's log end.
	fetched := time.Now()
	if f := r.FollowerFetched(2, int64(img.Nodes[2].Incarnation), 5, 3, 5, 3); f.Code != errcode.None || f.DivergingEpoch != -1 {
		t.Fatalf("node 2's second fetch: %+v", f)
	}
	before = time.Now()
	p = e.listOffsetsVersion(2, req).Topics[0].Partitions[0]
	if follower := p.Replicas[1]; follower.LogEndOffset != 3 || !inWindow(follower.LastCaughtUpMs, fetched, before) {
		t.Errorf("node 2 caught up: %+v (fetched between %d and %d)", follower, fetched.UnixMilli(), before.UnixMilli())
	}
}
