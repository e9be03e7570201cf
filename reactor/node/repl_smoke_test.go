package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

func TestReplSmoke(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	waitRegistered(t, c, 3)
	createTopic(t, c, 0, "r3", 3)
	c.Eventually(wait, "rf3 isr", func() bool {
		tp := c.Node(0).Broker.Snapshot().Topics["r3"]
		if tp == nil {
			return false
		}
		for _, p := range tp.Partitions {
			if len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()...), kgo.DefaultProduceTopic("r3"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	for i := range 3000 {
		cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced in %v", time.Since(start))
	c.Eventually(wait, "replicas equal", func() bool {
		for p := range 3 {
			var ends []int64
			for id := range int32(3) {
				r := c.Node(id).Broker.Snapshot().Topics["r3"].Replicas[p]
				ends = append(ends, r.LogEndOffset(), r.HighWatermark())
			}
			for _, e := range ends {
				if e != ends[0] {
					t.Logf("p%d ends %v", p, ends)
					return false
				}
			}
		}
		return true
	})
}
