package core

import (
	"reflect"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
)

// TestGroupLagMetric: thorstream_group_lag is read at scrape time, per group and committed
// partition: log end minus the commit, 0 for a commit past the end, nothing for a partition the
// group has not committed or a topic that is gone, nothing before Attach.
func TestGroupLagMetric(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("orders", 3)
	e.createTopic("audit", 1)
	for range 5 {
		e.produce("orders", 0, makeBatch(1, testNow.UnixMilli(), 1))
	}
	e.produce("orders", 1, makeBatch(3, testNow.UnixMilli(), 1))
	e.produce("audit", 0, makeBatch(2, testNow.UnixMilli(), 1))

	lag := NewGroupLag()
	if got := gather(t, lag); len(got) != 0 {
		t.Fatalf("before Attach: %v", got)
	}
	lag.Attach(e.coord, e.broker)
	if got := gather(t, lag); len(got) != 0 {
		t.Fatalf("without groups: %v", got)
	}

	commit := func(group, topic string, partition int32, offset int64) {
		t.Helper()
		var resp proto.OffsetCommitResponse
		e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: group, Topics: []proto.OffsetCommitTopic{
			{Name: topic, Partitions: []proto.OffsetCommitPartition{{Partition: partition, Offset: offset}}},
		}}, &resp)
		if resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", resp)
		}
	}
	commit("billing", "orders", 0, 2)
	commit("billing", "orders", 1, 3)
	commit("archiver", "orders", 1, 10) // past the end
	commit("archiver", "audit", 0, 0)
	got := gather(t, lag)
	wantLag := map[string]float64{
		`thorstream_group_lag{group="billing",partition="0",topic="orders"}`:  3,
		`thorstream_group_lag{group="billing",partition="1",topic="orders"}`:  0,
		`thorstream_group_lag{group="archiver",partition="1",topic="orders"}`: 0,
		`thorstream_group_lag{group="archiver",partition="0",topic="audit"}`:  2,
	}
	if !reflect.DeepEqual(got, wantLag) {
		t.Fatalf("thorstream_group_lag:\n%v\nwant\n%v", got, wantLag)
	}

	// New records raise the lag at the next scrape; a deleted topic's series go.
	e.produce("orders", 1, makeBatch(4, testNow.UnixMilli(), 1))
	var deleted proto.TopicErrorsResponse
	e.call(proto.KeyDeleteTopics, &proto.DeleteTopicsRequest{Names: []string{"audit"}, TimeoutMs: 1000}, &deleted)
	got = gather(t, lag)
	want(t, got, map[string]float64{
		`thorstream_group_lag{group="billing",partition="1",topic="orders"}`:  4,
		`thorstream_group_lag{group="archiver",partition="1",topic="orders"}`: 0,
	})
	for k := range got {
		if strings.Contains(k, `topic="audit"`) {
			t.Errorf("a series of the deleted topic: %s", k)
		}
	}
}
