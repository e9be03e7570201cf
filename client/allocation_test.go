//go:build !race

package client

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
)

// Produce allocates nothing per record once the partition's batch buffers are warm: the record
// is encoded into a reused batch.Builder and its callback stored in a reused slice.
func TestProduceDoesNotAllocate(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{DiscardRecords: true})
	mustCreate(t, fc, "t", 1)
	c := newClient(t, fc)
	// Nothing is sent while measuring: a long linger and batches larger than what is produced.
	p := newProducer(t, c, ProducerOptions{Linger: time.Hour, BatchBytes: 1 << 20})
	ctx := testContext(t)
	rec := &Record{Topic: "t", Partition: 0, Value: make([]byte, 100)}
	done := func(*Record, error) {}
	const runs = 2000
	for i := 0; i < runs+1; i++ { // warm up: grow the buffers, then recycle them
		p.Produce(ctx, rec, done)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(runs, func() { p.Produce(ctx, rec, done) })
	if allocs != 0 {
		t.Fatalf("Produce allocates %.2f times per record", allocs)
	}
}
