package node_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// latestByKey reads a replica's whole log (to its log end) and returns each key's last value.
func latestByKey(t *testing.T, r *cluster.Replica) map[string]string {
	t.Helper()
	out := map[string]string{}
	var buf, scratch []byte
	for next := r.LogStartOffset(); next < r.LogEndOffset(); {
		var err error
		buf, err = r.ReadForFollower(buf[:0], next, 1<<20)
		if err != nil {
			t.Fatalf("reading %s-%d at %d: %v", r.Topic(), r.Partition(), next, err)
		}
		if len(buf) == 0 {
			break
		}
		err = batch.Split(buf, func(one []byte) error {
			h, records, err := compress.DecompressBatch(one, scratch[:0], 64<<20)
			if err != nil {
				return err
			}
			scratch = records
			next = h.NextOffset()
			return batch.DecodeRecords(&h, records, func(rec *batch.Record) error {
				out[string(rec.Key)] = string(rec.Value)
				return nil
			})
		})
		if err != nil {
			t.Fatalf("decoding %s-%d near %d: %v", r.Topic(), r.Partition(), next, err)
		}
	}
	return out
}

// TestReplicationCompactedTopic: every replica of a compacted topic compacts its own copy, and
// the copies stay equivalent: each holds the latest value of every key, before and after the
// leader's node stops and another replica leads.
func TestReplicationCompactedTopic(t *testing.T) {
	if testing.Short() {
		// make test runs it whole without the race detector; the race pass (-short) leaves out
		// its slowest cluster runs, whose code paths the other fault tests cover under it.
		t.Skip("slow under the race detector: run in full by make test's non-race pass")
	}
	c := nodetest.Start(t, nodetest.Options{Broker: func(o *cluster.Options) {
		o.CleanerDisabled = false
		o.Cleaner = cleaner.Options{Backoff: 20 * time.Millisecond, DedupeBufferBytes: 1 << 20}
		o.Defaults = cluster.DefaultDefaults
		o.Defaults.SegmentBytes = 16 << 10
	}})
	waitRegistered(t, c, 3)
	const topic = "r3-state"
	err := c.Node(0).Broker.CreateTopic(cluster.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 3,
		Configs: map[string]string{cluster.ConfigCleanupPolicy: cluster.PolicyCompact, cluster.ConfigMinCleanableRatio: "0.01"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(wait, "three in-sync replicas", func() bool {
		tp := c.Node(0).Broker.Snapshot().Topics[topic]
		return tp != nil && len(tp.Partitions[0].ISR) == 3
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2048))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	latest := map[string]string{}
	value := make([]byte, 300)
	for round := range 40 {
		for k := range 50 {
			key, v := fmt.Sprintf("key-%02d", k), fmt.Sprintf("v-%d-%d-%s", round, k, value)
			latest[key] = v
			cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	replicas := func() []*cluster.Replica {
		var rs []*cluster.Replica
		for _, id := range c.Running() {
			rs = append(rs, c.Node(id).Broker.Snapshot().Topics[topic].Replicas[0])
		}
		return rs
	}
	state := ""
	deadline := time.Now().Add(2 * wait)
	for {
		rs := replicas()
		ok := true
		state = ""
		for _, r := range rs {
			state += fmt.Sprintf(" [end %d hw %d cleaned %d]", r.LogEndOffset(), r.HighWatermark(), r.Log().CleanerProgress().CleanBytes)
			if r.LogEndOffset() != rs[0].LogEndOffset() || r.HighWatermark() != r.LogEndOffset() ||
				r.Log().CleanerProgress().CleanBytes == 0 {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: every replica not yet caught up and compacted by its own cleaner:%s", 2*wait, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range replicas() {
		if got := latestByKey(t, r); !maps.Equal(got, latest) {
			t.Fatalf("a replica holds %d keys, differing from the %d written", len(got), len(latest))
		}
	}
	leader := c.Node(0).Broker.Snapshot().Topics[topic].Partitions[0].Leader
	c.StopNode(leader)
	c.Eventually(wait, "another replica to lead", func() bool {
		for _, id := range c.Running() {
			p := c.Node(id).Broker.Snapshot().Topics[topic].Partitions[0]
			if p.Leader < 0 || p.Leader == leader {
				return false
			}
		}
		return true
	})
	var seeds []string
	for _, id := range c.Running() {
		seeds = append(seeds, c.KafkaAddrs()[id])
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := map[string]string{}
	for !maps.Equal(got, latest) {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming from the new leader: %d of %d keys at their latest value", len(got), len(latest))
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
}
