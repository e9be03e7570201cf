package bench

import (
	"context"
	"testing"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/cluster"
)

// TestHarness checks the benchmark harness in a fraction of a second, so `go test ./bench/`
// without -bench still proves that a broker starts, takes records and serves them back.
func TestHarness(t *testing.T) {
	br := startBroker(t, cluster.FsyncPolicy{Mode: cluster.FsyncAlways})
	const partitions, n = 2, 1000
	topic := newTopic(t, br, "harness", partitions)
	c := newClient(t, br)
	p := newProducer(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	value := make([]byte, recordBytes)
	if failed, err := produceN(ctx, p, topic, partitions, value, n); err != nil {
		t.Fatalf("%d of %d records failed: %v", failed, n, err)
	}

	cons := client.NewConsumer(c, client.ConsumerOptions{})
	defer cons.Close()
	tps := []client.TopicPartition{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	cons.Assign(tps)
	cons.SeekToBeginning(tps...)
	got := 0
	for got < n {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", got, n, err)
		}
		for _, r := range recs {
			if len(r.Value) != recordBytes {
				t.Fatalf("record %s/%d@%d has %d bytes, want %d", r.Topic, r.Partition, r.Offset, len(r.Value), recordBytes)
			}
		}
		got += len(recs)
	}
	if got != n {
		t.Fatalf("consumed %d records, produced %d", got, n)
	}
}
