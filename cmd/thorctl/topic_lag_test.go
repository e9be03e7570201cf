package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/clienttest"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// The LAG column has, for each replica in REPLICAS order, the records it is behind the leader's
// log end as the leader sees it; "?" where the leader has not heard from it, and for every
// replica when the broker is older than ListOffsets version 2.
func TestTopicDescribeReplicaLag(t *testing.T) {
	fc := newCluster(t, clienttest.Options{Nodes: 3})
	if err := fc.CreateTopic("events", 3, nil); err != nil {
		t.Fatal(err)
	}
	appendRecords(fc, "events", 0, 2000, 1700000000000)
	fc.SetReplicas("events", 0, []int32{0, 1, 2}, []int32{0, 1})
	fc.SetFollower("events", 0, 1, 2000, 1700000000000)
	fc.SetFollower("events", 0, 2, 480, 1700000000000)
	appendRecords(fc, "events", 1, 7, 1700000000000)
	fc.SetReplicas("events", 1, []int32{1, 2, 0}, []int32{1, 2, 0})
	fc.SetFollower("events", 1, 2, 7, 1700000000000)
	r := thorctl(t, "", map[string]string{"THORSTREAM_BROKER": fc.Addrs()[2]}, "topic", "describe", "events")
	want := `Topic: events
Partitions: 3
Configs: (none)
PARTITION  LEADER  REPLICAS  ISR    EARLIEST  LATEST  LAG
0          0       0,1,2     0,1    0         2000    0,0,1520
1          1       1,2,0     1,2,0  0         7       0,0,?
2          2       2         2      0         0       0
`
	if r.code != 0 || r.stdout != want {
		t.Fatalf("describe:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}

	var apis []proto.APIRange
	for _, a := range proto.Supported {
		if a.Key == proto.KeyListOffsets {
			a.MaxVersion = 1
		}
		apis = append(apis, a)
	}
	old := newCluster(t, clienttest.Options{APIs: apis})
	if err := old.CreateTopic("events", 1, nil); err != nil {
		t.Fatal(err)
	}
	old.SetReplicas("events", 0, []int32{0, 1, 2}, []int32{0, 1, 2})
	r = thorctl(t, "", map[string]string{"THORSTREAM_BROKER": old.Addrs()[0]}, "topic", "describe", "events")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "\n0          0       0,1,2     0,1,2  0         0       ?,?,?\n") {
		t.Fatalf("describe through an older broker:\n%s\nstderr %s", r.stdout, r.stderr)
	}
}

// describeRow is `topic describe`'s row of one partition, by column name.
func describeRow(t *testing.T, out string, partition int) map[string]string {
	t.Helper()
	var header []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "PARTITION" {
			header = f
			continue
		}
		if header != nil && len(f) == len(header) && f[0] == fmt.Sprint(partition) {
			row := map[string]string{}
			for i, h := range header {
				row[h] = f[i]
			}
			return row
		}
	}
	t.Fatalf("no row for partition %d in:\n%s", partition, out)
	return nil
}

// On three real nodes: a topic with replication factor 3 shows every replica caught up, then a
// follower cut off from the others falls behind by exactly the records written since, and
// leaves the ISR.
func TestTopicDescribeLagThreeNodes(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	const wait = 60 * time.Second
	c.Eventually(wait, "every node to list three live nodes", func() bool {
		for _, id := range c.Running() {
			if n := c.Node(id); n == nil || len(n.Broker.Snapshot().LiveNodes()) != 3 {
				return false
			}
		}
		return true
	})
	env := map[string]string{"THORSTREAM_BROKER": c.Addrs()[0]}
	var r result
	c.Eventually(wait, "the topic to be created", func() bool {
		// Retried while the controller is being elected.
		r = thorctl(t, "", env, "topic", "create", "lagging", "--replication-factor", "3")
		return r.code == 0 || strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS")
	})
	c.Eventually(wait, "every replica in sync", func() bool {
		tp := c.Node(0).Broker.Snapshot().Topics["lagging"]
		return tp != nil && len(tp.Partitions[0].ISR) == 3 && tp.Partitions[0].Leader >= 0
	})
	part := c.Node(0).Broker.Snapshot().Topics["lagging"].Partitions[0]
	leader := part.Leader
	env = map[string]string{"THORSTREAM_BROKER": c.Addrs()[leader]}
	if r = thorctl(t, strings.Repeat("x\n", 10), env, "produce", "lagging", "--partition", "0", "--acks", "all"); r.code != 0 {
		t.Fatalf("produce: %+v", r)
	}
	lagOf := func(lags map[int32]int) string {
		parts := make([]string, len(part.Replicas))
		for i, id := range part.Replicas {
			parts[i] = fmt.Sprint(lags[id])
		}
		return strings.Join(parts, ",")
	}
	var row map[string]string
	c.Eventually(wait, "every replica caught up in describe", func() bool {
		r = thorctl(t, "", env, "topic", "describe", "lagging")
		row = describeRow(t, r.stdout, 0)
		return r.code == 0 && row["LAG"] == lagOf(nil) && row["LATEST"] == "10"
	})

	// Cut off a follower that is not the controller: the leader and the controller stay.
	controller := c.Controller(wait)
	victim := int32(-1)
	for _, id := range part.Replicas {
		if id != leader && id != controller {
			victim = id
		}
	}
	c.Faults.Isolate(victim, 3)
	defer c.Faults.Heal() // the nodes stop sooner in touch
	if r = thorctl(t, strings.Repeat("y\n", 25), env, "produce", "lagging", "--partition", "0", "--acks", "1"); r.code != 0 {
		t.Fatalf("produce while node %d is cut off: %+v", victim, r)
	}
	wantLag := lagOf(map[int32]int{victim: 25})
	c.Eventually(wait, fmt.Sprintf("node %d lagging 25 records and out of the ISR", victim), func() bool {
		r = thorctl(t, "", env, "topic", "describe", "lagging")
		row = describeRow(t, r.stdout, 0)
		return r.code == 0 && row["LAG"] == wantLag && !strings.Contains(row["ISR"], fmt.Sprint(victim))
	})
	if row["REPLICAS"] != joinIDs(part.Replicas) || row["LEADER"] != fmt.Sprint(leader) {
		t.Errorf("row %v: replicas or leader changed (was %v led by %d)", row, part.Replicas, leader)
	}
}
