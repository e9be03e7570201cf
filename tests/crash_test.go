package tests

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
)

// ackedRecord is a record the broker acknowledged: it must survive every crash.
type ackedRecord struct {
	offset int64
	value  string
}

// TestCrashKill9UnderLoad kills the broker with SIGKILL while producers write with acks=all, and
// checks after each restart that every acknowledged record is there, at the offset it was
// acknowledged with, in order, with no gap and no duplicate anywhere in the log.
//
// Rounds: THORSTREAM_CRASH_ROUNDS (default 3; `make crash` runs 10).
func TestCrashKill9UnderLoad(t *testing.T) {
	rounds := 3
	if v := os.Getenv("THORSTREAM_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("THORSTREAM_CRASH_ROUNDS=%q is not a positive number", v)
		}
		rounds = n
	}
	const (
		topic      = "crash"
		partitions = 3
	)
	// Segments below the 1 MiB minimum, so that the crash rounds cross many segment rolls.
	b := startBroker(t, t.TempDir(), "THORSTREAM_FSYNC=always", "THORSTREAM_INTERNAL_SEGMENT_BYTES=256KiB")
	admin := newClient(t, b.addr)
	if err := admin.CreateTopic(ctx(t, 30*time.Second), topic, partitions, 1, nil); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := make([][]ackedRecord, partitions) // per partition, in acknowledgement order
	total := 0
	for round := 0; round < rounds; round++ {
		c, err := client.New(client.Options{Brokers: []string{b.addr}, RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// No retries: a retried batch whose first attempt reached the disk would be a legitimate
		// duplicate, and this test asserts there are none.
		p := client.NewProducer(c, client.ProducerOptions{
			Acks: client.AcksAll, Retries: -1, Linger: time.Millisecond, DeliveryTimeout: 20 * time.Second,
		})
		var roundAcks atomic.Int64
		produceCtx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for part := int32(0); part < partitions; part++ {
			wg.Add(1)
			go func(part int32) {
				defer wg.Done()
				for i := 0; produceCtx.Err() == nil; i++ {
					rec := &client.Record{Topic: topic, Partition: part, Value: fmt.Appendf(nil, "round%d-p%d-%d", round, part, i)}
					p.Produce(produceCtx, rec, func(r *client.Record, err error) {
						if err != nil {
							return
						}
						mu.Lock()
						acked[r.Partition] = append(acked[r.Partition], ackedRecord{r.Offset, string(r.Value)})
						mu.Unlock()
						roundAcks.Add(1)
					})
				}
			}(part)
		}
		// Kill once a few thousand records of this round are acknowledged: the producers are
		// still writing at that moment.
		target := int64(3000 + 2000*round)
		deadline := time.Now().Add(2 * time.Minute)
		for roundAcks.Load() < target {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("round %d: only %d records acknowledged in two minutes:\n%s", round, roundAcks.Load(), b.output.String())
			}
			time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
		}
		b.kill()
		cancel()
		wg.Wait()
		closed := make(chan struct{})
		go func() { p.Close(); c.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: producer did not close within a minute after the broker died", round)
		}

		b.restart()
		mu.Lock()
		total = 0
		for _, recs := range acked {
			total += len(recs)
		}
		snapshot := make([][]ackedRecord, partitions)
		for i := range acked {
			snapshot[i] = append([]ackedRecord(nil), acked[i]...)
		}
		mu.Unlock()
		verifyLog(t, b.addr, topic, snapshot)
		t.Logf("round %d: killed after %d acknowledged records; %d acknowledged in all, all present", round, roundAcks.Load(), total)
	}
	if total == 0 {
		t.Fatal("no record was acknowledged")
	}
}

// verifyLog reads every partition from its start and checks the acknowledged records against it.
func verifyLog(t *testing.T, addr, topic string, acked [][]ackedRecord) {
	t.Helper()
	c := newClient(t, addr)
	for part := range acked {
		tp := client.TopicPartition{Topic: topic, Partition: int32(part)}
		end, err := c.ListOffsets(ctx(t, 30*time.Second), topic, int32(part), -1)
		if err != nil {
			t.Fatalf("partition %d: latest offset: %v", part, err)
		}
		stored := readPartition(t, c, tp, end)
		// No gap: offsets run 0, 1, 2, … up to the end.
		for i, r := range stored {
			if r.offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d: a gap in the log", part, i, r.offset)
			}
		}
		// No duplicate value anywhere.
		seen := make(map[string]int64, len(stored))
		for _, r := range stored {
			if prev, dup := seen[r.value]; dup {
				t.Fatalf("partition %d: %q stored twice, at %d and %d", part, r.value, prev, r.offset)
			}
			seen[r.value] = r.offset
		}
		// Every acknowledged record is at its acknowledged offset, and acknowledgements came in
		// offset order.
		last := int64(-1)
		for _, a := range acked[part] {
			if a.offset <= last {
				t.Fatalf("partition %d: acknowledged offsets out of order: %d after %d", part, a.offset, last)
			}
			last = a.offset
			if a.offset >= int64(len(stored)) {
				t.Fatalf("partition %d: acknowledged record %q at offset %d is missing: the log ends at %d", part, a.value, a.offset, len(stored))
			}
			if got := stored[a.offset].value; got != a.value {
				t.Fatalf("partition %d: offset %d holds %q, acknowledged %q", part, a.offset, got, a.value)
			}
		}
	}
}

// readPartition consumes tp from its start up to end.
func readPartition(t *testing.T, c *client.Client, tp client.TopicPartition, end int64) []ackedRecord {
	t.Helper()
	cons := client.NewConsumer(c, client.ConsumerOptions{FetchMaxWait: 100 * time.Millisecond})
	defer cons.Close()
	cons.Assign([]client.TopicPartition{tp})
	cons.Seek(tp, 0)
	var out []ackedRecord
	deadline := time.Now().Add(2 * time.Minute)
	for int64(len(out)) < end {
		if time.Now().After(deadline) {
			t.Fatalf("%v: read %d of %d records in two minutes", tp, len(out), end)
		}
		recs, err := cons.Poll(ctx(t, 30*time.Second))
		if err != nil {
			t.Fatalf("%v: poll: %v", tp, err)
		}
		for _, r := range recs {
			if r.Offset < end {
				out = append(out, ackedRecord{r.Offset, string(r.Value)})
			}
		}
	}
	return out
}
