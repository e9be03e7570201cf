package node_test

// Helpers of the replication fault tests: a numbered acks=all load through franz-go that keeps
// what it was told was written, and the checks of every replica read directly off each node's
// broker (byte-identical logs, acknowledged records present exactly once and in order).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// startReplCluster starts a cluster and waits for its controller and every node's registration.
// THORSTREAM_TEST_VERBOSE=1 logs every node to the test log.
func startReplCluster(t *testing.T, o nodetest.Options) *nodetest.Cluster {
	t.Helper()
	if os.Getenv("THORSTREAM_TEST_VERBOSE") != "" {
		o.Verbose = true
	}
	c := nodetest.Start(t, o)
	n := o.Nodes
	if n == 0 {
		n = 3
	}
	// The test's end kills the nodes: a clean stop of the last node waits for a controller that
	// has no majority left.
	t.Cleanup(c.CrashAll)
	c.Controller(wait)
	waitRegistered(t, c, n)
	return c
}

// crashSeed is the power losses' seed of a test: def, or THORSTREAM_CRASH_SEED when set (to
// replay or vary the writes a crash keeps).
func crashSeed(t *testing.T, def uint64) uint64 {
	t.Helper()
	if v := os.Getenv("THORSTREAM_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("THORSTREAM_CRASH_SEED=%q: %v", v, err)
		}
		def = s
	}
	t.Logf("crash seed %d", def)
	return def
}

// partitionsOn is topic's partition metadata as node id's snapshot has it (nil: none yet).
func partitionsOn(c *nodetest.Cluster, id int32, topic string) []meta.Partition {
	n := c.Node(id)
	if n == nil {
		return nil
	}
	tp := n.Broker.Snapshot().Topics[topic]
	if tp == nil {
		return nil
	}
	return tp.Partitions
}

// replicaOn is node id's replica of topic-p (nil: not hosted, not open, or the node is down).
func replicaOn(c *nodetest.Cluster, id int32, topic string, p int32) *cluster.Replica {
	n := c.Node(id)
	if n == nil {
		return nil
	}
	tp := n.Broker.Snapshot().Topics[topic]
	if tp == nil || int(p) >= len(tp.Replicas) {
		return nil
	}
	return tp.Replicas[p]
}

// sameSet reports whether a and b hold the same node ids.
func sameSet(a, b []int32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// waitPartitions waits until every running node's snapshot of topic has parts partitions, each
// with a leader and cond true of it.
func waitPartitions(t *testing.T, c *nodetest.Cluster, topic string, parts int, timeout time.Duration, what string, cond func(p int32, mp meta.Partition) bool) {
	t.Helper()
	c.Eventually(timeout, what, func() bool {
		for _, id := range c.Running() {
			ps := partitionsOn(c, id, topic)
			if len(ps) != parts {
				return false
			}
			for p, mp := range ps {
				if mp.Leader == meta.NoLeader || !cond(int32(p), mp) {
					return false
				}
			}
		}
		return true
	})
}

// waitFullISR waits until every partition of topic has every replica in its ISR, on every
// running node.
func waitFullISR(t *testing.T, c *nodetest.Cluster, topic string, parts int, timeout time.Duration) {
	t.Helper()
	waitPartitions(t, c, topic, parts, timeout, "every replica of "+topic+" in its ISR", func(_ int32, mp meta.Partition) bool {
		return len(mp.Replicas) == 3 && sameSet(mp.ISR, mp.Replicas)
	})
}

// createReplicated creates an RF 3 topic (its name starts with "r3") and waits for its full ISR.
func createReplicated(t *testing.T, c *nodetest.Cluster, via int32, name string, parts int32) {
	t.Helper()
	if rfOf(name) != 3 {
		t.Fatalf("%s is not a replicated topic's name", name)
	}
	createTopic(t, c, via, name, parts)
	waitFullISR(t, c, name, int(parts), wait)
}

// leaderOf is topic-p's leader and leader epoch as node via's snapshot has them.
func leaderOf(t *testing.T, c *nodetest.Cluster, via int32, topic string, p int32) (int32, int32) {
	t.Helper()
	ps := partitionsOn(c, via, topic)
	if int(p) >= len(ps) {
		t.Fatalf("node %d does not know %s-%d", via, topic, p)
	}
	return ps[p].Leader, ps[p].LeaderEpoch
}

// --- The load ---

// ackedRecord is a record the producer was told was written.
type ackedRecord struct {
	offset int64
	value  string
}

// load produces numbered records ("n-<number>", partition number % parts) to topic through
// every node's Kafka listener with franz-go's idempotent producer, keeping at most inflight
// unanswered, until stopped.
type load struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	parts int32

	ctx    context.Context
	cancel context.CancelFunc
	quit   chan struct{}
	done   chan struct{}

	acks   atomic.Int64 // records answered without an error
	mu     sync.Mutex
	acked  map[int32][]ackedRecord // by partition, in the order they were answered
	errs   map[string]int          // error text -> records it failed
	failed int
}

func startLoad(t *testing.T, c *nodetest.Cluster, topic string, parts int32, opts ...kgo.Opt) *load {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.KafkaAddrs()...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l := &load{t: t, cl: cl, topic: topic, parts: parts, quit: make(chan struct{}), done: make(chan struct{}),
		acked: map[int32][]ackedRecord{}, errs: map[string]int{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		l.cancel()
		select {
		case <-l.quit:
		default:
			close(l.quit)
		}
		<-l.done
		cl.Close()
	})
	go l.run(200)
	return l
}

// run produces until quit, two records a millisecond at most (a steady stream, not a flood: the
// logs stay small enough to compare byte for byte).
func (l *load) run(inflight int) {
	defer close(l.done)
	sem := make(chan struct{}, inflight)
	pace := time.NewTicker(time.Millisecond)
	defer pace.Stop()
	for n := 0; ; n++ {
		if n%2 == 0 {
			select {
			case <-l.quit:
				return
			case <-pace.C:
			}
		}
		select {
		case <-l.quit:
			return
		case sem <- struct{}{}:
		}
		r := &kgo.Record{Partition: int32(n) % l.parts, Value: []byte("n-" + strconv.Itoa(n))}
		l.cl.Produce(l.ctx, r, func(r *kgo.Record, err error) {
			l.mu.Lock()
			if err == nil {
				l.acked[r.Partition] = append(l.acked[r.Partition], ackedRecord{r.Offset, string(r.Value)})
			} else {
				l.failed++
				l.errs[err.Error()]++
			}
			l.mu.Unlock()
			if err == nil {
				l.acks.Add(1)
			}
			<-sem
		})
	}
}

// ackedIn is how many records of partition p were answered without an error.
func (l *load) ackedIn(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked[p])
}

// waitAckedIn waits until at least n records of partition p were answered without an error.
func (l *load) waitAckedIn(c *nodetest.Cluster, p int32, n int, timeout time.Duration) {
	l.t.Helper()
	c.Eventually(timeout, fmt.Sprintf("%d records of %s-%d acknowledged", n, l.topic, p), func() bool { return l.ackedIn(p) >= n })
}

// waitAcked waits until at least n records were answered without an error.
func (l *load) waitAcked(c *nodetest.Cluster, n int64, timeout time.Duration) {
	l.t.Helper()
	c.Eventually(timeout, fmt.Sprintf("%d records of %s acknowledged", n, l.topic), func() bool { return l.acks.Load() >= n })
}

// stop stops producing and waits for every record given to the client to be answered.
func (l *load) stop(timeout time.Duration) {
	l.t.Helper()
	close(l.quit)
	<-l.done
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		l.t.Fatalf("the producer's records still unanswered after %s: %v", timeout, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s: %d records acknowledged, %d failed %v", l.topic, l.acks.Load(), l.failed, l.errs)
}

// ackedCopy is what the producer was told was written, by partition.
func (l *load) ackedCopy() map[int32][]ackedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32][]ackedRecord{}
	for p, rs := range l.acked {
		out[p] = slices.Clone(rs)
	}
	return out
}

// --- Reading replicas ---

// storedBatch is one batch of a replica's log.
type storedBatch struct {
	header batch.Header
	values []string
	// offsets are the records' offsets, parallel to values.
	offsets []int64
}

// logBytes reads the replica's log from its start to its end as a follower would (every
// batch, up to the log end), and the log end it read to.
func logBytes(r *cluster.Replica) ([]byte, int64, error) {
	off, end := r.LogStartOffset(), r.LogEndOffset()
	var out []byte
	for off < end {
		b, err := r.ReadForFollower(nil, off, 1<<20)
		if err != nil {
			return nil, 0, fmt.Errorf("reading at %d: %w", off, err)
		}
		next := off
		for len(b) > 0 {
			n, err := batch.Size(b)
			if err != nil || n > len(b) {
				break
			}
			h, err := batch.ParseHeader(b)
			if err != nil {
				return nil, 0, fmt.Errorf("batch at %d: %w", next, err)
			}
			if h.NextOffset() > off {
				out = append(out, b[:n]...)
				next = h.NextOffset()
			}
			b = b[n:]
		}
		if next == off {
			return nil, 0, fmt.Errorf("no batch read at %d (log end %d)", off, end)
		}
		off = next
	}
	return out, end, nil
}

// committedBatches decodes the replica's log below its high watermark (Replica.Read, what a
// consumer can read).
func committedBatches(r *cluster.Replica) ([]storedBatch, error) {
	off, hw := r.LogStartOffset(), r.HighWatermark()
	var out []storedBatch
	for off < hw {
		b, err := r.Read(nil, off, 1<<20, true)
		if err != nil {
			return nil, fmt.Errorf("reading at %d: %w", off, err)
		}
		next := off
		err = batch.Split(b, func(raw []byte) error {
			h, err := batch.ParseHeader(raw)
			if err != nil {
				return err
			}
			if h.NextOffset() <= next {
				return nil
			}
			sb := storedBatch{header: h}
			if err := batch.Records(raw, func(rec *batch.Record) error {
				sb.values = append(sb.values, string(rec.Value))
				sb.offsets = append(sb.offsets, rec.Offset)
				return nil
			}); err != nil {
				return fmt.Errorf("records of the batch at %d: %w", h.BaseOffset, err)
			}
			out = append(out, sb)
			next = h.NextOffset()
			return nil
		})
		if err != nil {
			return nil, err
		}
		if next == off {
			return nil, fmt.Errorf("no batch read at %d (high watermark %d)", off, hw)
		}
		off = next
	}
	return out, nil
}

// waitConverged waits until, for every partition of topic, the replicas on nodes all have the
// same log start and end, a high watermark at the log end, and byte-identical logs; it returns
// the (common) committed batches by partition.
func waitConverged(t *testing.T, c *nodetest.Cluster, topic string, parts int32, nodes []int32, timeout time.Duration) map[int32][]storedBatch {
	t.Helper()
	status := ""
	deadline := time.Now().Add(timeout)
	for p := range parts {
		for {
			ok, why := converged(c, topic, p, nodes)
			if ok {
				break
			}
			status = why
			if time.Now().After(deadline) {
				t.Fatalf("after %s: the replicas of %s-%d on nodes %v never converged: %s", timeout, topic, p, nodes, status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	out := map[int32][]storedBatch{}
	for p := range parts {
		bs, err := committedBatches(replicaOn(c, nodes[0], topic, p))
		if err != nil {
			t.Fatalf("%s-%d on node %d: %v", topic, p, nodes[0], err)
		}
		out[p] = bs
	}
	return out
}

// firstDifference describes the first batch where logs a and b differ.
func firstDifference(a, b []byte) string {
	describe := func(log []byte, pos int) string {
		if pos >= len(log) {
			return "nothing"
		}
		h, err := batch.ParseHeader(log[pos:])
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("a batch of offsets %d-%d at epoch %d", h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch)
	}
	pos := 0
	for pos < len(a) && pos < len(b) {
		na, errA := batch.Size(a[pos:])
		nb, errB := batch.Size(b[pos:])
		if errA != nil || errB != nil || na != nb || !bytes.Equal(a[pos:pos+na], b[pos:pos+nb]) {
			break
		}
		pos += na
	}
	return fmt.Sprintf("after %d equal bytes, %s against %s", pos, describe(a, pos), describe(b, pos))
}

// converged checks one partition's replicas on nodes; why says what differs.
func converged(c *nodetest.Cluster, topic string, p int32, nodes []int32) (bool, string) {
	var ref []byte
	var state []string
	rs := make([]*cluster.Replica, len(nodes))
	for i, id := range nodes {
		r := replicaOn(c, id, topic, p)
		if r == nil {
			return false, fmt.Sprintf("node %d has no replica", id)
		}
		rs[i] = r
		state = append(state, fmt.Sprintf("node %d: start %d hw %d end %d", id, r.LogStartOffset(), r.HighWatermark(), r.LogEndOffset()))
	}
	var start, end int64 = -1, -1
	for i, r := range rs {
		if r.HighWatermark() != r.LogEndOffset() || (i > 0 && (r.LogStartOffset() != start || r.LogEndOffset() != end)) {
			return false, strings.Join(state, "; ")
		}
		start, end = r.LogStartOffset(), r.LogEndOffset()
	}
	for i, r := range rs {
		id := nodes[i]
		b, readEnd, err := logBytes(r)
		if err != nil || readEnd != end {
			return false, fmt.Sprintf("node %d: read to %d, %v", id, readEnd, err)
		}
		if ref == nil {
			ref = b
		} else if !bytes.Equal(ref, b) {
			return false, fmt.Sprintf("node %d's log differs from node %d's: %s; %s", id, nodes[0], firstDifference(ref, b), strings.Join(state, "; "))
		}
	}
	return true, ""
}

// checkAcked checks the converged logs against what the producers were told: every
// acknowledged record is at the offset it was acknowledged at, no record is in a log twice, and
// each partition holds each writer's records ("<writer>-<number>") in the order they were
// produced. It returns how many
// acknowledged records it found.
func checkAcked(t *testing.T, topic string, logs map[int32][]storedBatch, acked map[int32][]ackedRecord) int {
	t.Helper()
	found := 0
	for p, bs := range logs {
		at := map[int64]string{}
		seen := map[string]int64{}
		last := map[string]int{} // by writer: the number of its last record
		for _, b := range bs {
			for i, v := range b.values {
				off := b.offsets[i]
				if prev, dup := seen[v]; dup {
					t.Errorf("%s-%d: %s at offsets %d and %d", topic, p, v, prev, off)
				}
				seen[v] = off
				at[off] = v
				writer, num, _ := strings.Cut(v, "-")
				n, err := strconv.Atoi(num)
				if err != nil {
					t.Errorf("%s-%d: a record %q at %d no test writer wrote", topic, p, v, off)
					continue
				}
				if prev, ok := last[writer]; ok && n <= prev {
					t.Errorf("%s-%d: %s at %d after %s-%d: out of the order produced", topic, p, v, off, writer, prev)
				}
				last[writer] = n
			}
		}
		for _, a := range acked[p] {
			if got, ok := at[a.offset]; !ok || got != a.value {
				t.Errorf("%s-%d: %s was acknowledged at offset %d, the log has %q there (found: %v)", topic, p, a.value, a.offset, got, ok)
				continue
			}
			found++
		}
	}
	for p := range acked {
		if _, ok := logs[p]; !ok && len(acked[p]) > 0 {
			t.Errorf("%s-%d: %d records acknowledged, no log checked", topic, p, len(acked[p]))
		}
	}
	return found
}

// verifyLoad waits for topic's replicas on nodes to converge and checks what the load was told
// was written against them.
func verifyLoad(t *testing.T, c *nodetest.Cluster, l *load, nodes []int32, timeout time.Duration) map[int32][]storedBatch {
	t.Helper()
	logs := waitConverged(t, c, l.topic, l.parts, nodes, timeout)
	acked := l.ackedCopy()
	total := 0
	for _, rs := range acked {
		total += len(rs)
	}
	found := checkAcked(t, l.topic, logs, acked)
	t.Logf("%s: %d acknowledged records on every replica of nodes %v", l.topic, found, nodes)
	if total == 0 {
		t.Errorf("%s: nothing was acknowledged", l.topic)
	}
	return logs
}

// others are the node ids of a cluster of n other than skip.
func others(n int, skip ...int32) []int32 {
	var ids []int32
	for i := range int32(n) {
		if !slices.Contains(skip, i) {
			ids = append(ids, i)
		}
	}
	return ids
}
