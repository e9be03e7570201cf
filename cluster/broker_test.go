package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

func openBroker(t *testing.T, o Options) *Broker {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = "/data"
	}
	if o.FS == nil {
		o.FS = vfs.NewMem()
	}
	if o.Now == nil {
		o.Now = fixedNow
	}
	b, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produce appends one batch of n records to a partition and returns its base offset.
func produce(t *testing.T, r *Replica, n int) int64 {
	t.Helper()
	c := newCollector()
	if err := r.Submit(&AppendRequest{Records: makeBatch(n, testNow.UnixMilli(), 10), Owner: c}); err != nil {
		t.Fatal(err)
	}
	d := c.next(t)
	if d.res.Err != nil {
		t.Fatal(d.res.Err)
	}
	return d.res.BaseOffset
}

func TestBrokerCreateDescribeDelete(t *testing.T) {
	b := openBroker(t, Options{})
	defer b.Close()
	if b.ClusterID() == "" {
		t.Fatal("no cluster id")
	}
	if err := b.CreateTopic(TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{ConfigRetentionMs: "1000"}}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "audit", Partitions: -1, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	snap := b.Snapshot()
	if !slices.Equal(snap.Names, []string{"audit", "orders"}) {
		t.Fatalf("names %v", snap.Names)
	}
	orders := snap.Topics["orders"]
	if len(orders.Replicas) != 3 || orders.Config.RetentionMs != 1000 || orders.ReplicationFactor != 1 || orders.ID == ([16]byte{}) {
		t.Fatalf("orders: %+v", orders)
	}
	if n := len(snap.Topics["audit"].Replicas); n != 1 {
		t.Fatalf("audit has %d partitions, want the default 1", n)
	}
	for p := int32(0); p < 3; p++ {
		r := b.Replica("orders", p)
		if r == nil || r.Partition() != p || r.Topic() != "orders" {
			t.Fatalf("Replica(orders, %d) = %v", p, r)
		}
		if b.ReplicaBytes([]byte("orders"), p) != r {
			t.Fatal("ReplicaBytes disagrees with Replica")
		}
	}
	for _, p := range []int32{-1, 3} {
		if b.Replica("orders", p) != nil {
			t.Fatalf("Replica(orders, %d) exists", p)
		}
	}
	if b.Replica("nope", 0) != nil {
		t.Fatal("unknown topic has a replica")
	}
	err := b.CreateTopic(TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}, false)
	if codeOf(err) != errcode.TopicAlreadyExists {
		t.Fatalf("create twice: %v", err)
	}
	if err := b.DeleteTopic("orders"); err != nil {
		t.Fatal(err)
	}
	if b.Replica("orders", 0) != nil || !slices.Equal(b.Snapshot().Names, []string{"audit"}) {
		t.Fatal("deleted topic still in metadata")
	}
	if codeOf(b.DeleteTopic("orders")) != errcode.UnknownTopicOrPartition {
		t.Fatal("deleting a missing topic must give UNKNOWN_TOPIC_OR_PARTITION")
	}
	// The snapshot taken before is immutable.
	if snap.Topics["orders"] == nil {
		t.Fatal("an old snapshot changed")
	}
}

func TestBrokerCreateTopicErrors(t *testing.T) {
	b := openBroker(t, Options{})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "exists", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec TopicSpec
		code errcode.Code
	}{
		{"empty name", TopicSpec{Name: "", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"dot", TopicSpec{Name: ".", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"dot dot", TopicSpec{Name: "..", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"slash", TopicSpec{Name: "a/b", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"space", TopicSpec{Name: "a b", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"non-ASCII", TopicSpec{Name: "café", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"too long", TopicSpec{Name: strings.Repeat("a", 250), Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"reserved prefix", TopicSpec{Name: "__mine", Partitions: 1, ReplicationFactor: 1}, errcode.InvalidTopic},
		{"zero partitions", TopicSpec{Name: "p0", Partitions: 0, ReplicationFactor: 1}, errcode.InvalidPartitions},
		{"negative partitions", TopicSpec{Name: "pn", Partitions: -5, ReplicationFactor: 1}, errcode.InvalidPartitions},
		{"replication 3", TopicSpec{Name: "r3", Partitions: 1, ReplicationFactor: 3}, errcode.InvalidReplicationFactor},
		{"replication 0", TopicSpec{Name: "r0", Partitions: 1, ReplicationFactor: 0}, errcode.InvalidReplicationFactor},
		{"unknown config", TopicSpec{Name: "c1", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"foo": "1"}}, errcode.InvalidConfig},
		{"bad config value", TopicSpec{Name: "c2", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{ConfigRetentionMs: "soon"}}, errcode.InvalidConfig},
		{"exists", TopicSpec{Name: "exists", Partitions: 1, ReplicationFactor: 1}, errcode.TopicAlreadyExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, validateOnly := range []bool{true, false} {
				if err := b.CreateTopic(tc.spec, validateOnly); codeOf(err) != tc.code {
					t.Fatalf("validateOnly=%v: %v, want %v", validateOnly, err, tc.code)
				}
			}
		})
	}
	if !slices.Equal(b.Snapshot().Names, []string{"exists"}) {
		t.Fatalf("failed creations left topics: %v", b.Snapshot().Names)
	}
	for _, ok := range []string{"a", "A.b_c-9", strings.Repeat("x", 249)} {
		if err := ValidTopicName(ok); err != nil {
			t.Errorf("ValidTopicName(%q) = %v", ok, err)
		}
	}
	// validateOnly checks without creating.
	if err := b.CreateTopic(TopicSpec{Name: "later", Partitions: 2, ReplicationFactor: 1}, true); err != nil {
		t.Fatal(err)
	}
	if b.Snapshot().Topics["later"] != nil {
		t.Fatal("validateOnly created the topic")
	}
	// Internal topics may use the reserved prefix and cannot be deleted.
	if err := b.CreateTopic(TopicSpec{Name: "__internal", Partitions: 1, ReplicationFactor: 1, Internal: true}, false); err != nil {
		t.Fatal(err)
	}
	if codeOf(b.DeleteTopic("__internal")) != errcode.InvalidTopic {
		t.Fatal("deleted an internal topic")
	}
}

func TestBrokerEnsureTopic(t *testing.T) {
	t.Run("auto-create on", func(t *testing.T) {
		b := openBroker(t, Options{AutoCreateTopics: true, DefaultPartitions: 2})
		defer b.Close()
		if !b.AutoCreateTopics() {
			t.Fatal("AutoCreateTopics() = false")
		}
		tp, err := b.EnsureTopic("auto")
		if err != nil || tp == nil || len(tp.Replicas) != 2 {
			t.Fatalf("EnsureTopic: %v, %v", tp, err)
		}
		again, err := b.EnsureTopic("auto")
		if err != nil || again != tp {
			t.Fatal("EnsureTopic of an existing topic must return it")
		}
		if _, err := b.EnsureTopic("bad name"); codeOf(err) != errcode.InvalidTopic {
			t.Fatalf("EnsureTopic(bad name): %v", err)
		}
	})
	t.Run("auto-create off", func(t *testing.T) {
		b := openBroker(t, Options{})
		defer b.Close()
		if _, err := b.EnsureTopic("auto"); codeOf(err) != errcode.UnknownTopicOrPartition {
			t.Fatalf("EnsureTopic: %v", err)
		}
		if b.Snapshot().Topics["auto"] != nil {
			t.Fatal("created with auto-creation off")
		}
	})
}

func TestBrokerReopenRestoresTopicsAndData(t *testing.T) {
	dir := t.TempDir()
	o := Options{DataDir: dir, FS: vfs.Default, Fsync: FsyncPolicy{Mode: FsyncNever}}
	b := openBroker(t, o)
	id := b.ClusterID()
	if err := b.CreateTopic(TopicSpec{Name: "events", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{ConfigMaxMessageBytes: "5000"}}, false); err != nil {
		t.Fatal(err)
	}
	topicID := b.Snapshot().Topics["events"].ID
	for i := 0; i < 3; i++ {
		produce(t, b.Replica("events", 1), 2)
	}
	want := readAll(t, b.Replica("events", 1))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if codeOf(b.CreateTopic(TopicSpec{Name: "x", Partitions: 1, ReplicationFactor: 1}, false)) != errcode.UnknownServerError {
		t.Fatal("CreateTopic after Close must fail")
	}

	b2 := openBroker(t, o)
	defer b2.Close()
	if b2.ClusterID() != id {
		t.Fatalf("cluster id changed: %s → %s", id, b2.ClusterID())
	}
	tp := b2.Snapshot().Topics["events"]
	if tp == nil || len(tp.Replicas) != 2 || tp.ID != topicID || tp.Config.MaxMessageBytes != 5000 || tp.Config.Overrides[ConfigMaxMessageBytes] != "5000" {
		t.Fatalf("reopened topic: %+v", tp)
	}
	r := b2.Replica("events", 1)
	if r.HighWatermark() != 6 {
		t.Fatalf("high watermark %d after reopen, want 6", r.HighWatermark())
	}
	got := readAll(t, r)
	if len(got) != len(want) {
		t.Fatalf("%d batches after reopen, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("batch %d differs after reopen", i)
		}
	}
	if base := produce(t, r, 1); base != 6 {
		t.Fatalf("append after reopen at %d, want 6", base)
	}
}

func TestBrokerDeleteTopicRemovesFilesAndAllowsRecreate(t *testing.T) {
	dir := t.TempDir()
	o := Options{DataDir: dir, FS: vfs.Default}
	b := openBroker(t, o)
	if err := b.CreateTopic(TopicSpec{Name: "gone", Partitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	produce(t, b.Replica("gone", 0), 3)
	old := b.Replica("gone", 0)
	if err := b.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	// The old replica is closed: a late producer gets an error, not a hang.
	if err := old.Submit(&AppendRequest{Records: makeBatch(1, 0, 1), Owner: newCollector()}); err == nil {
		t.Fatal("Submit to a deleted topic's replica succeeded")
	}
	// Files go away in the background: poll with a deadline.
	deadline := time.Now().Add(waitTimeout)
	for {
		names, err := vfs.Default.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		left := slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "gone") })
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted topic's files remain: %v", left)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	if err := b.CreateTopic(TopicSpec{Name: "gone", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	r := b.Replica("gone", 0)
	if r.HighWatermark() != 0 || r.LogStartOffset() != 0 {
		t.Fatalf("recreated topic is not empty: hw %d", r.HighWatermark())
	}
	if base := produce(t, r, 1); base != 0 {
		t.Fatalf("first append to the recreated topic at %d", base)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := openBroker(t, o)
	defer b2.Close()
	if tp := b2.Snapshot().Topics["gone"]; tp == nil || len(tp.Replicas) != 1 || tp.Replicas[0].HighWatermark() != 1 {
		t.Fatalf("recreated topic after reopen: %+v", tp)
	}
	if _, err := vfs.Default.Stat(filepath.Join(dir, "gone-1")); err == nil {
		t.Fatal("partition 1 of the deleted topic is back")
	}
}

func TestBrokerDamagedMeta(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, Options{FS: fs})
	b.Close()
	f, err := fs.Create("/data/meta.json")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("{not json"), 0)
	f.Close()
	if _, err := Open(Options{DataDir: "/data", FS: fs}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Open with a damaged meta.json: %v", err)
	}
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without a data directory succeeded")
	}
}
