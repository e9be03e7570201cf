package node_test

// Fault tests of replicated partitions (replication factor 3 on three nodes, min.insync.replicas
// 2): franz-go producers writing acks=all while leaders and followers are stopped, crashed,
// isolated, cut off or starved of messages; afterwards every record a producer was told was
// written is on every replica, once, in order, and the replicas are byte-identical.

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// A partition leader stopped cleanly while acks=all records stream in.
func TestReplicationLeaderStopUnderAcksAll(t *testing.T) {
	testReplicationLeaderDown(t, false)
}

// A partition leader killed (no controlled shutdown, its unsynced writes lost) while acks=all
// records stream in.
func TestReplicationLeaderCrashUnderAcksAll(t *testing.T) {
	testReplicationLeaderDown(t, true)
}

func testReplicationLeaderDown(t *testing.T, crash bool) {
	o := nodetest.Options{}
	if crash {
		o.CrashFS, o.CrashSeed = true, crashSeed(t, 7)
	}
	c := startReplCluster(t, o)
	const topic, parts = "r3-leader", 3
	createReplicated(t, c, 0, topic, parts)
	l := startLoad(t, c, topic, parts)
	l.waitAcked(c, 1000, wait)

	victim, epoch := leaderOf(t, c, 0, topic, 0)
	before := l.ackedIn(0)
	if crash {
		c.CrashNode(victim)
	} else {
		c.StopNode(victim)
	}
	start := time.Now()
	waitPartitions(t, c, topic, parts, wait, "a new leader of every partition the stopped node led", func(p int32, mp meta.Partition) bool {
		return mp.Leader != victim && (p != 0 || mp.LeaderEpoch > epoch)
	})
	t.Logf("leader %d of %s-0 (epoch %d) down; new leader %d after %s", victim, topic, epoch, partitionsOn(c, c.Running()[0], topic)[0].Leader, time.Since(start))
	// The stream goes on, on the moved partition too.
	l.waitAckedIn(c, 0, before+300, wait)
	l.stop(wait)
	verifyLoad(t, c, l, others(3, victim), wait)

	c.StartNode(victim)
	waitFullISR(t, c, topic, parts, wait)
	verifyLoad(t, c, l, others(3), wait)
}

// A partition leader syncing twice a second crashes and is restarted at once, before the
// cluster fences it. It lost an unsynced tail the followers still have, so it must take no write
// at the epoch it led before: it would write other batches at offsets and an epoch the followers
// already hold. Its registration moves the leadership on. A writer sends acks=1 records straight
// to it from the moment it restarts (they may be lost; none may be taken), and the load goes on
// acks=all. Afterwards the replicas are byte-identical and every acks=all record is there.
func TestReplicationLeaderCrashRestartsBeforeFenced(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{CrashFS: true, SessionTimeout: 5 * time.Second,
		Broker: func(o *cluster.Options) {
			o.Fsync = cluster.FsyncPolicy{Mode: cluster.FsyncInterval, Interval: 500 * time.Millisecond}
		}})
	const topic, parts = "r3-quick-restart", 1
	createReplicated(t, c, 0, topic, parts)
	l := startLoad(t, c, topic, parts)
	l.waitAcked(c, 1000, wait)
	victim, epoch := leaderOf(t, c, 0, topic, 0)
	r := replicaOn(c, victim, topic, 0)
	c.Eventually(wait, "the leader to have appended past its synced end", func() bool {
		return r.LogEndOffset() > r.Log().DurableEnd()
	})
	c.CrashNode(victim)
	t.Logf("leader %d crashed at epoch %d with its log at %d, synced to %d", victim, epoch, r.LogEndOffset(), r.Log().DurableEnd())
	if n := c.Node(others(3, victim)[0]).Broker.Snapshot().Node(victim); n == nil || n.Fenced {
		t.Fatalf("the crashed leader was fenced before its restart: %+v", n)
	}

	// The writer: acks=1 records straight to the restarted node, until it no longer leads.
	quit, done := make(chan struct{}), make(chan struct{})
	var taken []int64
	go func() {
		defer close(done)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()[victim]), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		var b batch.Builder
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			if n := c.Node(victim); n != nil {
				if ps := n.Broker.Snapshot().Topics[topic]; ps != nil && ps.Partitions[0].Leader != victim {
					return
				}
			}
			b.Reset()
			v := "w-" + strconv.Itoa(i)
			b.Append(nil, []byte(v), time.Now().UnixMilli(), nil)
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = 1, 3000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = slices.Clone(b.Finish())
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
			cancel()
			if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 && resp.Topics[0].Partitions[0].ErrorCode == 0 {
				taken = append(taken, resp.Topics[0].Partitions[0].BaseOffset)
			}
		}
	}()
	c.StartNode(victim)
	c.Eventually(wait, "the leadership to move off the restarted node", func() bool {
		ps := partitionsOn(c, victim, topic)
		return len(ps) == 1 && ps[0].Leader != victim && ps[0].LeaderEpoch > epoch
	})
	close(quit)
	<-done
	if len(taken) > 0 {
		t.Errorf("the restarted node, before its registration moved the leadership on, took %d writes at leader epoch %d, which it led before its crash, at offsets %d to %d",
			len(taken), epoch, taken[0], taken[len(taken)-1])
	}
	at := l.acks.Load()
	l.waitAcked(c, at+500, wait)
	l.stop(wait)
	// First the replicas in sync with the new leader, then the restarted one, back in the ISR.
	leader, _ := leaderOf(t, c, others(3, victim)[0], topic, 0)
	isr := partitionsOn(c, leader, topic)[0].ISR
	verifyLoad(t, c, l, isr, 10*time.Second)
	verifyLoad(t, c, l, others(3), 10*time.Second)
	waitFullISR(t, c, topic, parts, 10*time.Second)
}

// A follower killed: acks=all goes on with two of three in the ISR, the follower leaves it, and
// once restarted it catches up and rejoins.
func TestReplicationFollowerCrash(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{CrashFS: true, CrashSeed: crashSeed(t, 11)})
	const topic = "r3-follower"
	createReplicated(t, c, 0, topic, 1)
	leader, epoch := leaderOf(t, c, 0, topic, 0)
	victim := (leader + 1) % 3
	l := startLoad(t, c, topic, 1)
	l.waitAcked(c, 500, wait)

	c.CrashNode(victim)
	waitPartitions(t, c, topic, 1, wait, "the killed follower out of the ISR, the leader unchanged", func(_ int32, mp meta.Partition) bool {
		return mp.Leader == leader && mp.LeaderEpoch == epoch && sameSet(mp.ISR, others(3, victim))
	})
	at := l.acks.Load()
	l.waitAcked(c, at+1000, wait)

	c.StartNode(victim)
	waitFullISR(t, c, topic, 1, wait)
	l.stop(wait)
	verifyLoad(t, c, l, others(3), wait)
}

// leaderHistory records, from every running node's snapshot, which node led each partition of
// a topic at each leader epoch.
type leaderHistory struct {
	c     *nodetest.Cluster
	topic string
	quit  chan struct{}
	done  chan struct{}
	// seen[p][epoch] are the leaders some node's snapshot named at that epoch.
	seen map[int32]map[int32][]int32
}

func watchLeaders(c *nodetest.Cluster, topic string) *leaderHistory {
	h := &leaderHistory{c: c, topic: topic, quit: make(chan struct{}), done: make(chan struct{}), seen: map[int32]map[int32][]int32{}}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			for _, id := range c.Running() {
				for p, mp := range partitionsOn(c, id, topic) {
					if mp.Leader == meta.NoLeader {
						continue
					}
					byEpoch := h.seen[int32(p)]
					if byEpoch == nil {
						byEpoch = map[int32][]int32{}
						h.seen[int32(p)] = byEpoch
					}
					if !slices.Contains(byEpoch[mp.LeaderEpoch], mp.Leader) {
						byEpoch[mp.LeaderEpoch] = append(byEpoch[mp.LeaderEpoch], mp.Leader)
					}
				}
			}
			select {
			case <-h.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *leaderHistory) stop() map[int32]map[int32][]int32 {
	close(h.quit)
	<-h.done
	return h.seen
}

// A leader cut off from the majority: it acknowledges nothing acks=all that is lost, the
// majority elects a leader at a higher epoch, and after the cut heals the old leader's log
// drops what it wrote alone and every replica is byte-identical.
func TestReplicationIsolatedLeader(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{})
	const topic, parts = "r3-isolated", 3
	createReplicated(t, c, 0, topic, parts)
	hist := watchLeaders(c, topic)
	// The produce requests the isolated leader holds are answered REQUEST_TIMED_OUT after this
	// (franz-go then retries them on the new leader).
	l := startLoad(t, c, topic, parts, kgo.ProduceRequestTimeout(3*time.Second))
	l.waitAcked(c, 1000, wait)

	old, epoch := leaderOf(t, c, 0, topic, 0)
	majority := others(3, old)
	c.Faults.Isolate(old, 3)
	isolated := time.Now()
	var leader, newEpoch int32
	c.Eventually(wait, "the majority to elect a new leader of partition 0 at a higher epoch", func() bool {
		for _, id := range majority {
			ps := partitionsOn(c, id, topic)
			if len(ps) != parts || !slices.Contains(majority, ps[0].Leader) || ps[0].LeaderEpoch <= epoch {
				return false
			}
			leader, newEpoch = ps[0].Leader, ps[0].LeaderEpoch
		}
		return true
	})
	t.Logf("node %d isolated; node %d leads %s-0 at epoch %d (was %d) after %s", old, leader, topic, newEpoch, epoch, time.Since(isolated))
	before := l.ackedIn(0)
	l.waitAckedIn(c, 0, before+300, wait)

	// What the old leader wrote alone, past the point the new leader's epoch starts, must go.
	oldEnd := replicaOn(c, old, topic, 0).LogEndOffset()
	newStart := int64(-1)
	for _, e := range replicaOn(c, leader, topic, 0).Log().EpochEntries() {
		if e.Epoch == newEpoch {
			newStart = e.StartOffset
		}
	}
	if newStart < 0 {
		t.Fatalf("the new leader wrote nothing at epoch %d", newEpoch)
	}
	c.Faults.Heal()
	l.stop(wait)
	logs := verifyLoad(t, c, l, others(3), wait)
	diverged := replicaOn(c, old, topic, 0).Log().DivergedBytes()
	t.Logf("the old leader's log ended at %d, the new epoch starts at %d; it cut %d bytes", oldEnd, newStart, diverged)
	if oldEnd > newStart && diverged == 0 {
		t.Errorf("the old leader's log ran to %d past the new epoch's start %d, yet it cut nothing", oldEnd, newStart)
	}

	// One leader per epoch, and every batch written at an epoch some node saw a leader for.
	seen := hist.stop()
	for p, byEpoch := range seen {
		for e, ls := range byEpoch {
			if len(ls) != 1 {
				t.Errorf("%s-%d: epoch %d had leaders %v", topic, p, e, ls)
			}
		}
	}
	for p, bs := range logs {
		last := int32(-1)
		for _, b := range bs {
			e := b.header.PartitionLeaderEpoch
			if e < last {
				t.Errorf("%s-%d: a batch of epoch %d at %d after one of epoch %d", topic, p, e, b.header.BaseOffset, last)
			}
			last = e
			if len(seen[p][e]) == 0 {
				t.Errorf("%s-%d: a batch at %d of epoch %d, which no node saw a leader for (%v)", topic, p, b.header.BaseOffset, e, seen[p])
			}
		}
	}
}

// A fifth of the peer messages lost and the rest 10 ms late: acks=all produce still completes
// and the replicas converge.
func TestReplicationLossAndDelay(t *testing.T) {
	if testing.Short() {
		// make test runs it whole without the race detector; the race pass (-short) leaves out
		// its slowest cluster runs, whose code paths the other fault tests cover under it.
		t.Skip("slow under the race detector: run in full by make test's non-race pass")
	}
	c := startReplCluster(t, nodetest.Options{})
	const topic, parts = "r3-lossy", 3
	createReplicated(t, c, 0, topic, parts)
	c.Faults.Set(0.2, 10*time.Millisecond)
	l := startLoad(t, c, topic, parts)
	l.waitAcked(c, 100, wait)
	l.stop(wait)
	if l.failed != 0 {
		t.Errorf("%d records failed: %v", l.failed, l.errs)
	}
	verifyLoad(t, c, l, others(3), wait)
	c.Faults.Heal()
}

// A follower syncing once a second crashes and loses what it had not synced. Nothing the
// producer was told was written is lost: the high watermark never passed the follower's synced
// end. Restarted, it catches up.
func TestReplicationFollowerCrashLosesUnsyncedTail(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{CrashFS: true, Broker: func(o *cluster.Options) {
		o.Fsync = cluster.FsyncPolicy{Mode: cluster.FsyncInterval, Interval: time.Second}
	}})
	ctrl := c.Controller(wait)
	const topic = "r3-unsynced"
	createReplicated(t, c, ctrl, topic, 1)
	leader, _ := leaderOf(t, c, ctrl, topic, 0)
	victim := others(3, leader, ctrl)[0]
	if victim == leader {
		victim = others(3, leader)[0]
	}
	l := startLoad(t, c, topic, 1)
	l.waitAcked(c, 300, wait)

	r := replicaOn(c, victim, topic, 0)
	c.Eventually(wait, "the follower to have appended past its synced end", func() bool {
		return r.LogEndOffset() > r.Log().DurableEnd()
	})
	var ackedEnd int64
	for _, a := range l.ackedCopy()[0] {
		ackedEnd = max(ackedEnd, a.offset+1)
	}
	c.CrashNode(victim)
	durable, end := r.Log().DurableEnd(), r.LogEndOffset()
	t.Logf("follower %d crashed with its log at %d, synced to %d; acknowledged up to %d", victim, end, durable, ackedEnd)
	if durable >= end {
		t.Fatalf("the follower had synced everything (%d of %d) when it crashed", durable, end)
	}
	if ackedEnd > durable {
		t.Errorf("records up to %d were acknowledged, the follower in the ISR had synced up to %d only", ackedEnd, durable)
	}

	// Restarted cut off from everyone, it opens what survived the power loss.
	c.Faults.Isolate(victim, 3)
	c.StartNode(victim)
	var recovered int64
	c.Eventually(wait, "the restarted follower to open its replica", func() bool {
		r := replicaOn(c, victim, topic, 0)
		if r == nil {
			return false
		}
		recovered = r.LogEndOffset()
		return true
	})
	t.Logf("the follower restarted with its log at %d", recovered)
	if recovered != durable {
		t.Errorf("the follower restarted with its log at %d, it had synced up to %d", recovered, durable)
	}
	c.Faults.Heal()
	waitFullISR(t, c, topic, 1, wait)
	l.stop(wait)
	verifyLoad(t, c, l, others(3), wait)
}

// The whole cluster loses its power at once, every node syncing twice a second: restarted, the
// nodes agree on every partition's log, and everything the producer was told was written is
// there.
func TestReplicationClusterPowerLoss(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{CrashFS: true, CrashSeed: crashSeed(t, 5), Broker: func(o *cluster.Options) {
		o.Fsync = cluster.FsyncPolicy{Mode: cluster.FsyncInterval, Interval: 500 * time.Millisecond}
	}})
	const topic, parts = "r3-blackout", 3
	createReplicated(t, c, 0, topic, parts)
	l := startLoad(t, c, topic, parts)
	l.waitAcked(c, 1000, wait)
	var rs []*cluster.Replica
	for id := range int32(3) {
		for p := range int32(parts) {
			rs = append(rs, replicaOn(c, id, topic, p))
		}
	}
	c.CrashAll()
	at := l.acks.Load()
	unsynced := int64(0)
	for _, r := range rs {
		unsynced += r.LogEndOffset() - r.Log().DurableEnd()
	}
	t.Logf("%d records acknowledged; %d offsets appended but not synced on the replicas when the power went out", at, unsynced)
	for id := range int32(3) {
		c.StartNode(id)
	}
	c.Controller(wait)
	waitRegistered(t, c, 3)
	waitFullISR(t, c, topic, parts, wait)
	l.waitAcked(c, at+300, wait)
	l.stop(wait)
	verifyLoad(t, c, l, others(3), wait)
}

// rawProduce sends one batch of one record to topic-0 on node id with acks and returns the
// partition's error code.
func rawProduce(t *testing.T, c *nodetest.Cluster, id int32, topic string, acks int16) errcode.Code {
	t.Helper()
	required := kgo.AllISRAcks()
	if acks == 1 {
		required = kgo.LeaderAck()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()[id]), kgo.RequiredAcks(required), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatalf("metadata from node %d: %v", id, err)
	}
	var b batch.Builder
	b.Reset()
	b.Append(nil, []byte("raw"), time.Now().UnixMilli(), nil)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = slices.Clone(b.Finish())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		t.Fatalf("produce to node %d: %v", id, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce answer %+v", resp)
	}
	return errcode.Code(resp.Topics[0].Partitions[0].ErrorCode)
}

// With both followers of a partition stopped (five nodes, so the controller keeps its
// majority), acks=all is refused with NOT_ENOUGH_REPLICAS before anything is written, and
// acks=1 is still taken.
func TestReplicationMinInsyncReplicas(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{Nodes: 5})
	const topic = "r3-min-isr"
	createReplicated(t, c, 0, topic, 1)
	leader, _ := leaderOf(t, c, 0, topic, 0)
	replicas := partitionsOn(c, 0, topic)[0].Replicas
	if code := rawProduce(t, c, leader, topic, -1); code != errcode.None {
		t.Fatalf("acks=all with the full ISR: %v", code)
	}
	for _, id := range replicas {
		if id != leader {
			c.StopNode(id)
		}
	}
	c.Eventually(wait, "the ISR down to the leader", func() bool {
		ps := partitionsOn(c, leader, topic)
		return len(ps) == 1 && ps[0].Leader == leader && slices.Equal(ps[0].ISR, []int32{leader})
	})
	r := replicaOn(c, leader, topic, 0)
	end := r.LogEndOffset()
	if code := rawProduce(t, c, leader, topic, -1); code != errcode.NotEnoughReplicas {
		t.Errorf("acks=all with an ISR of one: %v, want NOT_ENOUGH_REPLICAS", code)
	}
	if got := r.LogEndOffset(); got != end {
		t.Errorf("the refused acks=all write moved the log end from %d to %d", end, got)
	}
	if code := rawProduce(t, c, leader, topic, 1); code != errcode.None {
		t.Errorf("acks=1 with an ISR of one: %v", code)
	}
	if got := r.LogEndOffset(); got != end+1 {
		t.Errorf("after the acks=1 write the log end is %d, want %d", got, end+1)
	}
}

// A follower cut off from its leader only (it still reaches the controller) leaves the ISR once
// it lags for replica.lag.time.max.ms; acks=all goes on; healed, it rejoins.
func TestReplicationISRShrinksOnLag(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{Broker: func(o *cluster.Options) { o.ReplicaLagMax = time.Second }})
	ctrl := c.Controller(wait)
	const topic, parts = "r3-lag", 3
	createReplicated(t, c, ctrl, topic, parts)
	p, leader := int32(-1), int32(-1)
	for i, mp := range partitionsOn(c, ctrl, topic) {
		if mp.Leader != ctrl {
			p, leader = int32(i), mp.Leader
			break
		}
	}
	if p < 0 {
		t.Fatalf("the controller %d leads every partition of %s", ctrl, topic)
	}
	follower := others(3, leader, ctrl)[0]
	l := startLoad(t, c, topic, parts)
	l.waitAcked(c, 500, wait)

	c.Faults.Cut(leader, follower)
	cut := time.Now()
	c.Eventually(10*time.Second, "the leader to drop the cut-off follower from the ISR", func() bool {
		for _, id := range c.Running() {
			ps := partitionsOn(c, id, topic)
			if len(ps) != parts || ps[p].Leader != leader || !sameSet(ps[p].ISR, []int32{leader, ctrl}) {
				return false
			}
		}
		return true
	})
	t.Logf("follower %d cut off from leader %d of %s-%d; out of the ISR after %s", follower, leader, topic, p, time.Since(cut))
	if n := c.Node(ctrl).Broker.Snapshot().Node(follower); n == nil || n.Fenced {
		t.Errorf("the follower, still in touch with the controller, was fenced: %+v", n)
	}
	before := l.ackedIn(p)
	l.waitAckedIn(c, p, before+300, wait)

	c.Faults.Heal()
	waitFullISR(t, c, topic, parts, wait)
	l.stop(wait)
	verifyLoad(t, c, l, others(3), wait)
}

// javaHash is Java's String.hashCode of an ASCII string, as Kafka places a group on an offsets
// partition.
func javaHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		h = 31*h + int32(s[i])
	}
	return h
}

// A group's commits outlive the leader of its offsets partition: read through another node
// after it stopped, they are all there.
func TestReplicationOffsetsSurviveCoordinatorStop(t *testing.T) {
	c := startReplCluster(t, nodetest.Options{})
	const topic, group, records = "r3-commits", "replicated-group", 100
	createReplicated(t, c, 0, topic, 1)
	var offsetParts int
	c.Eventually(wait, "the offsets topic", func() bool {
		offsetParts = len(partitionsOn(c, 0, groups.OffsetsTopic))
		return offsetParts > 0
	})
	waitFullISR(t, c, groups.OffsetsTopic, offsetParts, wait)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pr, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for i := range records {
		rs = append(rs, &kgo.Record{Value: []byte{byte(i)}})
	}
	if err := pr.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	pr.Close()

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < records; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, records, err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("committing: %v", err)
	}
	cons.Close()

	h := javaHash(group)
	if h < 0 {
		h = -h
	}
	op := h % int32(offsetParts)
	coord, _ := leaderOf(t, c, 0, groups.OffsetsTopic, op)
	via := (coord + 1) % 3
	committed := func() (int64, error) {
		adm, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()[via]))
		if err != nil {
			return -1, err
		}
		defer adm.Close()
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		offs, err := kadm.NewClient(adm).FetchOffsets(actx, group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return -1, err
		}
		o, ok := offs.Lookup(topic, 0)
		if !ok {
			return -1, nil
		}
		return o.At, nil
	}
	if at, err := committed(); err != nil || at != records {
		t.Fatalf("committed offset %d (%v) through node %d before the stop, want %d", at, err, via, records)
	}
	c.StopNode(coord)
	var at int64
	var lastErr error
	c.Eventually(wait, "the commits back through another node", func() bool {
		at, lastErr = committed()
		return lastErr == nil && at >= 0
	})
	if at != records {
		t.Errorf("committed offset %d through node %d after the leader of %s-%d (node %d) stopped, want %d", at, via, groups.OffsetsTopic, op, coord, records)
	}
	if l, _ := leaderOf(t, c, via, groups.OffsetsTopic, op); l == coord || l == meta.NoLeader {
		t.Errorf("%s-%d is led by %d after its leader %d stopped", groups.OffsetsTopic, op, l, coord)
	}
}
