package cluster

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/thorstream/thorstream/log/vfs"
)

// gather collects c through a pedantic registry (which checks that Describe and Collect agree)
// and returns every sample by "name{label="value",...}", histograms by their _count and _sum.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			suffix := ""
			if len(labels) > 0 {
				suffix = "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[f.GetName()+suffix] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[f.GetName()+suffix] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[f.GetName()+"_count"+suffix] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+suffix] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// want checks samples of got.
func want(t *testing.T, got map[string]float64, samples map[string]float64) {
	t.Helper()
	for k, v := range samples {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestMetricsCountAppendsSyncsFetchesAndPartitions(t *testing.T) {
	m := NewMetrics()
	b, err := Open(Options{DataDir: "/d", FS: vfs.NewMem(), Fsync: FsyncPolicy{Mode: FsyncAlways}, Metrics: m, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.Attach(b)
	if err := b.CreateTopic(TopicSpec{Name: "orders", Partitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	r := b.Replica("orders", 1)
	c := newCollector()
	first, second := makeBatch(3, testNow.UnixMilli(), 10), makeBatch(2, testNow.UnixMilli(), 20)
	for slot, records := range [][]byte{first, second} {
		if err := r.Submit(&AppendRequest{Records: records, Owner: c, Slot: slot}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if d := c.next(t); d.res.Err != nil {
			t.Fatalf("append %d: %v", d.slot, d.res.Err)
		}
	}
	stored := float64(len(first) + len(second))
	got := gather(t, m)
	want(t, got, map[string]float64{
		`thorstream_topic_records_in_total{topic="orders"}`:                   5,
		`thorstream_topic_bytes_in_total{topic="orders"}`:                     stored,
		`thorstream_log_group_commit_records_sum`:                             5,
		`thorstream_produce_fsync_wait_seconds_count`:                         2, // each append waited for a sync
		`thorstream_partition_log_end_offset{partition="1",topic="orders"}`:   5,
		`thorstream_partition_log_start_offset{partition="1",topic="orders"}`: 0,
		`thorstream_partition_size_bytes{partition="1",topic="orders"}`:       stored,
		`thorstream_partition_segments{partition="1",topic="orders"}`:         1,
		`thorstream_partition_fenced{partition="1",topic="orders"}`:           0,
		`thorstream_partition_log_end_offset{partition="0",topic="orders"}`:   0,
		`thorstream_topic_records_out_total{topic="orders"}`:                  0,
	})
	// One or two groups, each written with one write and synced once.
	groups := got[`thorstream_log_group_commit_records_count`]
	if groups < 1 || groups > 2 || got[`thorstream_log_fsyncs_total`] != groups || got[`thorstream_log_fsync_duration_seconds_count`] != groups {
		t.Errorf("groups %v, fsyncs %v, fsync durations %v: want one sync per group", groups,
			got[`thorstream_log_fsyncs_total`], got[`thorstream_log_fsync_duration_seconds_count`])
	}

	data, err := r.Read(nil, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	r.CountFetched(data)
	want(t, gather(t, m), map[string]float64{
		`thorstream_topic_records_out_total{topic="orders"}`: 5,
		`thorstream_topic_bytes_out_total{topic="orders"}`:   float64(len(data)),
	})

	// A deleted topic's series go: its counters and its partitions.
	if err := b.DeleteTopic("orders"); err != nil {
		t.Fatal(err)
	}
	for k := range gather(t, m) {
		if strings.Contains(k, `topic="orders"`) {
			t.Errorf("%s is still exported after the topic was deleted", k)
		}
	}
}

func TestMetricsWithoutFsyncCountNoSyncWait(t *testing.T) {
	m := NewMetrics()
	b, err := Open(Options{DataDir: "/d", FS: vfs.NewMem(), Fsync: FsyncPolicy{Mode: FsyncNever}, Metrics: m, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.Attach(b)
	if err := b.CreateTopic(TopicSpec{Name: "logs", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if err := b.Replica("logs", 0).Submit(&AppendRequest{Records: makeBatch(4, testNow.UnixMilli(), 5), Owner: c}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); d.res.Err != nil {
		t.Fatal(d.res.Err)
	}
	want(t, gather(t, m), map[string]float64{
		`thorstream_topic_records_in_total{topic="logs"}`: 4,
		`thorstream_log_group_commit_records_count`:       1,
		`thorstream_log_fsyncs_total`:                     0,
		`thorstream_produce_fsync_wait_seconds_count`:     0,
	})
}

func TestMetricsCountBytesRecoveryCut(t *testing.T) {
	dir := t.TempDir()
	open := func(m *Metrics) *Broker {
		t.Helper()
		b, err := Open(Options{DataDir: dir, Fsync: FsyncPolicy{Mode: FsyncAlways}, Metrics: m, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open(nil) // metrics off: replicas count nothing, and nothing breaks
	if err := b.CreateTopic(TopicSpec{Name: "cut", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	if err := b.Replica("cut", 0).Submit(&AppendRequest{Records: makeBatch(2, testNow.UnixMilli(), 8), Owner: c}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); d.res.Err != nil {
		t.Fatal(d.res.Err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn write after the last batch: recovery cuts these bytes at the next start.
	logs, _ := filepath.Glob(filepath.Join(dir, "cut-0", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("segments: %v", logs)
	}
	f, err := os.OpenFile(logs[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const torn = 37
	if _, err := f.Write(make([]byte, torn)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	m := NewMetrics()
	b = open(m)
	defer b.Close()
	m.Attach(b)
	want(t, gather(t, m), map[string]float64{
		`thorstream_recovery_dropped_bytes_total`:                        torn,
		`thorstream_partition_log_end_offset{partition="0",topic="cut"}`: 2,
	})
}
