package cluster

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

func TestCreatePartitions(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, Options{FS: fs, MaxPartitions: 9, MaxPartitionsPerRequest: 5})
	if err := b.CreateTopic(TopicSpec{Name: "orders", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{ConfigRetentionMs: "3600000"}}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "audit", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "__internal", Partitions: 1, ReplicationFactor: 1, Internal: true}, false); err != nil {
		t.Fatal(err)
	}
	produce(t, b.Replica("orders", 0), 3)
	// Files under the name of a partition to be added (left by an earlier topic) are moved aside.
	if err := fs.MkdirAll("/data/orders-3", 0o755); err != nil {
		t.Fatal(err)
	}
	stale := openLog(t, fs, "/data/orders-3")
	if err := stale.Append([][]byte{makeBatch(5, testNow.UnixMilli(), 10)}); err != nil {
		t.Fatal(err)
	}
	if err := stale.Close(); err != nil {
		t.Fatal(err)
	}

	f := func(name string, specs []PartitionsSpec, validateOnly bool, want ...errcode.Code) {
		t.Helper()
		errs := b.CreatePartitions(specs, validateOnly)
		for i, err := range errs {
			if codeOf(err) != want[i] {
				t.Fatalf("%s: spec %d: %v, want %v", name, i, err, want[i])
			}
		}
	}
	f("validate only", []PartitionsSpec{{"orders", 4}}, true, errcode.None)
	if n := len(b.Snapshot().Topics["orders"].Replicas); n != 2 {
		t.Fatalf("validate only added partitions: %d", n)
	}
	f("grow", []PartitionsSpec{{"orders", 4}}, false, errcode.None)
	f("shrink", []PartitionsSpec{{"orders", 3}}, false, errcode.InvalidPartitions)
	f("same count", []PartitionsSpec{{"orders", 4}}, false, errcode.InvalidPartitions)
	f("unknown and twice", []PartitionsSpec{{"nope", 2}, {"audit", 2}, {"audit", 3}}, false,
		errcode.UnknownTopicOrPartition, errcode.None, errcode.InvalidRequest)
	f("internal", []PartitionsSpec{{"__internal", 2}}, false, errcode.InvalidTopic)
	f("too many for one topic", []PartitionsSpec{{"audit", maxTopicPartitions + 1}}, false, errcode.InvalidPartitions)
	// 4 + 2 + 1 partitions hosted: the broker limit of 9 leaves room for 2 more.
	f("per request", []PartitionsSpec{{"orders", 7}, {"audit", 5}}, false, errcode.PolicyViolation, errcode.PolicyViolation)
	f("broker limit", []PartitionsSpec{{"audit", 4}, {"orders", 6}}, false, errcode.None, errcode.PolicyViolation)

	topic := b.Snapshot().Topics["orders"]
	if len(topic.Replicas) != 4 || topic.Config.RetentionMs != 3600000 {
		t.Fatalf("orders: %d partitions, retention %d", len(topic.Replicas), topic.Config.RetentionMs)
	}
	if r := b.Replica("orders", 3); r == nil || r.HighWatermark() != 0 || r.Topic() != "orders" || r.Partition() != 3 {
		t.Fatalf("added partition 3: %+v (the stale files were not moved aside?)", r)
	}
	for p := int32(2); p < 4; p++ {
		if off := produce(t, b.Replica("orders", p), 2); off != 0 {
			t.Fatalf("partition %d: first offset %d", p, off)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// The partitions are in meta.json and their data survives a restart.
	b = openBroker(t, Options{FS: fs})
	defer b.Close()
	if n := len(b.Snapshot().Topics["orders"].Replicas); n != 4 {
		t.Fatalf("after a restart orders has %d partitions", n)
	}
	if n := len(b.Snapshot().Topics["audit"].Replicas); n != 4 {
		t.Fatalf("after a restart audit has %d partitions", n)
	}
	for p, want := range []int64{3, 0, 2, 2} {
		if hw := b.Replica("orders", int32(p)).HighWatermark(); hw != want {
			t.Fatalf("orders-%d: high watermark %d, want %d", p, hw, want)
		}
	}
}

// onReplica runs fn on r's goroutine, where its config and log limits may be read.
func onReplica(t *testing.T, r *Replica, fn func()) {
	t.Helper()
	done := make(chan struct{})
	select {
	case r.control <- func() { fn(); close(done) }:
	case <-time.After(waitTimeout):
		t.Fatal("replica goroutine did not take the call")
	}
	<-done
}

func TestAlterTopicConfig(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, Options{FS: fs})
	if err := b.CreateTopic(TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{ConfigRetentionMs: "3600000"}}, false); err != nil {
		t.Fatal(err)
	}
	big := func() []byte { return makeBatch(1, testNow.UnixMilli(), 500) }
	if res := appendOne(t, b.Replica("t", 0), big()); res.Err != nil {
		t.Fatal(res.Err)
	}

	f := func(name string, ops []ConfigOp, replace, validateOnly bool, want errcode.Code) {
		t.Helper()
		if err := b.AlterTopicConfig("t", ops, replace, validateOnly); codeOf(err) != want {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	set := func(k, v string) ConfigOp { return ConfigOp{Op: ConfigSet, Key: k, Value: v} }
	f("validate only", []ConfigOp{set(ConfigMaxMessageBytes, "100")}, false, true, errcode.None)
	if res := appendOne(t, b.Replica("t", 0), big()); res.Err != nil {
		t.Fatalf("validate only changed the config: %v", res.Err)
	}
	f("bad value", []ConfigOp{set(ConfigMaxMessageBytes, "lots")}, false, false, errcode.InvalidConfig)
	f("unknown key", []ConfigOp{set("no.such.config", "1")}, false, false, errcode.InvalidConfig)
	f("delete unknown key", []ConfigOp{{Op: ConfigDelete, Key: "no.such.config"}}, false, false, errcode.InvalidConfig)
	f("twice", []ConfigOp{set(ConfigRetentionMs, "1"), {Op: ConfigDelete, Key: ConfigRetentionMs}}, false, false, errcode.InvalidRequest)
	f("append to a number", []ConfigOp{{Op: ConfigAppend, Key: ConfigRetentionMs, Value: "5"}}, false, false, errcode.InvalidRequest)
	f("unknown operation", []ConfigOp{{Op: 9, Key: ConfigRetentionMs}}, false, false, errcode.InvalidRequest)
	if err := b.AlterTopicConfig("nope", nil, false, false); codeOf(err) != errcode.UnknownTopicOrPartition {
		t.Fatalf("unknown topic: %v", err)
	}

	f("set", []ConfigOp{
		set(ConfigMaxMessageBytes, "100"),
		set(ConfigTimestampType, TimestampTypeLogAppendTime),
		set(ConfigSegmentBytes, "1048576"),
		set(ConfigRetentionBytes, "5000000"),
		set(ConfigSegmentMs, "600000"),
	}, false, false, errcode.None)
	cfg := b.Snapshot().Topics["t"].Config
	want := map[string]string{ConfigRetentionMs: "3600000", ConfigMaxMessageBytes: "100", ConfigTimestampType: TimestampTypeLogAppendTime,
		ConfigSegmentBytes: "1048576", ConfigRetentionBytes: "5000000", ConfigSegmentMs: "600000"}
	if !maps.Equal(cfg.Overrides, want) {
		t.Fatalf("overrides %v, want %v", cfg.Overrides, want)
	}
	for p := int32(0); p < 2; p++ {
		r := b.Replica("t", p)
		if res := appendOne(t, r, big()); codeOf(res.Err) != errcode.MessageTooLarge {
			t.Fatalf("partition %d: a 500-byte batch after max.message.bytes=100: %+v", p, res)
		}
		if res := appendOne(t, r, makeBatch(1, 1, 1)); res.Err != nil || res.LogAppendTime != testNow.UnixMilli() {
			t.Fatalf("partition %d: after LogAppendTime: %+v", p, res)
		}
		onReplica(t, r, func() {
			lim := r.log.Limits()
			if r.cfg != cfg || lim.SegmentBytes != 1<<20 || lim.RetentionBytes != 5000000 || lim.SegmentAge != 10*time.Minute || lim.RetentionAge != time.Hour {
				t.Errorf("partition %d runs with limits %+v", p, lim)
			}
		})
	}

	// Back to the defaults, but for retention.ms; AlterConfigs states the whole set.
	f("replace", []ConfigOp{set(ConfigRetentionMs, "7200000")}, true, false, errcode.None)
	if got := b.Snapshot().Topics["t"].Config.Overrides; !maps.Equal(got, map[string]string{ConfigRetentionMs: "7200000"}) {
		t.Fatalf("after replace: %v", got)
	}
	if res := appendOne(t, b.Replica("t", 1), big()); res.Err != nil || res.LogAppendTime != -1 {
		t.Fatalf("after replace: %+v", res)
	}
	f("delete", []ConfigOp{{Op: ConfigDelete, Key: ConfigRetentionMs}}, false, false, errcode.None)
	f("set again", []ConfigOp{set(ConfigMaxMessageBytes, "2000")}, false, false, errcode.None)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, Options{FS: fs})
	defer b.Close()
	tc := b.Snapshot().Topics["t"].Config
	if !maps.Equal(tc.Overrides, map[string]string{ConfigMaxMessageBytes: "2000"}) || tc.RetentionMs != DefaultDefaults.RetentionMs {
		t.Fatalf("after a restart: %v, retention %d", tc.Overrides, tc.RetentionMs)
	}
}

// TestAlterTopicConfigRollsAndRetains: a smaller segment.bytes rolls the active segment at the
// next append, and a retention.bytes set on a live topic deletes segments at the next check.
func TestAlterTopicConfigRollsAndRetains(t *testing.T) {
	b := openBroker(t, Options{RetentionCheck: 10 * time.Millisecond})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	r := b.Replica("t", 0)
	for i := 0; i < 12; i++ { // 12 × ~100 KiB
		if res := appendOne(t, r, makeBatch(1, testNow.UnixMilli(), 100<<10)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if n := len(r.log.Segments()); n != 1 {
		t.Fatalf("%d segments with 1 GiB segments", n)
	}
	if err := b.AlterTopicConfig("t", []ConfigOp{{Op: ConfigSet, Key: ConfigSegmentBytes, Value: "1048576"}}, false, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if res := appendOne(t, r, makeBatch(1, testNow.UnixMilli(), 100<<10)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	// The 1.2 MiB segment is sealed at the first append; the next ten batches fill one more.
	if segs := r.log.Segments(); len(segs) != 3 || segs[1] != 12 || segs[2] != 22 {
		t.Fatalf("segments %v after segment.bytes=1 MiB", segs)
	}
	if err := b.AlterTopicConfig("t", []ConfigOp{{Op: ConfigSet, Key: ConfigRetentionBytes, Value: "1048576"}}, false, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for r.LogStartOffset() != 22 {
		if time.Now().After(deadline) {
			t.Fatalf("log start offset %d, want 22 after retention.bytes=1 MiB", r.LogStartOffset())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestApplyConfigOpsLists(t *testing.T) {
	cur, err := BuildTopicConfig(nil, DefaultDefaults)
	if err != nil {
		t.Fatal(err)
	}
	f := func(ops []ConfigOp, want string) {
		t.Helper()
		got, err := applyConfigOps(cur, ops, false)
		if err != nil || got[ConfigCleanupPolicy] != want {
			t.Fatalf("%+v: %v %v, want cleanup.policy=%q", ops, got, err, want)
		}
	}
	op := func(o ConfigOpType, v string) []ConfigOp {
		return []ConfigOp{{Op: o, Key: ConfigCleanupPolicy, Value: v}}
	}
	// The default ("delete") is the list appended to when the topic has no override.
	f(op(ConfigAppend, "compact"), "delete,compact")
	f(op(ConfigAppend, "delete"), "delete")
	f(op(ConfigAppend, " compact , delete ,"), "delete,compact")
	f(op(ConfigSubtract, "delete"), "")
	f(op(ConfigSubtract, "compact"), "delete")
	withOverride := &TopicConfig{Overrides: map[string]string{ConfigCleanupPolicy: "compact,delete"}}
	got, err := applyConfigOps(withOverride, op(ConfigSubtract, "compact"), false)
	if err != nil || got[ConfigCleanupPolicy] != "delete" {
		t.Fatalf("subtract from an override: %v %v", got, err)
	}
	if withOverride.Overrides[ConfigCleanupPolicy] != "compact,delete" {
		t.Fatal("applyConfigOps changed the current overrides")
	}
}

// TestSetConfigWhileProducing changes a partition's config while producers append to it: the
// config belongs to the replica goroutine, so the race detector sees no conflict, and every
// append is answered.
func TestSetConfigWhileProducing(t *testing.T) {
	b := openBroker(t, Options{})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	r := b.Replica("t", 0)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCollector()
			for i := 0; i < 200; i++ {
				if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 10), Owner: c}); err != nil {
					t.Error(err)
					return
				}
				select {
				case d := <-c.ch:
					if d.res.Err != nil {
						t.Error(d.res.Err)
						return
					}
				case <-time.After(waitTimeout):
					t.Error("an append was not answered")
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		v := []string{"1000000", "2000000"}[i%2]
		if err := b.AlterTopicConfig("t", []ConfigOp{{Op: ConfigSet, Key: ConfigMaxMessageBytes, Value: v}}, false, false); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if hw := r.HighWatermark(); hw != 400 {
		t.Fatalf("high watermark %d, want 400", hw)
	}
}

func TestReplicaProducers(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/p", nil, FsyncPolicy{Mode: FsyncAlways})
	for _, records := range [][]byte{idempotentBatch(7, 0, 3), idempotentBatch(3, 10, 2), idempotentBatch(7, 3, 4), makeBatch(2, testNow.UnixMilli(), 1)} {
		if res := appendOne(t, r, records); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	got, err := r.Producers()
	if err != nil {
		t.Fatal(err)
	}
	want := []ProducerInfo{
		{ID: 3, Epoch: 0, LastSequence: 11, LastTimestamp: testNow.UnixMilli()},
		{ID: 7, Epoch: 0, LastSequence: 6, LastTimestamp: testNow.UnixMilli()},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("producers %+v, want %+v", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Producers(); err != ErrReplicaClosed {
		t.Fatalf("after Close: %v", err)
	}
	if err := r.SetConfig(&TopicConfig{}); err != ErrReplicaClosed {
		t.Fatalf("SetConfig after Close: %v", err)
	}
}

func TestBrokerConfigs(t *testing.T) {
	f := func(name string, o Options, wantStatic ...string) {
		t.Helper()
		b := openBroker(t, o)
		defer b.Close()
		var static []string
		seen := map[string]bool{}
		for _, c := range b.BrokerConfigs() {
			if seen[c.Name] || c.Value == "" {
				t.Fatalf("%s: %+v repeated or empty", name, c)
			}
			seen[c.Name] = true
			if !c.Default {
				static = append(static, c.Name)
			}
		}
		if !slices.Equal(static, wantStatic) {
			t.Fatalf("%s: configured settings %v, want %v", name, static, wantStatic)
		}
	}
	f("defaults", Options{AutoCreateTopics: true}, "log.dirs")
	f("configured", Options{NodeID: 3, Defaults: Defaults{RetentionMs: 1000, RetentionBytes: -1, SegmentBytes: 1 << 30, SegmentMs: DefaultDefaults.SegmentMs, MaxMessageBytes: DefaultDefaults.MaxMessageBytes},
		DefaultPartitions: 6, Fsync: FsyncPolicy{Mode: FsyncNever}},
		"broker.id", "node.id", "log.dirs", "log.retention.ms", "num.partitions", "auto.create.topics.enable", "log.flush.policy")
}
