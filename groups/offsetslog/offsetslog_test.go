package offsetslog

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/log/vfs"
)

const wait = 20 * time.Second

func openBroker(t *testing.T, o cluster.Options) *cluster.Broker {
	t.Helper()
	b, err := cluster.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T, b *cluster.Broker) *groups.Coordinator {
	t.Helper()
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	c, err := Start(b, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for !c.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the coordinator did not load")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	return c
}

func commit(t *testing.T, c *groups.Coordinator, group, topic string, partition int32, offset int64, metadata string) {
	t.Helper()
	ch := make(chan groups.CommitResponse, 1)
	c.CommitOffsets(groups.CommitRequest{Version: 8, Group: group, Generation: -1, Topics: []groups.CommitTopic{{Topic: topic,
		Partitions: []groups.CommitPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1, Metadata: metadata}}}}},
		func(r groups.CommitResponse) { ch <- r })
	select {
	case r := <-ch:
		if code := r.Topics[0].Partitions[0].ErrorCode; code != errcode.None {
			t.Fatalf("commit %s %s/%d: %v", group, topic, partition, code)
		}
	case <-time.After(wait):
		t.Fatal("timed out waiting for a commit")
	}
}

func fetch(t *testing.T, c *groups.Coordinator, group, topic string, partition int32) groups.FetchPartition {
	t.Helper()
	ch := make(chan groups.FetchResponse, 1)
	c.FetchOffsets(groups.FetchRequest{Version: 8, Group: group, Topics: []groups.FetchTopic{{Topic: topic, Partitions: []int32{partition}}}},
		func(r groups.FetchResponse) { ch <- r })
	select {
	case r := <-ch:
		if r.ErrorCode != errcode.None {
			t.Fatalf("fetch %s: %v", group, r.ErrorCode)
		}
		return r.Topics[0].Partitions[0]
	case <-time.After(wait):
		t.Fatal("timed out waiting for a fetch")
		return groups.FetchPartition{}
	}
}

func listGroups(t *testing.T, c *groups.Coordinator) []groups.ListedGroup {
	t.Helper()
	ch := make(chan []groups.ListedGroup, 1)
	c.List(nil, func(g []groups.ListedGroup, code errcode.Code) {
		if code != errcode.None {
			t.Errorf("list: %v", code)
		}
		ch <- g
	})
	select {
	case g := <-ch:
		return g
	case <-time.After(wait):
		t.Fatal("timed out waiting for ListGroups")
		return nil
	}
}

// TestStartCreatesTheOffsetsTopic: a new data directory gets an internal, compacted offsets topic
// of DefaultPartitions partitions, and commits spread over them survive a restart.
func TestStartCreatesTheOffsetsTopic(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, cluster.Options{DataDir: "/data", FS: fs})
	c := start(t, b)
	topic := b.Snapshot().Topics[groups.OffsetsTopic]
	if topic == nil || !topic.Internal || len(topic.Replicas) != DefaultPartitions || c.Partitions() != DefaultPartitions {
		t.Fatalf("offsets topic %+v, coordinator partitions %d", topic, c.Partitions())
	}
	if topic.Config.CleanupPolicy != cluster.PolicyCompact || topic.Config.SegmentBytes != DefaultSegmentBytes {
		t.Fatalf("offsets topic config: cleanup.policy %q, segment.bytes %d", topic.Config.CleanupPolicy, topic.Config.SegmentBytes)
	}
	used := map[int32]bool{}
	for i := range 30 {
		g := "group-" + strconv.Itoa(i)
		used[c.PartitionFor(g)] = true
		commit(t, c, g, "t", int32(i%3), int64(100+i), "m"+strconv.Itoa(i))
	}
	if len(used) < 4 {
		t.Fatalf("30 groups in %d partitions", len(used))
	}
	written := 0
	for _, r := range topic.Replicas {
		if r.HighWatermark() > 0 {
			written++
		}
	}
	if written != len(used) {
		t.Fatalf("%d partitions written, groups live in %d", written, len(used))
	}
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, cluster.Options{DataDir: "/data", FS: fs})
	defer b.Close()
	c = start(t, b)
	defer c.Close()
	for i := range 30 {
		got := fetch(t, c, "group-"+strconv.Itoa(i), "t", int32(i%3))
		if got.Offset != int64(100+i) || got.Metadata != "m"+strconv.Itoa(i) {
			t.Fatalf("group-%d after a restart: %+v", i, got)
		}
	}
}

// TestTopicDeletionReachesTheCoordinator: deleting a topic through the broker drops its offsets.
func TestTopicDeletionReachesTheCoordinator(t *testing.T) {
	b := openBroker(t, cluster.Options{DataDir: "/data", FS: vfs.NewMem()})
	defer b.Close()
	c := start(t, b)
	defer c.Close()
	for _, name := range []string{"doomed", "kept"} {
		if err := b.CreateTopic(cluster.TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		commit(t, c, "g", name, 0, 9, "")
	}
	if err := b.DeleteTopic("doomed"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for fetch(t, c, "g", "doomed", 0).Offset != -1 {
		if time.Now().After(deadline) {
			t.Fatal("the deleted topic's offsets stayed")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	if got := fetch(t, c, "g", "kept", 0); got.Offset != 9 {
		t.Fatalf("kept: %+v", got)
	}
}

// TestLegacyDataDirectoryMigrates opens a data directory written by the broker before the group
// coordinator (testdata/legacy-datadir: its committed-offsets table wrote Thorstream's earlier
// value layout into a one-partition, uncompacted __consumer_offsets). The topic keeps its single
// partition, becomes compacted, and every commit reads back; new commits go to the same
// partition and survive a restart with the old ones.
//
// The directory holds three commits: billing orders/0 = 10 "first" then 25 "second", billing
// orders/1 = 7, audit orders/1 = 3.
func TestLegacyDataDirectoryMigrates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS("testdata/legacy-datadir")); err != nil {
		t.Fatal(err)
	}
	check := func(c *groups.Coordinator) {
		t.Helper()
		for _, want := range []struct {
			group     string
			partition int32
			offset    int64
			metadata  string
		}{{"billing", 0, 25, "second"}, {"billing", 1, 7, ""}, {"audit", 1, 3, ""}} {
			got := fetch(t, c, want.group, "orders", want.partition)
			if got.Offset != want.offset || got.Metadata != want.metadata || got.LeaderEpoch != -1 {
				t.Fatalf("%s orders/%d: %+v, want offset %d metadata %q", want.group, want.partition, got, want.offset, want.metadata)
			}
		}
	}
	b := openBroker(t, cluster.Options{DataDir: dir})
	c := start(t, b)
	topic := b.Snapshot().Topics[groups.OffsetsTopic]
	if c.Partitions() != 1 || len(topic.Replicas) != 1 {
		t.Fatalf("partitions: coordinator %d, topic %d; want the existing 1", c.Partitions(), len(topic.Replicas))
	}
	if !topic.Config.Compact() {
		t.Fatalf("cleanup.policy %q, want compact", topic.Config.CleanupPolicy)
	}
	check(c)
	listed := listGroups(t, c)
	if len(listed) != 2 || listed[0].Group != "audit" || listed[1].Group != "billing" || listed[0].State != "Empty" {
		t.Fatalf("groups: %+v", listed)
	}
	commit(t, c, "fresh", "orders", 0, 1, "new")
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, cluster.Options{DataDir: dir})
	defer b.Close()
	if p := b.Snapshot().Topics[groups.OffsetsTopic].Config.CleanupPolicy; p != cluster.PolicyCompact {
		t.Fatalf("after a restart cleanup.policy %q", p)
	}
	c = start(t, b)
	defer c.Close()
	check(c)
	if got := fetch(t, c, "fresh", "orders", 0); got.Offset != 1 || got.Metadata != "new" {
		t.Fatalf("fresh: %+v", got)
	}
}

// TestAppendAndReplayErrors: a partition that does not exist fails both.
func TestAppendAndReplayErrors(t *testing.T) {
	b := openBroker(t, cluster.Options{DataDir: "/data", FS: vfs.NewMem()})
	defer b.Close()
	l, err := Open(b, Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if l.Partitions() != 2 {
		t.Fatalf("%d partitions", l.Partitions())
	}
	done := make(chan error, 1)
	l.Append(7, []byte("x"), func(err error) { done <- err })
	if err := <-done; errcode.Of(err) != errcode.UnknownTopicOrPartition {
		t.Fatalf("append to a missing partition: %v", err)
	}
	if err := l.Replay(7, func([]byte) error { return nil }); err == nil {
		t.Fatal("replay of a missing partition succeeded")
	}
	calls := 0
	if err := l.Replay(1, func([]byte) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("replay of an empty partition: %v, %d batches", err, calls)
	}
}
