// Package groups holds benchmarks of the group coordinator through the Kafka listener: offset
// commit throughput (one group; 1,000 groups) and the time a group of 3 members takes to
// rebalance to 4. The broker runs in the test process (bench.Start: the cluster, the
// coordinator over __consumer_offsets, the reactor with 2 event loops), so allocations are the
// broker's and the clients' together. The figures and how to read them are in
// docs/BENCHMARKS.md ("Consumer groups").
package groups

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/bench"
	"github.com/thorstream/thorstream/cluster"
)

const (
	// commitPartitions is how many partitions one OffsetCommit carries (a consumer commits
	// every partition it owns at once).
	commitPartitions = 6
	// rebalancePartitions is the partition count of the topic the rebalancing members consume.
	rebalancePartitions = 12
	stepTimeout         = 2 * time.Minute
)

func startBroker(tb testing.TB, policy cluster.FsyncPolicy) *bench.Broker {
	tb.Helper()
	br, err := bench.Start(bench.Options{DataDir: tb.TempDir(), Fsync: policy, Kafka: true})
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

func newClient(tb testing.TB, br *bench.Broker, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(br.KafkaAddr), kgo.ClientID("thorstream-bench")}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// commitRequest is a simple commit (generation -1, no member: a consumer outside group
// management, or an admin tool) of offset for commitPartitions partitions of topic.
func commitRequest(group, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p := range int32(commitPartitions) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return req
}

func commit(ctx context.Context, cl *kgo.Client, group, topic string, offset int64) error {
	resp, err := commitRequest(group, topic, offset).RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return fmt.Errorf("%s %s/%d: %w", group, rt.Topic, rp.Partition, err)
			}
		}
	}
	return nil
}

// commitN sends n commits, inflight at a time, spread round-robin over groups (commit i at
// offset base+i), and returns the first error. With latencies, it records each commit's time.
func commitN(ctx context.Context, cl *kgo.Client, groups []string, topic string, n, inflight int, base int64, latencies []time.Duration) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				start := time.Now()
				if err := commit(ctx, cl, groups[i%int64(len(groups))], topic, base+i); err != nil {
					errs <- err
					return
				}
				if latencies != nil {
					latencies[i] = time.Since(start)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func groupNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench-group-%04d", i)
	}
	return out
}

func createTopic(tb testing.TB, br *bench.Broker, name string, partitions int32) {
	tb.Helper()
	if err := br.CreateTopic(name, partitions); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkGroupCommit is OffsetCommit throughput: b.N simple commits of 6 partitions each,
// 1, 16 or 256 in flight from one franz-go client (each committer sends its next commit when
// the last is answered), to one group or round-robin over 1,000 (spread over the offsets
// topic's partitions and so over the coordinator's shards). Every group has committed once
// before the timer starts. One op is one commit, answered once durable; p50-ms and p99-ms are
// the commits' latencies.
func BenchmarkGroupCommit(b *testing.B) {
	for _, policy := range []cluster.FsyncPolicy{{Mode: cluster.FsyncAlways}, {Mode: cluster.FsyncInterval, Interval: 5 * time.Millisecond}} {
		for _, n := range []int{1, 1000} {
			for _, inflight := range []int{1, 16, 256} {
				b.Run(fmt.Sprintf("fsync=%s/groups=%d/inflight=%d", policy, n, inflight), func(b *testing.B) { benchmarkGroupCommit(b, policy, n, inflight) })
			}
		}
	}
}

func benchmarkGroupCommit(b *testing.B, policy cluster.FsyncPolicy, n, inflight int) {
	br := startBroker(b, policy)
	const topic = "commits"
	createTopic(b, br, topic, commitPartitions)
	cl := newClient(b, br)
	groups := groupNames(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*stepTimeout)
	defer cancel()
	if err := commitN(ctx, cl, groups, topic, n, min(n, 16), 0, nil); err != nil { // every group exists, connections are up
		b.Fatal(err)
	}
	latencies := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := commitN(ctx, cl, groups, topic, b.N, inflight, int64(n), latencies); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
	b.ReportMetric(float64(b.N*commitPartitions)/elapsed.Seconds(), "partitions/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// rebalanceWatch follows the members' assignments through their callbacks.
type rebalanceWatch struct {
	mu      sync.Mutex
	owned   map[string]map[int32]bool
	gen     map[string]int32
	changed chan struct{}
}

func newRebalanceWatch() *rebalanceWatch {
	return &rebalanceWatch{owned: map[string]map[int32]bool{}, gen: map[string]int32{}, changed: make(chan struct{}, 1)}
}

func (w *rebalanceWatch) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *rebalanceWatch) assigned(name string, cl *kgo.Client, parts map[string][]int32) {
	_, gen := cl.GroupMetadata()
	w.mu.Lock()
	if w.owned[name] == nil {
		w.owned[name] = map[int32]bool{}
	}
	for _, ps := range parts {
		for _, p := range ps {
			w.owned[name][p] = true
		}
	}
	w.gen[name] = gen
	w.mu.Unlock()
	w.notify()
}

func (w *rebalanceWatch) revoked(name string, parts map[string][]int32) {
	w.mu.Lock()
	for _, ps := range parts {
		for _, p := range ps {
			delete(w.owned[name], p)
		}
	}
	w.mu.Unlock()
	w.notify()
}

func (w *rebalanceWatch) forget(name string) {
	w.mu.Lock()
	delete(w.owned, name)
	delete(w.gen, name)
	w.mu.Unlock()
	w.notify()
}

// balanced reports whether exactly names hold every partition, each some, none twice, all in
// one generation.
func (w *rebalanceWatch) balanced(names []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[int32]bool{}
	gen := int32(-1)
	for name, owned := range w.owned {
		if len(owned) > 0 && !slices.Contains(names, name) {
			return false
		}
	}
	for _, name := range names {
		if len(w.owned[name]) == 0 || (gen >= 0 && w.gen[name] != gen) {
			return false
		}
		gen = w.gen[name]
		for p := range w.owned[name] {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == rebalancePartitions
}

// wait blocks until cond holds (checked at each callback), or fails after stepTimeout.
func (w *rebalanceWatch) wait(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(stepTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-w.changed:
		case <-deadline.C:
			w.mu.Lock()
			defer w.mu.Unlock()
			tb.Fatalf("%s: not within %v (owned %v)", what, stepTimeout, w.owned)
		}
	}
}

func startMember(tb testing.TB, br *bench.Broker, w *rebalanceWatch, group, topic, name string, balancer kgo.GroupBalancer, heartbeat time.Duration) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(br.KafkaAddr), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.HeartbeatInterval(heartbeat),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, parts map[string][]int32) { w.assigned(name, cl, parts) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { w.revoked(name, parts) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { w.revoked(name, parts) }),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return cl
}

// BenchmarkGroupRebalance is the time a stable group of 3 franz-go members over a 12-partition
// topic takes to take in a fourth: from the fourth client's creation until the 4 members hold
// every partition in one generation (their OnPartitionsAssigned callbacks). Eager range (one
// rebalance: the others hear of it at their next heartbeat, revoke everything and rejoin) and
// cooperative-sticky (two: the first revokes what moves, the second assigns it), with
// franz-go's default heartbeat interval (3 s) and a short one (100 ms), which bounds how soon
// the existing members learn of the rebalance. Between ops, untimed, the fourth member leaves
// and the group settles back to 3. One op is one 3 → 4 rebalance.
func BenchmarkGroupRebalance(b *testing.B) {
	for _, bal := range []struct {
		name string
		b    func() kgo.GroupBalancer
	}{{"range", kgo.RangeBalancer}, {"cooperative-sticky", kgo.CooperativeStickyBalancer}} {
		for _, hb := range []time.Duration{100 * time.Millisecond, 3 * time.Second} {
			b.Run(fmt.Sprintf("protocol=%s/heartbeat=%v", bal.name, hb), func(b *testing.B) { benchmarkGroupRebalance(b, bal.b, hb) })
		}
	}
}

func benchmarkGroupRebalance(b *testing.B, balancer func() kgo.GroupBalancer, heartbeat time.Duration) {
	br := startBroker(b, cluster.FsyncPolicy{Mode: cluster.FsyncAlways})
	const topic, group = "rebalance", "rebalance"
	createTopic(b, br, topic, rebalancePartitions)
	w := newRebalanceWatch()
	three := []string{"m0", "m1", "m2"}
	for _, name := range three {
		cl := startMember(b, br, w, group, topic, name, balancer(), heartbeat)
		b.Cleanup(cl.Close)
	}
	w.wait(b, "3 members balanced", func() bool { return w.balanced(three) })
	four := append(slices.Clone(three), "m3")
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		cl := startMember(b, br, w, group, topic, "m3", balancer(), heartbeat)
		w.wait(b, "4 members balanced", func() bool { return w.balanced(four) })
		total += time.Since(start)
		b.StopTimer()
		cl.Close() // leaves the group
		w.forget("m3")
		w.wait(b, "back to 3 members", func() bool { return w.balanced(three) })
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/rebalance")
}

// TestHarness checks in a second or two what the benchmarks rely on, so that `go test` without
// -bench keeps them from rotting: commits to 1,000 groups are read back, and a 3 → 4 rebalance
// completes.
func TestHarness(t *testing.T) {
	br := startBroker(t, cluster.FsyncPolicy{Mode: cluster.FsyncAlways})
	const topic = "harness"
	createTopic(t, br, topic, commitPartitions)
	cl := newClient(t, br)
	groups := groupNames(1000)
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	for _, base := range []int64{0, 1000} {
		if err := commitN(ctx, cl, groups, topic, len(groups), 16, base, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 999} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = groups[i]
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1000 + i) // the second round's
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != commitPartitions || resp.Topics[0].Partitions[0].Offset != want {
			t.Fatalf("group %s: %+v, want offset %d", groups[i], resp.Topics, want)
		}
	}

	createTopic(t, br, "rebalance", rebalancePartitions)
	w := newRebalanceWatch()
	var names []string
	for i := range 4 {
		name := fmt.Sprintf("m%d", i)
		names = append(names, name)
		m := startMember(t, br, w, "harness", "rebalance", name, kgo.CooperativeStickyBalancer(), 100*time.Millisecond)
		t.Cleanup(m.Close)
		w.wait(t, fmt.Sprintf("%d members balanced", i+1), func() bool { return w.balanced(names) })
	}
}
