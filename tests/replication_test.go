package tests

// End-to-end tests of replicated partitions: three broker processes on loopback, topics with
// replication factor 3 (min.insync.replicas 2), franz-go producers at their defaults
// (idempotent, acks=all), a partition leader killed with SIGKILL or cut off from its peers by a
// proxy on every peer link. Nothing acknowledged may be lost or duplicated, and once every
// replica is back in sync the three copies of each partition are the same bytes on disk.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterSessionTimeout is the brokers' THORSTREAM_CLUSTER_SESSION_TIMEOUT_MS default.
const clusterSessionTimeout = 2 * time.Second

// createReplicatedTopic creates a topic with parts partitions and replication factor rf through
// kadm seeded with seeds.
func createReplicatedTopic(t *testing.T, seeds []string, topic string, parts int32, rf int16) {
	t.Helper()
	adm := kadm.NewClient(newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	r, err := adm.CreateTopic(ctx(t, 30*time.Second), parts, rf, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("create %s (%d partitions, replication factor %d): %v", topic, parts, rf, err)
	}
}

// waitAcks waits until sp has more than n records acknowledged.
func waitAcks(t *testing.T, sp *seqProducer, n int, limit time.Duration) {
	t.Helper()
	clusterWait(t, limit, fmt.Sprintf("producer %s: more than %d records acknowledged", sp.name, n), func() (bool, string) {
		k := sp.acks()
		return k > n, fmt.Sprintf("%d acknowledged, failures %s", k, sp.failures())
	})
}

func TestReplicationLeaderKill9UnderLoad(t *testing.T) {
	const (
		topic = "repl-kill9"
		parts = 3
	)
	c := startCluster(t, 3, clusterOptions{})
	all := kafkaAddrs(c.nodes...)
	createReplicatedTopic(t, all, topic, parts, 3)
	waitFullISR(t, c, topic, parts, 30*time.Second)

	start := time.Now()
	sp := startSeqProducer(t, "load", topic, parts, all, time.Millisecond, 256)
	waitAcks(t, sp, 100, 30*time.Second)
	time.Sleep(time.Until(start.Add(3 * time.Second))) // the load runs 3 s before the kill

	leader := leadersNow(t, c.nodes[0], topic)[0]
	victim := c.node(leader)
	survivors := c.others(victim)
	before := sp.acks()
	killed := time.Now()
	victim.kill9()
	gone := time.Now()
	t.Logf("killed node %d (pid %d), the leader of partition 0, after %d records acknowledged", victim.id, victim.pid(), before)

	elected, newLeader := waitNewLeaders(t, survivors, topic, []int32{0}, victim.id, killed, 30*time.Second)
	var firstAck time.Time
	clusterWait(t, 60*time.Second, "a record of partition 0 acknowledged after the kill", func() (bool, string) {
		firstAck = sp.firstAckAfter(0, gone)
		return !firstAck.IsZero(), fmt.Sprintf("%d records acknowledged, failures %s", sp.acks(), sp.failures())
	})
	t.Logf("failover of partition 0: node %d its leader in the survivors' Metadata %v after the kill; the producer's next acknowledged record of partition 0 %v after the kill",
		newLeader[0], elected.Round(time.Millisecond), firstAck.Sub(killed).Round(time.Millisecond))

	time.Sleep(time.Until(start.Add(10 * time.Second))) // the load runs 10 s in all
	sp.finish(60 * time.Second)
	logs := consumeToEnd(t, kafkaAddrs(survivors...), topic, parts)
	lc := verifyReplLog(t, logs, parts, []*seqProducer{sp}, nil)
	t.Logf("%d records in the log, %d acknowledged (all there, once, in order), %d failed but present; failures: %s",
		lc.records, lc.acked, lc.unackedPresent, sp.failures())

	restarted := time.Now()
	victim.start()
	back := waitFullISR(t, c, topic, parts, 60*time.Second)
	t.Logf("node %d back in every ISR %v after it answered Ping, %v after its start", victim.id, back.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))

	stopCaughtUp(t, c, topic, parts)
	sizes := compareReplicas(t, c, topic, parts)
	t.Logf("replicas byte-identical on the three nodes: log bytes by partition %v", sizes)
	if n := diverged(c, topic, parts); len(n) > 0 {
		t.Logf("cut by divergence: %v", n)
	}
}

func TestReplicationIsolatedLeaderLosesNothing(t *testing.T) {
	const (
		topic = "repl-isolated"
		parts = 3
		slack = 2 * time.Second
	)
	c, mesh := startProxiedCluster(t, 3, clusterOptions{})
	all := kafkaAddrs(c.nodes...)
	createReplicatedTopic(t, all, topic, parts, 3)
	waitFullISR(t, c, topic, parts, 30*time.Second)

	leader := c.node(leadersNow(t, c.nodes[0], topic)[0])
	others := c.others(leader)
	controller := c.nodes[0].view().controller
	direct := startSeqProducer(t, "direct", topic, parts, []string{leader.kafkaAddr}, 2*time.Millisecond, 128)
	through := startSeqProducer(t, "others", topic, parts, kafkaAddrs(others...), 2*time.Millisecond, 128)
	pr := startProber(t, leader.kafkaAddr, topic, 0, 100*time.Millisecond, 1500*time.Millisecond)
	waitAcks(t, direct, 50, 30*time.Second)
	waitAcks(t, through, 50, 30*time.Second)
	time.Sleep(2 * time.Second) // the load runs before the cut

	isolated := time.Now()
	mesh.isolate(leader.id, proxyStalled)
	t.Logf("blackholed every peer link of node %d, the leader of partition 0 (the controller is node %d)", leader.id, controller)

	failover, newLeader := waitNewLeaders(t, others, topic, []int32{0}, leader.id, isolated, 30*time.Second)
	t.Logf("the majority names node %d the leader of partition 0 %v after the cut", newLeader[0], failover.Round(time.Millisecond))
	var refused time.Time
	clusterWait(t, 20*time.Second, "the isolated leader answering produce NOT_LEADER_OR_FOLLOWER", func() (bool, string) {
		for _, r := range pr.all() {
			if r.err == nil && r.code == kerr.NotLeaderForPartition.Code && r.sent.After(isolated) {
				refused = r.answered
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d probes answered", len(pr.all()))
	})
	t.Logf("the isolated node refuses produce (NOT_LEADER_OR_FOLLOWER) %v after the cut", refused.Sub(isolated).Round(time.Millisecond))
	time.Sleep(time.Until(isolated.Add(5 * time.Second))) // the load runs on during the cut

	healed := time.Now()
	mesh.heal()
	pr.finish()
	t.Logf("healed %v after the cut", healed.Sub(isolated).Round(time.Millisecond))
	clusterWait(t, 30*time.Second, "records of every partition acknowledged after the heal", func() (bool, string) {
		for _, sp := range []*seqProducer{direct, through} {
			for p := range int32(parts) {
				if sp.firstAckAfter(p, healed.Add(time.Second)).IsZero() {
					return false, fmt.Sprintf("producer %s: none of partition %d yet; failures %s", sp.name, p, sp.failures())
				}
			}
		}
		return true, ""
	})
	direct.finish(60 * time.Second)
	through.finish(60 * time.Second)

	// The isolated node's answers: errors from a session timeout (plus slack) after the cut on.
	codes := map[string]int{}
	okAfterCut := 0
	for _, r := range pr.all() {
		if r.err == nil && r.code == 0 && r.answered.After(isolated) {
			okAfterCut++
		}
		what := "success"
		switch {
		case r.err != nil:
			what = "no answer: " + r.err.Error()
		case r.code != 0:
			what = kerr.ErrorForCode(r.code).Error()
		}
		codes[what]++
		if r.err != nil || r.code == 0 || !r.sent.After(isolated) {
			if r.err == nil && r.code == 0 && r.answered.After(isolated.Add(clusterSessionTimeout+slack)) {
				t.Errorf("probe %d sent %v after the cut was answered with success (offset %d) %v after the cut",
					r.n, r.sent.Sub(isolated).Round(time.Millisecond), r.offset, r.answered.Sub(isolated).Round(time.Millisecond))
			}
			continue
		}
		switch r.code {
		case kerr.NotLeaderForPartition.Code, kerr.RequestTimedOut.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code:
		default:
			t.Errorf("probe %d sent %v after the cut: %v", r.n, r.sent.Sub(isolated).Round(time.Millisecond), kerr.ErrorForCode(r.code))
		}
	}
	t.Logf("the isolated node's answers to %d probes: %v (%d successes answered after the cut)", len(pr.all()), codes, okAfterCut)
	if d := refused.Sub(isolated); d > clusterSessionTimeout+slack {
		t.Errorf("the isolated leader refused produce only %v after the cut, want within the session timeout %v + %v", d.Round(time.Millisecond), clusterSessionTimeout, slack)
	}

	waitFullISR(t, c, topic, parts, 60*time.Second)
	t.Logf("node %d back in every ISR %v after the heal", leader.id, time.Since(healed).Round(time.Millisecond))
	logs := consumeToEnd(t, all, topic, parts)
	lc := verifyReplLog(t, logs, parts, []*seqProducer{direct, through}, []*prober{pr})
	t.Logf("%d records in the log, %d acknowledged (all there, once, in order), %d failed but present, %d probes acknowledged (all there), %d probes present; failures: direct %s, others %s",
		lc.records, lc.acked, lc.unackedPresent, lc.probesOK, lc.probesPresent, direct.failures(), through.failures())
	if n := diverged(c, topic, parts); len(n) > 0 {
		t.Logf("cut by divergence: %v", n)
	}

	stopCaughtUp(t, c, topic, parts)
	sizes := compareReplicas(t, c, topic, parts)
	t.Logf("replicas byte-identical on the three nodes: log bytes by partition %v", sizes)
}

// diverged lists the .log.diverged-* files in the nodes' replicas of topic.
func diverged(c *testCluster, topic string, parts int32) []string {
	var out []string
	for _, n := range c.nodes {
		for p := range parts {
			names, _ := globDiverged(replicaDir(n, topic, p))
			for _, name := range names {
				out = append(out, fmt.Sprintf("node %d %s", n.id, name))
			}
		}
	}
	slices.Sort(out)
	return out
}
