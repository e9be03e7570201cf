package core

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
)

// A client cannot write the offsets topic: its records would have to decode as commits at every
// start.
func TestProduceToInternalTopicRefused(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	got := e.produce(groups.OffsetsTopic, 0, makeBatch(3, 1000, 1))
	if errcode.Code(got.ErrorCode) != errcode.InvalidTopic {
		t.Fatalf("produce to %s: %+v, want INVALID_TOPIC_EXCEPTION", groups.OffsetsTopic, got)
	}
	if hw := e.broker.Replica(groups.OffsetsTopic, 0).HighWatermark(); hw != 0 {
		t.Fatalf("offsets topic high watermark %d after a refused produce, want 0", hw)
	}
	got = e.produce(groups.OffsetsTopic, e.coord.PartitionFor("g"), makeBatch(3, 1000, 1))
	if errcode.Code(got.ErrorCode) != errcode.InvalidTopic {
		t.Fatalf("produce to %s: %+v, want INVALID_TOPIC_EXCEPTION", groups.OffsetsTopic, got)
	}
}

// Records in the offsets topic that do not decode as commits (written by an older or damaged
// broker) cost only themselves: the broker starts and the other commits are kept.
func TestUndecodableOffsetsBatchSkippedAtStart(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	commit := func(offset int64) {
		t.Helper()
		var resp proto.OffsetCommitResponse
		e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "g", Topics: []proto.OffsetCommitTopic{
			{Name: "t", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: offset}}},
		}}, &resp)
		if resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit %d: %+v", offset, resp)
		}
	}
	commit(5)
	// A batch of records that are not commits, written the way the coordinator writes its own,
	// into the partition of the group's.
	l, err := offsetslog.Open(e.broker, offsetslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	l.Append(e.coord.PartitionFor("g"), makeBatch(2, 1000, 1), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	commit(9)
	e.close()
	e.open()
	var resp proto.OffsetFetchResponse
	e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "g", Topics: []proto.OffsetFetchTopic{{Name: "t", Partitions: []int32{0}}}}, &resp)
	if got := resp.Topics[0].Partitions[0].Offset; got != 9 {
		t.Fatalf("committed offset after restart %d, want 9", got)
	}
}

// Committed offsets of a topic go when the topic is deleted by any path (the Kafka listener
// deletes through the broker directly), not only through this server's DeleteTopics.
func TestOffsetsForgottenWhenBrokerDeletesTopic(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	var commit proto.OffsetCommitResponse
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "g", Topics: []proto.OffsetCommitTopic{
		{Name: "t", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 4}}},
	}}, &commit)
	if err := e.broker.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	// The coordinator takes the deletion before the next request and forgets the offsets once
	// its tombstones are durable.
	for deadline := time.Now().Add(waitTimeout); ; {
		var resp proto.OffsetFetchResponse
		e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "g", Topics: []proto.OffsetFetchTopic{{Name: "t", Partitions: []int32{0}}}}, &resp)
		if got := resp.Topics[0].Partitions[0].Offset; got == -1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("committed offset of a deleted topic %d, want -1", got)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}
