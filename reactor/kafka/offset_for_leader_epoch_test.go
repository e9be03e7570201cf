package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/codec/errcode"
)

// produceBatch appends one batch of n records to topic's partition 0 and returns its base offset.
func produceBatch(e *env, topic string, n int) int64 {
	e.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(n, -1, -1, -1, time.Now().UnixMilli())
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	p := e.call(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		e.t.Fatalf("produce to %s: error %d", topic, p.ErrorCode)
	}
	return p.BaseOffset
}

type epochAsk struct {
	partition    int32
	current, ask int32
}

// askEpochs sends OffsetForLeaderEpoch at version v for topic's partitions.
func askEpochs(e *env, v int16, topic string, asks ...epochAsk) []kmsg.OffsetForLeaderEpochResponseTopicPartition {
	e.t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = v
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	for _, a := range asks {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = a.partition, a.current, a.ask
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{rt}
	resp := e.call(req).(*kmsg.OffsetForLeaderEpochResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != topic || len(resp.Topics[0].Partitions) != len(asks) {
		e.t.Fatalf("v%d: response %+v", v, resp)
	}
	return resp.Topics[0].Partitions
}

// Batches written in epoch 0 (offsets 0-4), then epoch 2 (5-7): each epoch ends where the next
// begins, the latest at the log end offset. An epoch newer than the leader's is UNDEFINED (-1,
// -1), as Kafka's leader epoch cache answers it.
func TestOffsetForLeaderEpoch(t *testing.T) {
	e := newEnv(t)
	const topic = "epochs"
	produceBatch(e, topic, 3) // auto-created on first produce
	produceBatch(e, topic, 2)
	route := e.broker.Route(topic, 0)
	if route.Replica == nil {
		t.Fatalf("route: %+v", route)
	}
	route.Replica.SetLeaderEpoch(2)
	if got := produceBatch(e, topic, 2); got != 5 {
		t.Fatalf("first epoch-2 batch at %d, want 5", got)
	}
	produceBatch(e, topic, 1)

	cases := []struct {
		ask       int32
		end       int64
		epochWant int32
	}{
		{0, 5, 0},   // ends where epoch 2 begins
		{1, 5, 0},   // no batch in epoch 1: the largest epoch below it, epoch 0
		{2, 8, 2},   // the latest: the log end offset
		{5, -1, -1}, // newer than the leader's epoch: UNDEFINED
	}
	for v := int16(0); v <= 4; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			var asks []epochAsk
			for _, c := range cases {
				asks = append(asks, epochAsk{0, -1, c.ask})
			}
			ps := askEpochs(e, v, topic, asks...)
			for i, c := range cases {
				p := ps[i]
				if p.ErrorCode != 0 || p.Partition != 0 || p.EndOffset != c.end || (v >= 1 && p.LeaderEpoch != c.epochWant) {
					t.Errorf("epoch %d: got error %d epoch %d end %d, want epoch %d end %d", c.ask, p.ErrorCode, p.LeaderEpoch, p.EndOffset, c.epochWant, c.end)
				}
			}
		})
	}

	// The leader moves to epoch 3 and writes nothing in it yet: epoch 3 begins at the log end
	// offset, as Kafka's leader records its epoch on election; epoch 2 now ends there too.
	route.Replica.SetLeaderEpoch(3)
	ps := askEpochs(e, 4, topic, epochAsk{0, -1, 3}, epochAsk{0, -1, 2}, epochAsk{0, -1, 4})
	if ps[0].EndOffset != 8 || ps[0].LeaderEpoch != 3 {
		t.Errorf("current epoch 3 without batches: %+v", ps[0])
	}
	if ps[1].EndOffset != 8 || ps[1].LeaderEpoch != 2 {
		t.Errorf("epoch 2 after the move to 3: %+v", ps[1])
	}
	if ps[2].EndOffset != -1 || ps[2].LeaderEpoch != -1 {
		t.Errorf("epoch 4, newer than the leader's: %+v", ps[2])
	}

	// The partition's metadata epoch is checked against CurrentLeaderEpoch (v2+).
	ps = askEpochs(e, 2, topic, epochAsk{0, route.LeaderEpoch + 1, 0}, epochAsk{0, route.LeaderEpoch, 0})
	if ps[0].ErrorCode != int16(errcode.UnknownLeaderEpoch) || ps[0].EndOffset != -1 || ps[0].LeaderEpoch != -1 {
		t.Errorf("current epoch above the partition's: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].EndOffset != 5 {
		t.Errorf("current epoch equal to the partition's: %+v", ps[1])
	}

	// Unknown topics and partitions.
	for _, tc := range []struct {
		topic string
		p     int32
	}{{"no-such-topic", 0}, {topic, 7}, {topic, -1}} {
		ps := askEpochs(e, 4, tc.topic, epochAsk{tc.p, -1, 0})
		if ps[0].ErrorCode != int16(errcode.UnknownTopicOrPartition) || ps[0].EndOffset != -1 || ps[0].LeaderEpoch != -1 || ps[0].Partition != tc.p {
			t.Errorf("%s/%d: %+v", tc.topic, tc.p, ps[0])
		}
	}
}

// An empty partition: its current epoch begins (and ends) at offset 0; older epochs end there too.
func TestOffsetForLeaderEpochEmpty(t *testing.T) {
	e, _ := newClusterEnv(t) // Routed's partition 0, led here at epoch 4, holds nothing
	ps := askEpochs(e, 4, clustertest.Routed, epochAsk{0, 4, 4}, epochAsk{0, 4, 1}, epochAsk{0, 4, 5})
	if ps[0].ErrorCode != 0 || ps[0].EndOffset != 0 || ps[0].LeaderEpoch != 4 {
		t.Errorf("current epoch of an empty log: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].EndOffset != 0 || ps[1].LeaderEpoch != 1 {
		t.Errorf("older epoch of an empty log: %+v", ps[1])
	}
	if ps[2].ErrorCode != 0 || ps[2].EndOffset != -1 || ps[2].LeaderEpoch != -1 {
		t.Errorf("newer epoch of an empty log: %+v", ps[2])
	}
}

// On a cluster node: the partition led here (epoch 4) answers and fences clients by their current
// leader epoch; the others answer the route's code.
func TestClusterOffsetForLeaderEpoch(t *testing.T) {
	e, _ := newClusterEnv(t)
	produceTo(e, 12, 0)
	ps := askEpochs(e, 4, clustertest.Routed,
		epochAsk{0, 4, 4}, epochAsk{0, -1, 4}, epochAsk{0, 3, 4}, epochAsk{0, 5, 4},
		epochAsk{1, -1, 7}, epochAsk{2, -1, 3}, epochAsk{3, 2, 2}, epochAsk{9, -1, 0})
	type want struct {
		code  errcode.Code
		epoch int32
		end   int64
	}
	wants := []want{
		{errcode.None, 4, 2},
		{errcode.None, 4, 2},
		{errcode.FencedLeaderEpoch, -1, -1},
		{errcode.UnknownLeaderEpoch, -1, -1},
		{errcode.NotLeaderOrFollower, -1, -1},
		{errcode.LeaderNotAvailable, -1, -1},
		{errcode.NotLeaderOrFollower, -1, -1},
		{errcode.UnknownTopicOrPartition, -1, -1},
	}
	for i, w := range wants {
		p := ps[i]
		if p.ErrorCode != int16(w.code) || p.LeaderEpoch != w.epoch || p.EndOffset != w.end {
			t.Errorf("ask %d (partition %d): got error %d epoch %d end %d, want %+v", i, p.Partition, p.ErrorCode, p.LeaderEpoch, p.EndOffset, w)
		}
	}
}
