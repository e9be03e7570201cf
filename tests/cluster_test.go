package tests

// End-to-end tests of a three-node cluster on loopback: three broker processes started as the
// README starts them, real Kafka clients (franz-go, kcat), kill -9 of the active controller and of
// another node, and a full restart. Each partition has one replica: a node that is down leaves its
// partitions without a leader until it returns.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterValue is record i's value in TestClusterThreeNodesFromTheReadme: random bytes of a
// size between 0 B and 10 KiB, most of them small; every 1000th around 64 KiB; one of 900 KiB.
func clusterValue(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x746872))
	var size int
	switch {
	case i == 0:
		size = 0
	case i == 1:
		size = 10 << 10
	case i == 15000:
		size = 900 << 10
	case i%1000 == 500:
		size = 64<<10 - 512 + r.IntN(1024)
	case r.IntN(5) == 0:
		size = r.IntN(10<<10 + 1)
	default:
		size = r.IntN(513)
	}
	v := make([]byte, size)
	var seed [32]byte
	copy(seed[:], strconv.Itoa(i))
	_, _ = rand.NewChaCha8(seed).Read(v)
	return v
}

// produceAll produces records with cl's settings and waits for every promise (three minutes at
// most), failing the test on any error; each record then has its partition and offset.
func produceAll(t *testing.T, cl *kgo.Client, records []*kgo.Record) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	c := ctx(t, 2*time.Minute)
	for _, r := range records {
		wg.Add(1)
		cl.Produce(c, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("record %q: %w", r.Key, err))
				mu.Unlock()
			}
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("produced records not acknowledged within three minutes")
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d records failed, the first: %v", len(errs), len(records), errs[0])
	}
}

// consumeAll reads from the start of the given partitions until want records arrived (at most
// two minutes), failing on any fetch error; it returns them by partition, in the order read.
func consumeAll(t *testing.T, seeds []string, topic string, partitions []int32, want int) map[int32][]*kgo.Record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for _, p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	defer cl.Close()
	c := ctx(t, 2*time.Minute)
	out := map[int32][]*kgo.Record{}
	got := 0
	for got < want {
		fetches := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the deadline", got, want, topic)
		}
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	if got != want {
		t.Fatalf("consumed %d records of %s, want %d", got, topic, want)
	}
	return out
}

// endOffsets are the partitions' log end offsets, asked of the cluster through seeds.
func endOffsets(t *testing.T, seeds []string, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	listed, err := adm.ListEndOffsets(ctx(t, 30*time.Second), topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// createClusterTopic creates a topic with RF 1 through kadm seeded with seeds.
func createClusterTopic(t *testing.T, seeds []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	r, err := adm.CreateTopic(ctx(t, 30*time.Second), partitions, 1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// waitLeaders waits until every node of nodes describes topic with partitions partitions, each
// with a leader, all nodes agreeing; it returns the leaders by partition.
func waitLeaders(t *testing.T, nodes []*clusterNode, topic string, partitions int) []int32 {
	t.Helper()
	var leaders []int32
	clusterWait(t, 30*time.Second, "every node to know the leaders of "+topic, func() (bool, string) {
		views, detail := viewsOf(nodes...)
		if views == nil {
			return false, detail
		}
		leaders = nil
		for i, v := range views {
			tv := v.topics[topic]
			if tv == nil || len(tv.parts) != partitions {
				return false, fmt.Sprintf("node %d: %s is %+v", nodes[i].id, topic, tv)
			}
			var ls []int32
			for _, p := range tv.parts {
				ls = append(ls, p.leader)
			}
			if slices.Contains(ls, -1) {
				return false, fmt.Sprintf("node %d: leaders %v", nodes[i].id, ls)
			}
			if leaders != nil && !slices.Equal(leaders, ls) {
				return false, fmt.Sprintf("leaders %v and %v", leaders, ls)
			}
			leaders = ls
		}
		return true, ""
	})
	return leaders
}

func TestClusterThreeNodesFromTheReadme(t *testing.T) {
	c := startCluster(t, 3, clusterOptions{readme: true})
	for _, n := range c.nodes {
		if st, err := os.Stat(n.dataDir); err != nil || !st.IsDir() {
			t.Fatalf("node %d: no data directory %s (./data/node-<id> by default): %v", n.id, n.dataDir, err)
		}
	}

	// Metadata from each node: the three brokers at their Kafka listeners (THORSTREAM_ADDR's
	// port + 100), the same controller and cluster id.
	want := wantBrokers(c.nodes...)
	views, detail := viewsOf(c.nodes...)
	if views == nil {
		t.Fatal(detail)
	}
	for i, v := range views {
		if !mapsEqual(v.brokers, want) {
			t.Errorf("node %d lists brokers %v, want %v", c.nodes[i].id, v.brokers, want)
		}
		if v.controller != views[0].controller || want[v.controller] == "" {
			t.Errorf("controllers %v", controllers(views))
		}
		if v.clusterID == "" || v.clusterID != views[0].clusterID {
			t.Errorf("node %d names cluster %q, node 0 %q", c.nodes[i].id, v.clusterID, views[0].clusterID)
		}
	}
	t.Logf("cluster %s, controller %d, brokers %v", views[0].clusterID, views[0].controller, views[0].brokers)

	// kcat sees the same three brokers.
	t.Run("kcat", func(t *testing.T) {
		kcat := os.Getenv("KCAT")
		if kcat == "" {
			kcat, _ = exec.LookPath("kcat")
		}
		if kcat == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("kcat is not on PATH (make test-deps installs it): the kcat -L check cannot run")
			}
			t.Skip("kcat is not on PATH (make test-deps installs it): the kcat -L check did not run")
		}
		cmd := exec.CommandContext(ctx(t, 60*time.Second), kcat, "-L", "-b", c.nodes[2].kafkaAddr, "-m", "30")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		var brokerLines []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "broker") {
				brokerLines = append(brokerLines, strings.TrimSpace(line))
			}
		}
		t.Logf("kcat -L: %s", strings.Join(brokerLines, "; "))
		if !strings.Contains(string(out), " 3 brokers:") {
			t.Errorf("kcat -L does not list 3 brokers:\n%s", out)
		}
		for id, addr := range want {
			if !strings.Contains(string(out), fmt.Sprintf("broker %d at %s", id, addr)) {
				t.Errorf("kcat -L does not list broker %d at %s:\n%s", id, addr, out)
			}
		}
		if !strings.Contains(string(out), fmt.Sprintf("broker %d at %s (controller)", views[0].controller, want[views[0].controller])) {
			t.Errorf("kcat -L does not name broker %d the controller:\n%s", views[0].controller, out)
		}
	})

	// A 6-partition topic created through one node: two leaders on each node.
	const topic = "readme-events"
	createClusterTopic(t, []string{c.nodes[0].kafkaAddr}, topic, 6)
	leaders := waitLeaders(t, c.nodes, topic, 6)
	perNode := map[int32]int{}
	for _, l := range leaders {
		perNode[l]++
	}
	if !mapsEqual(perNode, map[int32]int{0: 2, 1: 2, 2: 2}) {
		t.Fatalf("leaders %v: %v per node, want 2 on each", leaders, perNode)
	}

	// 30,000 records produced with franz-go's defaults through node 1 only.
	const n = 30000
	records := make([]*kgo.Record, n)
	var total int
	for i := range records {
		records[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%06d", i), Value: clusterValue(i)}
		total += len(records[i].Value)
	}
	start := time.Now()
	produceAll(t, newKafkaClient(t, c.nodes[1].kafkaAddr), records)
	t.Logf("produced %d records, %.1f MB of values, in %v", n, float64(total)/1e6, time.Since(start).Round(time.Millisecond))
	// Acknowledged, each record has its partition and offset; within a partition the offsets
	// follow the order of production (idempotent producer, 5 requests in flight).
	last := map[int32]int64{}
	count := map[int32]int64{}
	for i, r := range records {
		if l, ok := last[r.Partition]; ok && r.Offset <= l {
			t.Fatalf("record %d at %d/%d, after offset %d of an earlier record", i, r.Partition, r.Offset, l)
		}
		last[r.Partition] = r.Offset
		count[r.Partition]++
	}

	// Consumed through node 2: every record once, in order, byte-identical.
	start = time.Now()
	got := consumeAll(t, []string{c.nodes[2].kafkaAddr}, topic, []int32{0, 1, 2, 3, 4, 5}, n)
	t.Logf("consumed %d records in %v", n, time.Since(start).Round(time.Millisecond))
	seen := make([]bool, n)
	for p, rs := range got {
		for k, r := range rs {
			if r.Offset != int64(k) {
				t.Fatalf("partition %d: record %d read at offset %d", p, k, r.Offset)
			}
			i, err := strconv.Atoi(string(r.Key))
			if err != nil || i < 0 || i >= n {
				t.Fatalf("partition %d offset %d: key %q", p, r.Offset, r.Key)
			}
			if seen[i] {
				t.Fatalf("record %d read twice", i)
			}
			seen[i] = true
			w := records[i]
			if w.Partition != p || w.Offset != r.Offset {
				t.Fatalf("record %d acknowledged at %d/%d, read at %d/%d", i, w.Partition, w.Offset, p, r.Offset)
			}
			if !bytes.Equal(r.Value, w.Value) || r.Value == nil {
				t.Fatalf("record %d: value of %d bytes read back as %d different bytes", i, len(w.Value), len(r.Value))
			}
		}
	}
	ends := endOffsets(t, []string{c.nodes[0].kafkaAddr}, topic)
	for p, want := range count {
		if ends[p] != want {
			t.Errorf("partition %d ends at %d, want %d", p, ends[p], want)
		}
	}
	t.Logf("records per partition %v", count)
}

// topicCreator creates topics one after another through a kadm client seeded with every node,
// retrying a topic after a retriable error as Kafka clients do, until stopped.
type topicCreator struct {
	adm  *kadm.Client
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	acked   map[string]time.Time // topic -> when its creation was acknowledged
	tried   []string             // every name tried, acknowledged or not
	retries map[string]int       // retriable error -> times seen
	fatal   error
}

func startTopicCreator(t *testing.T, seeds []string, partitions int32) *topicCreator {
	cl := newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RetryTimeout(5*time.Second))
	tc := &topicCreator{adm: kadm.NewClient(cl), stop: make(chan struct{}), done: make(chan struct{}),
		acked: map[string]time.Time{}, retries: map[string]int{}}
	go tc.run(partitions)
	return tc
}

func (tc *topicCreator) run(partitions int32) {
	defer close(tc.done)
	for i := 0; ; i++ {
		select {
		case <-tc.stop:
			return
		default:
		}
		name := fmt.Sprintf("churn-%04d", i)
		tc.mu.Lock()
		tc.tried = append(tc.tried, name)
		tc.mu.Unlock()
		for attempt := 0; ; attempt++ {
			c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			r, err := tc.adm.CreateTopic(c, partitions, 1, nil, name)
			cancel()
			if err == nil {
				err = r.Err
			}
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				// Names are not reused: an earlier attempt, ours or one the client retried
				// itself after losing the connection to the old controller, was committed but
				// its answer lost. The topic exists.
				tc.mu.Lock()
				tc.acked[name] = time.Now()
				if err != nil {
					tc.retries["acknowledged as TOPIC_ALREADY_EXISTS"]++
				}
				tc.mu.Unlock()
				break
			}
			var ke *kerr.Error
			if errors.As(err, &ke) && !ke.Retriable {
				tc.mu.Lock()
				tc.fatal = fmt.Errorf("create %s (attempt %d): %w", name, attempt+1, err)
				tc.mu.Unlock()
				return
			}
			tc.mu.Lock()
			tc.retries[err.Error()]++
			tc.mu.Unlock()
			if attempt >= 200 {
				tc.mu.Lock()
				tc.fatal = fmt.Errorf("create %s: still failing after %d attempts: %w", name, attempt+1, err)
				tc.mu.Unlock()
				return
			}
			select { // the client's retry backoff
			case <-time.After(100 * time.Millisecond):
			case <-tc.stop:
				return
			}
		}
	}
}

// ackedSince counts the creations acknowledged after since.
func (tc *topicCreator) ackedSince(since time.Time) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	k := 0
	for _, at := range tc.acked {
		if at.After(since) {
			k++
		}
	}
	return k
}

func (tc *topicCreator) firstAckAfter(since time.Time) time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var first time.Time
	for _, at := range tc.acked {
		if at.After(since) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

func (tc *topicCreator) failed() error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.fatal
}

// finish stops the creator and waits for its last creation.
func (tc *topicCreator) finish(t *testing.T) {
	t.Helper()
	close(tc.stop)
	select {
	case <-tc.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the topic creator did not stop within a minute")
	}
}

func TestClusterControllerKill9WhileCreatingTopics(t *testing.T) {
	c := startCluster(t, 3, clusterOptions{})
	tc := startTopicCreator(t, kafkaAddrs(c.nodes...), 2)
	t.Cleanup(func() {
		select {
		case <-tc.stop:
		default:
			close(tc.stop)
		}
	})
	clusterWait(t, 60*time.Second, "creations before the kill", func() (bool, string) {
		if err := tc.failed(); err != nil {
			t.Fatal(err)
		}
		n := tc.ackedSince(time.Time{})
		return n >= 10, fmt.Sprintf("%d acknowledged", n)
	})

	controller := c.nodes[0].view().controller
	if controller < 0 {
		t.Fatal("no controller named before the kill")
	}
	victim := c.node(controller)
	survivors := c.others(victim)
	before := tc.ackedSince(time.Time{})
	killed := time.Now()
	victim.kill9()
	t.Logf("killed the controller, node %d (pid %d), after %d creations", victim.id, victim.pid(), before)

	// The survivors name a new controller, one of them.
	var newController int32
	elected := clusterWait(t, 20*time.Second, "a new controller", func() (bool, string) {
		views, detail := viewsOf(survivors...)
		if views == nil {
			return false, detail
		}
		newController = views[0].controller
		for _, v := range views {
			if v.controller != newController || v.controller < 0 || v.controller == victim.id {
				return false, fmt.Sprintf("survivors name controllers %v", controllers(views))
			}
		}
		return true, ""
	})
	t.Logf("new controller: node %d, named by both survivors %v after the kill", newController, elected.Round(time.Millisecond))
	electedAt := killed.Add(elected)

	// Creations go on.
	clusterWait(t, 30*time.Second, "creations after the new controller", func() (bool, string) {
		if err := tc.failed(); err != nil {
			t.Fatal(err)
		}
		n := tc.ackedSince(electedAt)
		return n >= 10, fmt.Sprintf("%d acknowledged since the election", n)
	})
	if first := tc.firstAckAfter(killed); !first.IsZero() {
		t.Logf("first creation acknowledged %v after the kill", first.Sub(killed).Round(time.Millisecond))
	}
	tc.finish(t)
	if err := tc.failed(); err != nil {
		t.Fatal(err)
	}
	tc.mu.Lock()
	acked := map[string]time.Time{}
	for k, v := range tc.acked {
		acked[k] = v
	}
	t.Logf("%d of %d topics acknowledged; retried errors: %v", len(acked), len(tc.tried), tc.retries)
	tc.mu.Unlock()

	// Every acknowledged topic exists on both survivors.
	missing := func(v *clusterView) []string {
		var out []string
		for name := range acked {
			if v.topics[name] == nil {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	clusterWait(t, 20*time.Second, "every acknowledged topic on the survivors", func() (bool, string) {
		views, detail := viewsOf(survivors...)
		if views == nil {
			return false, detail
		}
		for i, v := range views {
			if m := missing(v); len(m) > 0 {
				return false, fmt.Sprintf("node %d does not list %v", survivors[i].id, m)
			}
		}
		return true, ""
	})

	// The killed node comes back on its data: it lists the three brokers, knows every topic, and
	// its partitions lead again.
	restarted := time.Now()
	victim.start()
	rejoined := clusterWait(t, 60*time.Second, "the restarted node to rejoin", func() (bool, string) {
		v, err := viewOf(victim.kafkaAddr)
		if err != nil {
			return false, err.Error()
		}
		if !mapsEqual(v.brokers, wantBrokers(c.nodes...)) {
			return false, fmt.Sprintf("it lists brokers %v", v.brokers)
		}
		if m := missing(v); len(m) > 0 {
			return false, fmt.Sprintf("it does not know %d topics: %v", len(m), m[:min(len(m), 10)])
		}
		return true, ""
	})
	t.Logf("the restarted node rejoined %v after it answered Ping, %v after its process started", rejoined.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	clusterWait(t, 30*time.Second, "every partition with a leader", func() (bool, string) {
		views, detail := viewsOf(c.nodes...)
		if views == nil {
			return false, detail
		}
		for i, v := range views {
			if l := v.leaderless(); len(l) > 0 {
				return false, fmt.Sprintf("node %d: %d partitions without a leader: %v", c.nodes[i].id, len(l), l[:min(len(l), 10)])
			}
		}
		led := 0
		for _, tv := range views[0].topics {
			for _, p := range tv.parts {
				if p.leader == victim.id {
					led++
				}
			}
		}
		if led == 0 {
			return false, fmt.Sprintf("node %d leads no partition", victim.id)
		}
		return true, ""
	})
}

func TestClusterNodeFencedAndReturning(t *testing.T) {
	c := startCluster(t, 3, clusterOptions{})
	all := kafkaAddrs(c.nodes...)
	const topic = "fenced"
	createClusterTopic(t, all, topic, 6)
	leaders := waitLeaders(t, c.nodes, topic, 6)

	// 40 records in each partition.
	want := map[int32][][]byte{}
	produce := func(seeds []string, partitions []int32, prefix string, n int) {
		t.Helper()
		var recs []*kgo.Record
		for _, p := range partitions {
			for i := range n {
				v := fmt.Appendf(nil, "%s p%d r%d", prefix, p, i)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: v})
				want[p] = append(want[p], v)
			}
		}
		cl := newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		defer cl.Close()
		produceAll(t, cl, recs)
	}
	produce(all, []int32{0, 1, 2, 3, 4, 5}, "before", 40)

	controller := c.nodes[0].view().controller
	victim := c.node((controller + 1) % 3)
	survivors := c.others(victim)
	var lost, live []int32
	for p, l := range leaders {
		if l == victim.id {
			lost = append(lost, int32(p))
		} else {
			live = append(live, int32(p))
		}
	}
	killed := time.Now()
	victim.kill9()
	t.Logf("killed node %d (not the controller, node %d), the leader of partitions %v", victim.id, controller, lost)

	// Fenced: the survivors no longer list it, its partitions have no leader.
	fenced := clusterWait(t, 10*time.Second, "the killed node fenced", func() (bool, string) {
		views, detail := viewsOf(survivors...)
		if views == nil {
			return false, detail
		}
		for i, v := range views {
			if _, ok := v.brokers[victim.id]; ok {
				return false, fmt.Sprintf("node %d still lists node %d", survivors[i].id, victim.id)
			}
			tv := v.topics[topic]
			if tv == nil {
				return false, fmt.Sprintf("node %d does not list %s", survivors[i].id, topic)
			}
			for p, pv := range tv.parts {
				wantLeader, wantCode := leaders[p], int16(0)
				if slices.Contains(lost, int32(p)) {
					wantLeader, wantCode = -1, kerr.LeaderNotAvailable.Code
				}
				if pv.leader != wantLeader || pv.code != wantCode {
					return false, fmt.Sprintf("node %d: partition %d leader %d error %d", survivors[i].id, p, pv.leader, pv.code)
				}
			}
		}
		return true, ""
	})
	t.Logf("node %d fenced, its partitions without a leader, %v after the kill", victim.id, fenced.Round(time.Millisecond))
	if fenced > 5*time.Second {
		t.Logf("fencing took more than 5 s (session timeout 2 s) on this machine")
	}

	// Produce to a partition without a leader fails retriably on either survivor.
	for _, s := range survivors {
		conn := dialKafka(t, s.kafkaAddr)
		req := produceRequest(topic, lost[0], kafkaBatch(3, 0, -1, -1, -1))
		req.Version = 11
		resp := conn.do(req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("produce response %+v", resp)
		}
		code := resp.Topics[0].Partitions[0].ErrorCode
		ke := kerr.TypedErrorForCode(code)
		if ke == nil || !ke.Retriable {
			t.Fatalf("produce to %s/%d through node %d: error %d (%v), want a retriable error", topic, lost[0], s.id, code, ke)
		}
		if code != kerr.LeaderNotAvailable.Code && code != kerr.NotLeaderForPartition.Code {
			t.Errorf("produce to %s/%d through node %d: %v, want LEADER_NOT_AVAILABLE or NOT_LEADER_OR_FOLLOWER", topic, lost[0], s.id, ke)
		}
		t.Logf("produce to %s/%d through node %d: %v", topic, lost[0], s.id, ke.Message)
	}
	// The partitions of the live nodes take records.
	produce(kafkaAddrs(survivors...), live, "while-down", 25)

	// Back: its partitions lead again, with the records they had.
	victim.start()
	back := clusterWait(t, 30*time.Second, "the node's partitions to lead again", func() (bool, string) {
		views, detail := viewsOf(c.nodes...)
		if views == nil {
			return false, detail
		}
		for i, v := range views {
			if !mapsEqual(v.brokers, wantBrokers(c.nodes...)) {
				return false, fmt.Sprintf("node %d lists brokers %v", c.nodes[i].id, v.brokers)
			}
			for p, pv := range v.topics[topic].parts {
				if pv.leader != leaders[p] || pv.code != 0 {
					return false, fmt.Sprintf("node %d: partition %d leader %d error %d", c.nodes[i].id, p, pv.leader, pv.code)
				}
			}
		}
		return true, ""
	})
	t.Logf("node %d leads its partitions again %v after its start, %v after the kill", victim.id, back.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	total := 0
	for _, vs := range want {
		total += len(vs)
	}
	got := consumeAll(t, all, topic, []int32{0, 1, 2, 3, 4, 5}, total)
	for p, vs := range want {
		rs := got[p]
		if len(rs) != len(vs) {
			t.Fatalf("partition %d: %d records, want %d", p, len(rs), len(vs))
		}
		for k, r := range rs {
			if r.Offset != int64(k) || !bytes.Equal(r.Value, vs[k]) {
				t.Fatalf("partition %d record %d: offset %d value %q, want %q", p, k, r.Offset, r.Value, vs[k])
			}
		}
	}
	ends := endOffsets(t, all, topic)
	for p, vs := range want {
		if ends[p] != int64(len(vs)) {
			t.Errorf("partition %d ends at %d, want %d", p, ends[p], len(vs))
		}
	}
}

func TestClusterFullRestart(t *testing.T) {
	c := startCluster(t, 3, clusterOptions{})
	all := kafkaAddrs(c.nodes...)
	topics := map[string]int{"restart-a": 6, "restart-b": 3}
	var recs []*kgo.Record
	for name, parts := range topics {
		createClusterTopic(t, all, name, int32(parts))
		waitLeaders(t, c.nodes, name, parts)
		for i := range 1500 {
			recs = append(recs, &kgo.Record{Topic: name, Key: fmt.Appendf(nil, "%s-%d", name, i), Value: clusterValue(i % 700)})
		}
	}
	produceAll(t, newKafkaClient(t, all[0], kgo.SeedBrokers(all...)), recs)

	// What every node says before: the same view on all three.
	agreed := func(also func(v *clusterView) string) *clusterView {
		t.Helper()
		var v0 *clusterView
		clusterWait(t, 60*time.Second, "every node to agree on the metadata", func() (bool, string) {
			views, detail := viewsOf(c.nodes...)
			if views == nil {
				return false, detail
			}
			for i, v := range views {
				if !mapsEqual(v.brokers, wantBrokers(c.nodes...)) {
					return false, fmt.Sprintf("node %d lists brokers %v", c.nodes[i].id, v.brokers)
				}
				if l := v.leaderless(); len(l) > 0 {
					return false, fmt.Sprintf("node %d: partitions without a leader %v", c.nodes[i].id, l)
				}
				if d := diffViews(views[0], v, false); d != "" {
					return false, fmt.Sprintf("nodes %d and %d differ: %s", c.nodes[0].id, c.nodes[i].id, d)
				}
			}
			if d := also(views[0]); d != "" {
				return false, d
			}
			v0 = views[0]
			return true, ""
		})
		return v0
	}
	before := agreed(func(*clusterView) string { return "" })
	if before.version != 12 {
		t.Fatalf("Metadata v%d, want v12", before.version)
	}
	clusterIDBefore := describeClusterID(t, c.nodes[1])
	if clusterIDBefore != before.clusterID || clusterIDBefore == "" {
		t.Fatalf("DescribeCluster names cluster %q, Metadata %q", clusterIDBefore, before.clusterID)
	}

	start := time.Now()
	for _, n := range c.nodes {
		n.stop()
	}
	t.Logf("stopped the three nodes with SIGTERM in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, n := range c.nodes {
		n.start()
	}
	c.waitFormed(c.nodes...)
	// Each node registers anew, which bumps the leader epoch of the partitions it leads
	// (docs/REPLICATION.md, Register: its log may have lost an unsynced tail): epochs grow, never
	// go back, and have all grown once every node has registered.
	after := agreed(func(v *clusterView) string {
		for name, tb := range before.topics {
			ta := v.topics[name]
			if ta == nil || len(ta.parts) != len(tb.parts) {
				return fmt.Sprintf("topic %s: %+v", name, ta)
			}
			for p := range tb.parts {
				if ta.parts[p].epoch < tb.parts[p].epoch {
					t.Fatalf("%s/%d: leader epoch %d after the restart, %d before", name, p, ta.parts[p].epoch, tb.parts[p].epoch)
				}
				if ta.parts[p].epoch == tb.parts[p].epoch {
					return fmt.Sprintf("%s/%d: leader epoch still %d (its leader, node %d, has not registered again)", name, p, ta.parts[p].epoch, ta.parts[p].leader)
				}
			}
		}
		return ""
	})
	t.Logf("the cluster is back, every node registered again and every partition led, %v after the first start", time.Since(start).Round(time.Millisecond))

	if after.clusterID != before.clusterID {
		t.Errorf("cluster id %q after the restart, %q before", after.clusterID, before.clusterID)
	}
	if id := describeClusterID(t, c.nodes[2]); id != before.clusterID {
		t.Errorf("DescribeCluster names cluster %q after the restart, %q before", id, before.clusterID)
	}
	if d := diffViews(before, after, true); d != "" {
		t.Errorf("the metadata changed across the restart: %s", d)
	}
	for name := range topics {
		t.Logf("%s: leader epochs %v before, %v after", name, epochs(before.topics[name]), epochs(after.topics[name]))
	}

	// Every record, in order, from each topic.
	for name, parts := range topics {
		var ps []int32
		for p := range parts {
			ps = append(ps, int32(p))
		}
		var sent []*kgo.Record
		perPart := map[int32][]*kgo.Record{}
		for _, r := range recs {
			if r.Topic == name {
				sent = append(sent, r)
				perPart[r.Partition] = append(perPart[r.Partition], r)
			}
		}
		got := consumeAll(t, kafkaAddrs(c.nodes[2]), name, ps, len(sent))
		for p, ws := range perPart {
			slices.SortFunc(ws, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
			if len(got[p]) != len(ws) {
				t.Fatalf("%s/%d: %d records after the restart, want %d", name, p, len(got[p]), len(ws))
			}
			for k, r := range got[p] {
				w := ws[k]
				if r.Offset != w.Offset || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) {
					t.Fatalf("%s/%d offset %d: key %q (%d bytes), want offset %d key %q (%d bytes)", name, p, r.Offset, r.Key, len(r.Value), w.Offset, w.Key, len(w.Value))
				}
			}
		}
	}
}

// describeClusterID asks the node itself for DescribeCluster's cluster id.
func describeClusterID(t *testing.T, n *clusterNode) string {
	t.Helper()
	resp, err := kafkaRequestTo(n.kafkaAddr, kmsg.NewPtrDescribeClusterRequest(), 10*time.Second)
	if err != nil {
		t.Fatalf("DescribeCluster from node %d: %v", n.id, err)
	}
	r := resp.(*kmsg.DescribeClusterResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("DescribeCluster from node %d: %v", n.id, kerr.ErrorForCode(r.ErrorCode))
	}
	return r.ClusterID
}

func epochs(tv *topicView) []int32 {
	var out []int32
	for _, p := range tv.parts {
		out = append(out, p.epoch)
	}
	return out
}

// diffViews says how b's cluster id, topics, topic ids, partitions, leaders and replicas differ
// from a's, and unless ignoreEpochs also their leader epochs; "" when they do not.
func diffViews(a, b *clusterView, ignoreEpochs bool) string {
	if a.clusterID != b.clusterID {
		return fmt.Sprintf("cluster %q and %q", a.clusterID, b.clusterID)
	}
	var names []string
	for name := range a.topics {
		names = append(names, name)
	}
	for name := range b.topics {
		if a.topics[name] == nil {
			return fmt.Sprintf("topic %s only in one", name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		ta, tb := a.topics[name], b.topics[name]
		switch {
		case tb == nil:
			return fmt.Sprintf("topic %s only in one", name)
		case ta.id != tb.id:
			return fmt.Sprintf("topic %s: ids %x and %x", name, ta.id, tb.id)
		case ta.internal != tb.internal || ta.code != tb.code:
			return fmt.Sprintf("topic %s: internal %v/%v, error %d/%d", name, ta.internal, tb.internal, ta.code, tb.code)
		case len(ta.parts) != len(tb.parts):
			return fmt.Sprintf("topic %s: %d and %d partitions", name, len(ta.parts), len(tb.parts))
		}
		for p := range ta.parts {
			pa, pb := ta.parts[p], tb.parts[p]
			// A replicated partition's leadership may move to another of its replicas (a
			// controlled shutdown hands it on); a single replica leads its partition again.
			leaderMoved := pa.leader != pb.leader && (len(pa.replicas) == 1 || !slices.Contains(pa.replicas, pb.leader))
			if leaderMoved || pa.code != pb.code || !slices.Equal(pa.replicas, pb.replicas) || (!ignoreEpochs && pa.epoch != pb.epoch) {
				return fmt.Sprintf("%s/%d: %+v and %+v", name, p, pa, pb)
			}
		}
	}
	return ""
}
