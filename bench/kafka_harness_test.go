package bench

import (
	"context"
	"testing"

	"github.com/thorstream/thorstream/cluster"
)

// TestKafkaHarness checks the harness's Kafka listener in a fraction of a second: franz-go
// produces 1000 records through it (acks=all, idempotent) and reads them back.
func TestKafkaHarness(t *testing.T) {
	br := startKafkaBroker(t, cluster.FsyncPolicy{Mode: cluster.FsyncAlways})
	if br.KafkaAddr == "" || br.KafkaAddr == br.Addr {
		t.Fatalf("Kafka listener %q, binary listener %q", br.KafkaAddr, br.Addr)
	}
	const n = 1000
	topic := newTopic(t, br, "kharness", kafkaPartitions)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	value := make([]byte, recordBytes)
	if failed, err := kafkaProduceN(ctx, newKafkaProducer(t, br, topic), value, n); err != nil {
		t.Fatalf("%d of %d records failed: %v", failed, n, err)
	}
	cl := newKafkaConsumer(t, br, topic)
	cl.ResumeFetchTopics(topic)
	if got := kafkaConsume(ctx, t, cl, n); got != n {
		t.Fatalf("consumed %d records, produced %d", got, n)
	}
}
