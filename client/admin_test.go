package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

func TestAdminTopics(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	c := newClient(t, fc)
	ctx := testContext(t)

	if err := c.CreateTopic(ctx, "orders", 3, 1, map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	err := c.CreateTopic(ctx, "orders", 3, 1, nil)
	if errcode.Of(err) != errcode.TopicAlreadyExists {
		t.Fatalf("second create: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	if !strings.Contains(err.Error(), "broker 127.0.0.1:") {
		t.Errorf("error %q does not name the broker", err)
	}
	if !errors.Is(err, &errcode.Error{Code: errcode.TopicAlreadyExists}) {
		t.Errorf("errors.Is does not match the code")
	}
	if err := c.CreateTopic(ctx, "audit", 1, 1, nil); err != nil {
		t.Fatal(err)
	}

	topics, err := c.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 2 || topics[0].Name != "audit" || topics[1].Name != "orders" {
		t.Fatalf("ListTopics = %+v", topics)
	}
	info, err := c.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 3 || info.Configs["retention.ms"] != "1000" {
		t.Fatalf("DescribeTopic = %+v", info)
	}
	for i, p := range info.Partitions {
		if p.Partition != int32(i) || p.Leader != int32(i%2) || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Errorf("partition %d = %+v", i, p)
		}
	}

	if err := c.DeleteTopic(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeTopic(ctx, "audit"); errcode.Of(err) != errcode.UnknownTopicOrPartition {
		t.Fatalf("describe deleted topic: %v", err)
	}
	if err := c.DeleteTopic(ctx, "audit"); errcode.Of(err) != errcode.UnknownTopicOrPartition {
		t.Fatalf("delete deleted topic: %v", err)
	}
}

func TestListOffsetsPingVersions(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 2)
	c := newClient(t, fc)
	ctx := testContext(t)

	var b batch.Builder
	b.Reset()
	for i := int64(0); i < 5; i++ {
		b.Append(nil, []byte("v"), 1000+i*10, nil)
	}
	fc.AppendBatch("t", 1, b.Finish())
	fc.SetLogStart("t", 1, 0)

	f := func(ts, want int64) {
		t.Helper()
		got, err := c.ListOffsets(ctx, "t", 1, ts)
		if err != nil || got != want {
			t.Errorf("ListOffsets(t/1, %d) = %d, %v; want %d", ts, got, err, want)
		}
	}
	f(TimestampEarliest, 0)
	f(TimestampLatest, 5)
	f(1020, 2)
	f(1015, 2)
	f(5000, -1)
	if _, err := c.ListOffsets(ctx, "t", 7, TimestampLatest); errcode.Of(err) != errcode.UnknownTopicOrPartition {
		t.Errorf("ListOffsets on a missing partition: %v", err)
	}

	if _, node, err := c.Ping(ctx); err != nil || node < 0 {
		t.Errorf("Ping = %d, %v", node, err)
	}
	v, err := c.APIVersions(ctx)
	if err != nil || len(v.APIs) != len(proto.Supported) {
		t.Errorf("APIVersions = %+v, %v", v, err)
	}
}

func TestTopLevelErrorIsErrcode(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	c := newClient(t, fc)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyPing {
			return &fakebroker.Action{Error: errcode.InvalidRequest}
		}
		return nil
	})
	_, _, err := c.Ping(testContext(t))
	if errcode.Of(err) != errcode.InvalidRequest {
		t.Fatalf("Ping = %v, want INVALID_REQUEST", err)
	}
}

func TestBootstrapSkipsUnreachableBroker(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	dead := newCluster(t, fakebroker.Options{})
	deadAddr := dead.Addrs()[0]
	dead.Close()
	c, err := New(Options{Brokers: []string{deadAddr, fc.Addrs()[0]}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.DescribeTopic(testContext(t), "t"); err != nil {
		t.Fatal(err)
	}
}
