package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/cluster"
)

// kafkaPartitions is the partition count of the Kafka protocol benchmarks' topics.
const kafkaPartitions = 4

// kafkaLinger is the franz-go producer's linger in the Kafka benchmarks: thorload's default
// (franz-go's own default is none).
const kafkaLinger = 10 * time.Millisecond

// startKafkaBroker starts a broker with policy in tb's temporary directory, serving the Kafka
// protocol on a second loopback port as well, closed at cleanup.
func startKafkaBroker(tb testing.TB, policy cluster.FsyncPolicy) *Broker {
	tb.Helper()
	br, err := Start(Options{DataDir: tb.TempDir(), Fsync: policy, Loops: 2, Kafka: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := br.Close(); err != nil {
			tb.Errorf("closing the broker: %v", err)
		}
	})
	return br
}

// newKafkaProducer returns a franz-go client of br's Kafka listener producing to topic with
// acks=all, franz-go's default idempotence (an InitProducerID, then sequence numbers) and
// partitioner (sticky per batch for records without a key), and kafkaLinger. Closed at cleanup.
func newKafkaProducer(tb testing.TB, br *Broker, topic string) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(br.KafkaAddr),
		kgo.ClientID("thorstream-bench"),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(kafkaLinger),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// warmKafka produces one record synchronously, so the client has its producer ID, the topic's
// metadata and a connection before anything is timed.
func warmKafka(tb testing.TB, cl *kgo.Client, value []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		tb.Fatal(err)
	}
}

// kgoRecords recycles records once their promise has run (franz-go keeps no reference after
// it), as thorload does, so the benchmark's own allocations do not hide the client's and the
// broker's.
var kgoRecords = sync.Pool{New: func() any { return new(kgo.Record) }}

// kafkaProduceN produces n records of value to cl's default topic and waits for every
// acknowledgement. It returns how many failed and the first error.
func kafkaProduceN(ctx context.Context, cl *kgo.Client, value []byte, n int) (int64, error) {
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			first := err
			firstErr.CompareAndSwap(nil, &first)
		}
		kgoRecords.Put(r)
	}
	for range n {
		r := kgoRecords.Get().(*kgo.Record)
		*r = kgo.Record{Value: value}
		cl.Produce(ctx, r, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return failed.Load(), err
	}
	if e := firstErr.Load(); e != nil {
		return failed.Load(), *e
	}
	return 0, nil
}

// newKafkaConsumer returns a franz-go client of br's Kafka listener that consumes every
// partition of topic from the start (no group), with its fetching paused: nothing is fetched
// until ResumeFetchTopics(topic). It is connected (a Ping) before it returns. Closed at cleanup.
func newKafkaConsumer(tb testing.TB, br *Broker, topic string) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(br.KafkaAddr),
		kgo.ClientID("thorstream-bench"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	cl.PauseFetchTopics(topic)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		tb.Fatal(err)
	}
	return cl
}

// kafkaConsume polls cl until n records have arrived and returns how many did (more than n
// means the topic held more than expected).
func kafkaConsume(ctx context.Context, tb testing.TB, cl *kgo.Client, n int) int {
	got := 0
	for got < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("after %d of %d records: %v", got, n, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			tb.Fatalf("fetching %s[%d] after %d of %d records: %v", topic, partition, got, n, err)
		})
		got += fetches.NumRecords()
	}
	return got
}
