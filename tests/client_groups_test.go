package tests

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/client"
)

// groupReader is one Go consumer of a group, polling on its own goroutine as an application
// does: it handles each Poll's records, then commits its positions, then polls again.
type groupReader struct {
	name string
	cons *client.Consumer
	done chan struct{}

	mu    sync.Mutex
	reads []groupRead
	// uncommitted is what it read since its last successful commit: what a new owner of its
	// partitions may read again.
	uncommitted map[client.TopicPartition][]int64
	err         error
}

type groupRead struct {
	tp     client.TopicPartition
	offset int64
	reader string
}

func startGroupReader(t *testing.T, ctx context.Context, addr, name string, opts client.ConsumerOptions, topic string) *groupReader {
	c, err := client.New(client.Options{Brokers: []string{addr}, ClientID: name, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &groupReader{name: name, cons: client.NewConsumer(c, opts), done: make(chan struct{}), uncommitted: map[client.TopicPartition][]int64{}}
	r.cons.Subscribe(topic)
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			recs, err := r.cons.Poll(ctx)
			if err != nil {
				if !errors.Is(err, client.ErrClosed) && ctx.Err() == nil {
					r.fail(fmt.Errorf("%s: Poll: %w", name, err))
				}
				return
			}
			r.mu.Lock()
			for _, rec := range recs {
				tp := client.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
				r.reads = append(r.reads, groupRead{tp, rec.Offset, name})
				r.uncommitted[tp] = append(r.uncommitted[tp], rec.Offset)
			}
			r.mu.Unlock()
			if len(recs) == 0 {
				continue
			}
			if err := r.cons.Commit(ctx); err != nil {
				if errors.Is(err, client.ErrClosed) || ctx.Err() != nil {
					return
				}
				// A commit refused because the group rebalances: the next Poll rejoins, and
				// the records stay uncommitted (a new owner may read them again).
				continue
			}
			r.mu.Lock()
			r.uncommitted = map[client.TopicPartition][]int64{}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		r.cons.Close()
		<-r.done
	})
	return r
}

func (r *groupReader) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *groupReader) snapshot() (reads []groupRead, uncommitted map[client.TopicPartition][]int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	uncommitted = make(map[client.TopicPartition][]int64, len(r.uncommitted))
	for tp, offs := range r.uncommitted {
		uncommitted[tp] = append([]int64(nil), offs...)
	}
	return append([]groupRead(nil), r.reads...), uncommitted, r.err
}

// shareOf reports whether the readers' assignments split partitions partitions between them,
// every reader having some, no partition twice.
func shareOf(partitions int, rs ...*groupReader) bool {
	seen := map[client.TopicPartition]bool{}
	for _, r := range rs {
		a := r.cons.Assignment()
		if len(a) == 0 {
			return false
		}
		for _, tp := range a {
			if seen[tp] {
				return false
			}
			seen[tp] = true
		}
	}
	return len(seen) == partitions
}

// waitUntil polls cond until it holds, for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, rs ...*groupReader) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		for _, r := range rs {
			if _, _, err := r.snapshot(); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// TestGoConsumerGroup: three Go consumers of one group (the binary protocol's group membership)
// share a six-partition topic two partitions each; the group's description shows them with
// Kafka's consumer protocol. One closes while records keep coming: it leaves the group, the two
// others take its partitions over before its session could have expired, and resume them at its
// last commit. Every record is read; a record is read twice only if the consumer that closed
// had read it without committing it.
func TestGoConsumerGroup(t *testing.T) {
	b := startBroker(t, t.TempDir(), "THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS=0")
	admin := newClient(t, b.addr)
	const topic, partitions, perRound = "group-orders", 6, 300
	if err := admin.CreateTopic(ctx(t, 30*time.Second), topic, partitions, 1, nil); err != nil {
		t.Fatal(err)
	}
	p := client.NewProducer(admin, client.ProducerOptions{})
	defer p.Close()
	produced := 0
	produce := func(n int) {
		t.Helper()
		recs := make([]*client.Record, n)
		for i := range recs {
			recs[i] = &client.Record{Topic: topic, Partition: int32((produced + i) % partitions), Value: fmt.Appendf(nil, "order-%d", produced+i)}
		}
		if err := p.ProduceSync(ctx(t, 30*time.Second), recs...); err != nil {
			t.Fatal(err)
		}
		produced += n
	}
	produce(perRound)

	const session = 10 * time.Second // heartbeats every 3.3 s
	testCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := client.ConsumerOptions{Group: "billing", ResetOffset: client.ResetEarliest, SessionTimeout: session,
		FetchMaxWait: 200 * time.Millisecond}
	rs := []*groupReader{
		startGroupReader(t, testCtx, b.addr, "reader-1", opts, topic),
		startGroupReader(t, testCtx, b.addr, "reader-2", opts, topic),
		startGroupReader(t, testCtx, b.addr, "reader-3", opts, topic),
	}
	readCount := func(rs ...*groupReader) int {
		n := 0
		for _, r := range rs {
			reads, _, _ := r.snapshot()
			n += len(reads)
		}
		return n
	}
	waitUntil(t, time.Minute, "three consumers sharing six partitions", func() bool {
		if !shareOf(partitions, rs...) {
			return false
		}
		for _, r := range rs {
			if len(r.cons.Assignment()) != 2 {
				return false
			}
		}
		return true
	}, rs...)

	desc, err := admin.DescribeGroup(ctx(t, 30*time.Second), "billing")
	if err != nil {
		t.Fatal(err)
	}
	if desc.State != "Stable" || desc.ProtocolType != "consumer" || desc.Protocol != "range" || len(desc.Members) != 3 {
		t.Fatalf("group description %+v", desc)
	}
	assigned := map[int32]string{}
	for _, m := range desc.Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.Assignment); err != nil || len(a.Topics) != 1 || a.Topics[0].Topic != topic || len(a.Topics[0].Partitions) != 2 {
			t.Fatalf("member %s (client %s, host %s): assignment %+v, %v", m.MemberID, m.ClientID, m.ClientHost, a, err)
		}
		var s kmsg.ConsumerMemberMetadata
		if err := s.ReadFrom(m.Metadata); err != nil || len(s.Topics) != 1 || s.Topics[0] != topic {
			t.Fatalf("member %s: subscription %+v, %v", m.MemberID, s, err)
		}
		if m.ClientHost != "/127.0.0.1" {
			t.Errorf("member %s: client host %q", m.MemberID, m.ClientHost)
		}
		for _, p := range a.Topics[0].Partitions {
			assigned[p] = m.ClientID
		}
	}
	if len(assigned) != partitions {
		t.Fatalf("assignments cover %v", assigned)
	}

	// More records while the third consumer closes: it leaves with a batch possibly read and
	// not committed.
	waitUntil(t, time.Minute, "the first records read", func() bool { return readCount(rs...) >= perRound/2 }, rs...)
	closing := rs[2]
	left := closing.cons.Assignment()
	produce(perRound)
	start := time.Now()
	if err := closing.cons.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-closing.done
	rs = rs[:2]
	waitUntil(t, time.Minute, "two consumers sharing the six partitions", func() bool {
		return shareOf(partitions, rs...) && len(rs[0].cons.Assignment()) == 3
	}, rs...)
	if d := time.Since(start); d >= session {
		t.Fatalf("the takeover took %v: the session expired rather than the member leaving", d)
	}
	produce(perRound)
	everything := func() bool { return readCount(rs[0], rs[1], closing) >= produced }
	waitUntil(t, 2*time.Minute, "every record read", everything, rs...)

	// Every record read; duplicates only of what the closed consumer had not committed.
	_, notCommitted, _ := closing.snapshot()
	seen := map[client.TopicPartition]map[int64][]string{}
	for _, r := range []*groupReader{rs[0], rs[1], closing} {
		reads, _, err := r.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, rd := range reads {
			if seen[rd.tp] == nil {
				seen[rd.tp] = map[int64][]string{}
			}
			seen[rd.tp][rd.offset] = append(seen[rd.tp][rd.offset], rd.reader)
		}
	}
	perPartition := int64(produced / partitions)
	duplicates := 0
	for p := int32(0); p < partitions; p++ {
		tp := client.TopicPartition{Topic: topic, Partition: p}
		for off := int64(0); off < perPartition; off++ {
			readers := seen[tp][off]
			switch {
			case len(readers) == 0:
				t.Fatalf("%v offset %d was never read", tp, off)
			case len(readers) == 1:
			case len(readers) == 2 && (readers[0] == closing.name) != (readers[1] == closing.name) && contains64(notCommitted[tp], off):
				duplicates++
			default:
				t.Fatalf("%v offset %d read by %v (the closed consumer had not committed %v)", tp, off, readers, notCommitted[tp])
			}
		}
		if n := int64(len(seen[tp])); n != perPartition {
			t.Fatalf("%v: %d distinct offsets read, %d produced", tp, n, perPartition)
		}
	}
	owned := map[client.TopicPartition]bool{}
	for _, tp := range left {
		owned[tp] = true
	}
	for tp := range notCommitted {
		if !owned[tp] {
			t.Errorf("the closed consumer read %v, which it was not assigned", tp)
		}
	}
	t.Logf("%d records, %d read again after the close (of %d the closed consumer had not committed)", produced, duplicates, countAll(notCommitted))

	// The commits are the log ends: the two consumers committed everything.
	waitUntil(t, time.Minute, "commits at the log ends", func() bool {
		committed, err := admin.FetchAllCommitted(ctx(t, 30*time.Second), "billing")
		if err != nil {
			return false
		}
		for p := int32(0); p < partitions; p++ {
			if committed[client.TopicPartition{Topic: topic, Partition: p}] != perPartition {
				return false
			}
		}
		return true
	}, rs...)
}

func contains64(xs []int64, x int64) bool {
	i := sort.Search(len(xs), func(i int) bool { return xs[i] >= x })
	return i < len(xs) && xs[i] == x
}

func countAll(m map[client.TopicPartition][]int64) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
