package cluster_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// appendDone hands each append's result to a channel.
type appendDone chan cluster.AppendResult

func (c appendDone) AppendDone(_ int, res cluster.AppendResult) { c <- res }

// replicationGauges scrapes m through a pedantic registry and returns its unlabelled
// replication gauges by name.
func replicationGauges(t *testing.T, m *cluster.Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		switch f.GetName() {
		case "thorstream_under_replicated_partitions", "thorstream_offline_partitions", "thorstream_replica_max_lag_records":
			if len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
				t.Fatalf("%s: %v, want one series without labels", f.GetName(), f.GetMetric())
			}
			out[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out
}

// The replication gauges of node 0: partitions it leads with a short ISR, partitions without a
// leader while it is the controller (and 0 once it is not), and the largest lag of a follower it
// has heard from.
func TestReplicationMetrics(t *testing.T) {
	const self = 0
	full := []int32{0, 1, 2}
	img := clustertest.Image(5, []meta.Node{clustertest.Node(0), clustertest.Node(1), clustertest.Node(2)},
		&meta.Topic{Name: "r", ID: [16]byte{1}, ReplicationFactor: 3, Partitions: []meta.Partition{
			{Replicas: full, ISR: []int32{0, 1}, Leader: self, LeaderEpoch: 3, PartitionEpoch: 3},          // led here, under-replicated
			{Replicas: []int32{1, 0, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2}, // short, but node 1's
			{Replicas: []int32{2, 0, 1}, ISR: []int32{}, Leader: meta.NoLeader, LeaderEpoch: 4, PartitionEpoch: 6},
			{Replicas: full, ISR: full, Leader: self, LeaderEpoch: 2, PartitionEpoch: 2},
		}},
		&meta.Topic{Name: "single", ID: [16]byte{2}, ReplicationFactor: 1, Partitions: []meta.Partition{clustertest.Led(self), clustertest.Led(2)}},
	)
	store := clustertest.Fixed(img, self)
	m := cluster.NewMetrics()
	b, err := cluster.Open(cluster.Options{NodeID: self, DataDir: "/data", FS: vfs.NewMem(), CleanerDisabled: true, Metrics: m,
		OpenStore: func() (cluster.MetadataStore, error) { return store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.Attach(b)
	clustertest.WaitApplied(t, b, img.Index)

	f := func(what string, under, offline, maxLag float64) {
		t.Helper()
		got := replicationGauges(t, m)
		want := map[string]float64{"thorstream_under_replicated_partitions": under, "thorstream_offline_partitions": offline, "thorstream_replica_max_lag_records": maxLag}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s = %v (present %v), want %v", what, k, g, ok, v)
			}
		}
	}
	f("no follower heard from", 1, 1, 0)

	// Ten records on r/0 and r/3; node 1 fetched 4 of r/0's, node 2 all of r/3's; node 2 has not
	// fetched r/0 (unknown: not counted).
	var bb batch.Builder
	bb.Reset()
	for range 10 {
		bb.Append(nil, []byte("v"), time.Now().UnixMilli(), nil)
	}
	records := bb.Finish()
	for _, p := range []int32{0, 3} {
		done := make(appendDone, 1)
		if err := b.Replica("r", p).Submit(&cluster.AppendRequest{Records: append([]byte(nil), records...), Owner: done, Acks: 1, TimeoutMs: 5000}); err != nil {
			t.Fatal(err)
		}
		if res := <-done; res.Err != nil {
			t.Fatalf("append to r/%d: %v", p, res.Err)
		}
	}
	fetch := func(p int32, from int32, offset int64, epoch int32) {
		t.Helper()
		inc := int64(img.Nodes[from].Incarnation)
		if got := b.Replica("r", p).FollowerFetched(from, inc, epoch, offset, -1, offset); got.Code != errcode.None || got.DivergingEpoch != -1 {
			t.Fatalf("node %d's fetch of r/%d at %d: %+v", from, p, offset, got)
		}
	}
	fetch(0, 1, 4, 3)
	fetch(3, 2, 10, 2)
	f("followers heard from", 1, 1, 6)
	fetch(0, 1, 10, 3)
	f("every follower caught up", 1, 1, 0)

	// Another node is the controller: it counts the offline partitions, this one does not.
	store.SetController(1)
	f("not the controller", 1, 0, 0)
}
