package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/cluster"
)

// fsyncPolicies are the broker policies BenchmarkProduce compares.
var fsyncPolicies = []cluster.FsyncPolicy{
	{Mode: cluster.FsyncNever},
	{Mode: cluster.FsyncInterval, Interval: 5 * time.Millisecond},
	{Mode: cluster.FsyncAlways},
}

// BenchmarkProduce measures asynchronous production through the whole stack: the Go client
// (100-byte records, 16 KiB batches, acks=all, up to 5 requests in flight) over loopback to the
// reactor (2 event loops), the request core, the partition writers and the log on the OS
// filesystem. Records go round-robin to the topic's partitions. One op is one record.
//
// Each fsync policy has its own broker; each run (each b.N) writes to a fresh topic, deleted
// afterwards. Setup, the warm-up and the deletion are outside the timer; the final Flush (every
// acknowledgement received) is inside.
func BenchmarkProduce(b *testing.B) {
	for _, policy := range fsyncPolicies {
		b.Run("fsync="+policy.String(), func(b *testing.B) {
			br := startBroker(b, policy)
			for _, partitions := range []int32{1, 4} {
				b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
					benchmarkProduce(b, br, partitions)
				})
			}
		})
	}
}

func benchmarkProduce(b *testing.B, br *Broker, partitions int32) {
	topic := newTopic(b, br, "produce", partitions)
	p := newProducer(b, newClient(b, br))
	value := make([]byte, recordBytes)
	warm(b, p, topic, partitions, value)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()

	b.SetBytes(recordBytes)
	b.ReportAllocs()
	b.ResetTimer()
	failed, err := produceN(ctx, p, topic, partitions, value, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatalf("%d of %d records failed: %v", failed, b.N, err)
	}
	reportRecords(b, b.N)
}

// BenchmarkFetch measures consumption through the whole stack: a one-partition topic is filled
// with b.N 100-byte records (outside the timer, fsync=never), then a Consumer reads them all from
// the beginning with its default fetch sizes (1 MiB per partition). One op is one record; the
// log is in the page cache, as it is for a consumer keeping up.
func BenchmarkFetch(b *testing.B) {
	br := startBroker(b, cluster.FsyncPolicy{Mode: cluster.FsyncNever})
	b.Run("partitions=1", func(b *testing.B) {
		topic := newTopic(b, br, "fetch", 1)
		c := newClient(b, br)
		value := make([]byte, recordBytes)
		ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
		defer cancel()
		p := newProducer(b, c)
		if failed, err := produceN(ctx, p, topic, 1, value, b.N); err != nil {
			b.Fatalf("filling the topic: %d of %d records failed: %v", failed, b.N, err)
		}
		_ = p.Close()
		tp := client.TopicPartition{Topic: topic, Partition: 0}
		cons := client.NewConsumer(c, client.ConsumerOptions{})
		defer cons.Close()
		cons.Assign([]client.TopicPartition{tp})
		cons.SeekToBeginning(tp)

		b.SetBytes(recordBytes)
		b.ReportAllocs()
		b.ResetTimer()
		got := 0
		for got < b.N {
			recs, err := cons.Poll(ctx)
			if err != nil {
				b.Fatalf("after %d of %d records: %v", got, b.N, err)
			}
			got += len(recs)
		}
		b.StopTimer()
		if got != b.N {
			b.Fatalf("consumed %d records, produced %d", got, b.N)
		}
		reportRecords(b, got)
	})
}
