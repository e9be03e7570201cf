package client

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

func appendRecords(fc *fakebroker.Cluster, topic string, p int32, n int) {
	var b batch.Builder
	b.Reset()
	for i := 0; i < n; i++ {
		b.Append(nil, []byte("v"), 1000, nil)
	}
	fc.AppendBatch(topic, p, b.Finish())
}

// ListOffsetsReplicas asks the partition's leader (here node 1, not the bootstrap node) in
// version 2 and returns every replica where the leader sees it, with each one's lag.
func TestListOffsetsReplicas(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 3})
	mustCreate(t, fc, "t", 2)
	appendRecords(fc, "t", 1, 5)
	fc.SetReplicas("t", 1, []int32{1, 2, 0}, []int32{1, 2})
	caughtUp := time.UnixMilli(1_700_000_000_000)
	fc.SetFollower("t", 1, 2, 5, caughtUp.UnixMilli())
	c := newClient(t, fc)
	ctx := testContext(t)

	before := time.Now().Truncate(time.Millisecond)
	got, err := c.ListOffsetsReplicas(ctx, "t", 1, TimestampLatest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Offset != 5 || got.Leader != 1 || got.LeaderLogEnd() != 5 || len(got.Replicas) != 3 {
		t.Fatalf("ListOffsetsReplicas = %+v", got)
	}
	leader, follower, unknown := got.Replicas[0], got.Replicas[1], got.Replicas[2]
	if leader.Node != 1 || leader.LogEndOffset != 5 || leader.LastCaughtUp.Before(before) || leader.LastCaughtUp.After(time.Now()) {
		t.Errorf("the leader: %+v", leader)
	}
	if follower != (ReplicaPosition{Node: 2, LogEndOffset: 5, LastCaughtUp: caughtUp}) {
		t.Errorf("node 2: %+v", follower)
	}
	if unknown != (ReplicaPosition{Node: 0, LogEndOffset: -1}) || unknown.Known() {
		t.Errorf("node 0: %+v", unknown)
	}
	lags := func(p PartitionOffset) []string {
		var out []string
		for _, r := range p.Replicas {
			if lag, ok := p.Lag(r.Node); ok {
				out = append(out, strconv.FormatInt(lag, 10))
			} else {
				out = append(out, "?")
			}
		}
		return out
	}
	if l := lags(got); !slices.Equal(l, []string{"0", "0", "?"}) {
		t.Errorf("lags %v", l)
	}

	// The leader moves on; node 0 is heard from, behind.
	appendRecords(fc, "t", 1, 1520)
	fc.SetFollower("t", 1, 0, 5, -1)
	got, err = c.ListOffsetsReplicas(ctx, "t", 1, TimestampEarliest)
	if err != nil || got.Offset != 0 || got.LeaderLogEnd() != 1525 {
		t.Fatalf("ListOffsetsReplicas = %+v, %v", got, err)
	}
	if l := lags(got); !slices.Equal(l, []string{"0", "1520", "1520"}) {
		t.Errorf("lags %v", l)
	}
	if got.Replicas[2].LastCaughtUp != (time.Time{}) {
		t.Errorf("node 0 caught up at %v, want unknown", got.Replicas[2].LastCaughtUp)
	}
	if _, err := c.ListOffsetsReplicas(ctx, "t", 9, TimestampLatest); errcode.Of(err) != errcode.UnknownTopicOrPartition {
		t.Errorf("a missing partition: %v", err)
	}
}

// A broker that serves only ListOffsets version 1 answers version 2 with UNSUPPORTED_VERSION:
// the client asks again in version 1, remembers it for the connection, and reports no replicas.
func TestListOffsetsReplicasOlderBroker(t *testing.T) {
	var apis []proto.APIRange
	for _, a := range proto.Supported {
		if a.Key == proto.KeyListOffsets {
			a.MaxVersion = 1
		}
		apis = append(apis, a)
	}
	fc := newCluster(t, fakebroker.Options{APIs: apis})
	mustCreate(t, fc, "t", 1)
	appendRecords(fc, "t", 0, 3)
	c := newClient(t, fc)
	ctx := testContext(t)

	for i, wantRequests := range []int{2, 3} {
		got, err := c.ListOffsetsReplicas(ctx, "t", 0, TimestampLatest)
		if err != nil || got.Offset != 3 || got.Replicas != nil || got.LeaderLogEnd() != -1 {
			t.Fatalf("call %d: ListOffsetsReplicas = %+v, %v", i, got, err)
		}
		if _, ok := got.Lag(0); ok {
			t.Errorf("call %d: a lag without replicas", i)
		}
		if n := fc.Count(proto.KeyListOffsets); n != wantRequests {
			t.Errorf("after call %d: %d ListOffsets requests, want %d", i, n, wantRequests)
		}
	}
	// ListOffsets itself sends version 1 and never needs a second try.
	if off, err := c.ListOffsets(ctx, "t", 0, TimestampLatest); err != nil || off != 3 || fc.Count(proto.KeyListOffsets) != 4 {
		t.Errorf("ListOffsets = %d, %v after %d requests", off, err, fc.Count(proto.KeyListOffsets))
	}
	// A new connection asks in version 2 again (the broker may have been upgraded).
	fc.DropConnections()
	if got, err := c.ListOffsetsReplicas(ctx, "t", 0, TimestampLatest); err != nil || got.Offset != 3 {
		t.Fatalf("after a reconnect: %+v, %v", got, err)
	}
	if n := fc.Count(proto.KeyListOffsets); n != 6 {
		t.Errorf("after a reconnect: %d ListOffsets requests, want 6 (version 2, then 1)", n)
	}
}
