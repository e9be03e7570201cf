package tests

// A randomized fault run against a three-node cluster with replicated partitions: each round
// kills a random node with SIGKILL and restarts it, then cuts a random node off from its peers
// (a blackhole or closed connections, through the proxies on every peer link) and heals, while
// an idempotent acks=all producer runs throughout. At the end nothing acknowledged may be lost
// or duplicated, each partition is in order, and the replicas are the same bytes on disk.
// `make chaos` runs it (THORSTREAM_CHAOS=1); THORSTREAM_CHAOS_ROUNDS sets the rounds (20) and
// THORSTREAM_CHAOS_SEED replays a run's choices.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// chaosEnvInt is the integer in environment variable name, or def.
func chaosEnvInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// ledBy lists the partitions node id leads as observer's Metadata describes them.
func ledBy(t *testing.T, observer *clusterNode, topic string, id int32) []int32 {
	t.Helper()
	var out []int32
	for p, l := range leadersNow(t, observer, topic) {
		if l == id {
			out = append(out, int32(p))
		}
	}
	return out
}

// newLeadersWithin polls observers' Metadata until each of parts has a leader other than gone,
// all observers agreeing, for at most until; it returns how long after since that held, or
// false if it did not.
func newLeadersWithin(observers []*clusterNode, topic string, parts []int32, gone int32, since, until time.Time) (time.Duration, bool) {
	for time.Now().Before(until) {
		states, _ := statesOf(topic, observers...)
		ok := states != nil
		for _, p := range parts {
			for _, s := range states {
				if !ok || s[p].leader < 0 || s[p].leader == gone || s[p].leader != states[0][p].leader {
					ok = false
				}
			}
		}
		if ok {
			return time.Since(since), true
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
	return 0, false
}

func TestChaosReplication(t *testing.T) {
	if os.Getenv("THORSTREAM_CHAOS") != "1" {
		t.Skip("the randomized replication chaos run takes minutes: it runs with THORSTREAM_CHAOS=1 (make chaos)")
	}
	seed := chaosEnvInt(t, "THORSTREAM_CHAOS_SEED", time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rounds := int(chaosEnvInt(t, "THORSTREAM_CHAOS_ROUNDS", 20))
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6368616f73))

	const (
		topic = "chaos"
		parts = 6
	)
	c, mesh := startProxiedCluster(t, 3, clusterOptions{})
	all := kafkaAddrs(c.nodes...)
	createReplicatedTopic(t, all, topic, parts, 3)
	waitFullISR(t, c, topic, parts, 30*time.Second)
	sp := startSeqProducer(t, "chaos", topic, parts, all, 2*time.Millisecond, 256)
	waitAcks(t, sp, 100, 30*time.Second)

	var killFailovers, isolationFailovers, rejoins []time.Duration
	start := time.Now()
	for round := 1; round <= rounds; round++ {
		// kill -9 of a random node, leader or not; restarted after a random time down.
		victim := c.nodes[rng.IntN(len(c.nodes))]
		observers := c.others(victim)
		led := ledBy(t, observers[0], topic, victim.id)
		down := 500*time.Millisecond + time.Duration(rng.IntN(2500))*time.Millisecond
		killed := time.Now()
		victim.kill9()
		killNote := "led nothing"
		if len(led) > 0 {
			d, _ := waitNewLeaders(t, observers, topic, led, victim.id, killed, 60*time.Second)
			killFailovers = append(killFailovers, d)
			killNote = fmt.Sprintf("led %v, new leaders after %v", led, d.Round(time.Millisecond))
		}
		time.Sleep(time.Until(killed.Add(down))) // the node stays down a while
		restarted := time.Now()
		victim.start()
		waitFullISR(t, c, topic, parts, 90*time.Second)
		rejoins = append(rejoins, time.Since(restarted))
		t.Logf("round %d: kill -9 node %d (%s), down %v, back in every ISR %v after its restart",
			round, victim.id, killNote, down.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))

		// One node cut off from its peers for a random time, then healed.
		cut := c.nodes[rng.IntN(len(c.nodes))]
		mode := proxyStalled
		if rng.IntN(2) == 0 {
			mode = proxySevered
		}
		span := time.Second + time.Duration(rng.IntN(5000))*time.Millisecond
		observers = c.others(cut)
		led = ledBy(t, observers[0], topic, cut.id)
		isolated := time.Now()
		mesh.isolate(cut.id, mode)
		cutNote := "led nothing"
		if len(led) > 0 {
			cutNote = fmt.Sprintf("led %v, no new leaders before the heal", led)
			if d, ok := newLeadersWithin(observers, topic, led, cut.id, isolated, isolated.Add(span)); ok {
				isolationFailovers = append(isolationFailovers, d)
				cutNote = fmt.Sprintf("led %v, new leaders after %v", led, d.Round(time.Millisecond))
			}
		}
		time.Sleep(time.Until(isolated.Add(span))) // the cut lasts its span
		healed := time.Now()
		mesh.heal()
		waitFullISR(t, c, topic, parts, 90*time.Second)
		t.Logf("round %d: node %d cut off (%s) for %v (%s), every replica in sync %v after the heal",
			round, cut.id, mode, span.Round(time.Millisecond), cutNote, time.Since(healed).Round(time.Millisecond))

		// The producer goes on once the cluster is whole again.
		waitAcks(t, sp, sp.acks(), 60*time.Second)
	}
	elapsed := time.Since(start)

	mesh.heal()
	sp.finish(2 * time.Minute)
	waitFullISR(t, c, topic, parts, 90*time.Second)
	logs := consumeToEnd(t, all, topic, parts)
	lc := verifyReplLog(t, logs, parts, []*seqProducer{sp}, nil)
	stopCaughtUp(t, c, topic, parts)
	sizes := compareReplicas(t, c, topic, parts)
	var total int
	for _, s := range sizes {
		total += s
	}
	failovers := slices.Concat(killFailovers, isolationFailovers)
	t.Logf("chaos summary: seed %d, %d rounds in %v; %d records acknowledged, all in the log once and in order (%d records there, %d failed but present; failures: %s); replicas byte-identical (%d log bytes per node); failover to new leaders: %s (after kill -9: %s; after a cut: %s); a restarted node back in every ISR: %s",
		seed, rounds, elapsed.Round(time.Second), lc.acked, lc.records, lc.unackedPresent, sp.failures(), total,
		durationStats(failovers), durationStats(killFailovers), durationStats(isolationFailovers), durationStats(rejoins))
}
