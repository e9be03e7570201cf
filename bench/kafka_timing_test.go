package bench

import (
	"context"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
)

// BenchmarkKafkaProduce measures production through the Kafka listener: a franz-go (kgo)
// client, 100-byte records without key, acks=all, franz-go's default idempotence and sticky
// partitioner, linger 10 ms, over loopback to the reactor (2 event loops), kafka.Server, the
// partition writers and the log on the OS filesystem, into a 4-partition topic. One op is one
// record; the final Flush (every acknowledgement received) is timed.
//
// Each run (each b.N) has its own broker and data directory, a fresh topic and client, and one
// warm-up record (producer ID, metadata, connection), all outside the timer.
func BenchmarkKafkaProduce(b *testing.B) {
	policies := []cluster.FsyncPolicy{
		{Mode: cluster.FsyncInterval, Interval: 5 * time.Millisecond},
		{Mode: cluster.FsyncAlways},
	}
	for _, policy := range policies {
		b.Run("fsync="+policy.String(), func(b *testing.B) {
			br := startKafkaBroker(b, policy)
			topic := newTopic(b, br, "kproduce", kafkaPartitions)
			cl := newKafkaProducer(b, br, topic)
			value := make([]byte, recordBytes)
			warmKafka(b, cl, value)
			ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
			defer cancel()

			b.SetBytes(recordBytes)
			b.ReportAllocs()
			b.ResetTimer()
			failed, err := kafkaProduceN(ctx, cl, value, b.N)
			b.StopTimer()
			if err != nil {
				b.Fatalf("%d of %d records failed: %v", failed, b.N, err)
			}
			reportRecords(b, b.N)
		})
	}
}

// BenchmarkKafkaFetch measures consumption through the Kafka listener: a 4-partition topic is
// filled with b.N 100-byte records by a franz-go producer (fsync=never, outside the timer), then
// a second franz-go client, created and connected outside the timer with its fetching paused,
// reads every partition from the start (no group, franz-go's default fetch sizes: 50 MiB per
// request, 1 MiB per partition). The timer starts when fetching resumes and stops when the
// b.N-th record is polled. One op is one record; the log is in the page cache.
func BenchmarkKafkaFetch(b *testing.B) {
	br := startKafkaBroker(b, cluster.FsyncPolicy{Mode: cluster.FsyncNever})
	b.Run("partitions=4", func(b *testing.B) {
		topic := newTopic(b, br, "kfetch", kafkaPartitions)
		value := make([]byte, recordBytes)
		ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
		defer cancel()
		p := newKafkaProducer(b, br, topic)
		if failed, err := kafkaProduceN(ctx, p, value, b.N); err != nil {
			b.Fatalf("filling the topic: %d of %d records failed: %v", failed, b.N, err)
		}
		p.Close()
		cl := newKafkaConsumer(b, br, topic)
		if n := cl.BufferedFetchRecords(); n != 0 {
			b.Fatalf("%d records fetched before the timer started", n)
		}

		b.SetBytes(recordBytes)
		b.ReportAllocs()
		b.ResetTimer()
		cl.ResumeFetchTopics(topic)
		got := kafkaConsume(ctx, b, cl, b.N)
		b.StopTimer()
		if got != b.N {
			b.Fatalf("consumed %d records, produced %d", got, b.N)
		}
		reportRecords(b, got)
	})
}
