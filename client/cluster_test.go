package client

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// How the client follows partitions around a cluster: leader hints, partitions without a leader
// for a while, hints without an address, and leaders lost with their connections.

// A partition without a leader (LEADER_NOT_AVAILABLE, in Metadata and in answers) holds its
// records back, retried within the producer's backoff, until the metadata names a leader; they
// then go there.
func TestProduceWaitsForALeader(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 1) // led by node 0
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Linger: -1, Retries: 1000, RetryBackoff: 5 * time.Millisecond})
	ctx := testContext(t)
	if err := p.ProduceSync(ctx, &Record{Topic: "t", Partition: 0, Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}

	// The leader is lost: node 0 answers LEADER_NOT_AVAILABLE, and so does Metadata.
	fc.SetLeader("t", 0, -1)
	produces, metadata := fc.Count(proto.KeyProduce), fc.Count(proto.KeyMetadata)
	done := make(chan error, 1)
	go func() { done <- p.ProduceSync(ctx, &Record{Topic: "t", Partition: 0, Value: []byte("b")}) }()
	waitFor(t, ctx, "the producer to ask for metadata again", func() bool {
		return fc.Count(proto.KeyProduce) > produces && fc.Count(proto.KeyMetadata) >= metadata+2
	})
	select {
	case err := <-done:
		t.Fatalf("delivered without a leader: %v", err)
	default:
	}
	fc.SetLeader("t", 0, 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := fc.ProduceLog()
	if last := log[len(log)-1]; last.Node != 1 || last.BaseOffset != 1 {
		t.Fatalf("the second record went to node %d at offset %d, want node 1 at offset 1", last.Node, last.BaseOffset)
	}
}

// NOT_LEADER_OR_FOLLOWER naming a leader without its address: the client asks for metadata and
// goes to the leader it names.
func TestHintWithoutAddressRefreshesMetadata(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 1)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Linger: -1, RetryBackoff: time.Millisecond})
	ctx := testContext(t)
	if err := p.ProduceSync(ctx, &Record{Topic: "t", Partition: 0, Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	fc.SetLeader("t", 0, 1)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyProduce && r.Node == 0 {
			return &fakebroker.Action{Error: errcode.NotLeaderOrFollower, Hint: proto.LeaderHint{ID: 1}}
		}
		return nil
	})
	metadata := fc.Count(proto.KeyMetadata)
	if err := p.ProduceSync(ctx, &Record{Topic: "t", Partition: 0, Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if fc.Count(proto.KeyMetadata) == metadata {
		t.Error("a hint without an address should have the client ask for metadata")
	}
	if log := fc.ProduceLog(); log[len(log)-1].Node != 1 {
		t.Fatalf("the second record went to node %d, want 1", log[len(log)-1].Node)
	}
}

// ListOffsets follows a leader hint without asking for metadata.
func TestListOffsetsFollowsLeader(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 3})
	mustCreate(t, fc, "t", 3)
	appendValues(fc, "t", 1, "a", "b")
	c := newClient(t, fc)
	ctx := testContext(t)
	if off, err := c.ListOffsets(ctx, "t", 1, TimestampLatest); err != nil || off != 2 {
		t.Fatalf("ListOffsets = %d, %v", off, err)
	}
	fc.SetLeader("t", 1, 2)
	metadata := fc.Count(proto.KeyMetadata)
	appendValues(fc, "t", 1, "c")
	if off, err := c.ListOffsets(ctx, "t", 1, TimestampLatest); err != nil || off != 3 {
		t.Fatalf("ListOffsets after the move = %d, %v", off, err)
	}
	if n := fc.Count(proto.KeyMetadata); n != metadata {
		t.Errorf("the leader hint should avoid a metadata request (%d → %d)", metadata, n)
	}
}

// A leader whose connections fail (its node went away) and whose partition moved: the consumer
// learns the new leader from fresh metadata, since no answer carries a hint.
func TestFetchFindsLeaderAfterConnectionLoss(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 2) // partition 1 led by node 1
	appendValues(fc, "t", 1, "a")
	cl := newClient(t, fc)
	c := NewConsumer(cl, ConsumerOptions{ResetOffset: ResetEarliest, FetchMaxWait: 50 * time.Millisecond})
	c.Assign([]TopicPartition{{"t", 1}})
	ctx := testContext(t)
	if got := values(pollN(t, ctx, c, 1)); got[0] != "a" {
		t.Fatalf("got %v", got)
	}
	var dropped atomic.Int32
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Node == 1 {
			dropped.Add(1)
			return &fakebroker.Action{Drop: true}
		}
		return nil
	})
	fc.SetLeader("t", 1, 0)
	appendValues(fc, "t", 1, "b")
	if got := values(pollN(t, ctx, c, 1)); got[0] != "b" {
		t.Fatalf("got %v", got)
	}
	if dropped.Load() == 0 {
		t.Fatal("no request reached node 1: the test did not lose a connection")
	}
}
