package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/cluster"
)

// recordBytes is the value size of every benchmark record (no key, no headers).
const recordBytes = 100

// batchBytes is the producer's batch size.
const batchBytes = 16 << 10

// benchTimeout bounds every wait in a benchmark: only reached when something is broken.
const benchTimeout = 5 * time.Minute

// startBroker starts a broker with policy in tb's temporary directory, closed at cleanup.
func startBroker(tb testing.TB, policy cluster.FsyncPolicy) *Broker {
	tb.Helper()
	br, err := Start(Options{DataDir: tb.TempDir(), Fsync: policy, Loops: 2})
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

// topicSeq makes topic names unique: a benchmark function runs several times (growing b.N)
// against one broker, each run on a fresh topic.
var topicSeq atomic.Int64

// newTopic creates a fresh topic of partitions partitions on br and returns its name. The topic
// is deleted at cleanup, so long runs do not fill the disk.
func newTopic(tb testing.TB, br *Broker, prefix string, partitions int32) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%d", prefix, topicSeq.Add(1))
	if err := br.CreateTopic(name, partitions); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = br.Cluster.DeleteTopic(name) })
	return name
}

// newClient returns a client of br, closed at cleanup.
func newClient(tb testing.TB, br *Broker) *client.Client {
	tb.Helper()
	c, err := client.New(client.Options{Brokers: []string{br.Addr}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newProducer returns an acks=all producer of 16 KiB batches, closed at cleanup.
func newProducer(tb testing.TB, c *client.Client) *client.Producer {
	tb.Helper()
	p := client.NewProducer(c, client.ProducerOptions{Acks: client.AcksAll, BatchBytes: batchBytes})
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// warm sends one record to every partition of topic and waits for them, so the producer has
// the topic's metadata and a connection before anything is timed.
func warm(tb testing.TB, p *client.Producer, topic string, partitions int32, value []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	recs := make([]*client.Record, partitions)
	for i := range recs {
		recs[i] = &client.Record{Topic: topic, Partition: int32(i), Value: value}
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		tb.Fatal(err)
	}
}

// produceN produces n records of value round-robin over partitions and waits for every
// acknowledgement. It returns how many failed and the first error.
func produceN(ctx context.Context, p *client.Producer, topic string, partitions int32, value []byte, n int) (int64, error) {
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	done := func(_ *client.Record, err error) {
		if err != nil {
			failed.Add(1)
			first := err // a copy, so that err itself does not escape: no allocation on success
			firstErr.CompareAndSwap(nil, &first)
		}
	}
	for i := range n {
		// The one allocation per record the client's API requires: the producer keeps rec until
		// its callback.
		rec := &client.Record{Topic: topic, Partition: int32(i) % partitions, Value: value}
		p.Produce(ctx, rec, done)
	}
	if err := p.Flush(ctx); err != nil {
		return failed.Load(), err
	}
	if e := firstErr.Load(); e != nil {
		return failed.Load(), *e
	}
	return 0, nil
}

// reportRecords reports the records/s of the timed part of a benchmark that handled n records.
func reportRecords(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, "records/s")
	}
}
