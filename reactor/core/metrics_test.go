package core

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/vfs"
)

// gather collects c through a pedantic registry (which checks that Describe and Collect agree)
// and returns every sample by "name{label="value",...}", histograms by their _count, _sum and
// each _bucket.
func gather(t *testing.T, c ...prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	key := func(name string, labels []string) string {
		sort.Strings(labels)
		if len(labels) == 0 {
			return name
		}
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key(f.GetName(), labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key(f.GetName(), labels)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[key(f.GetName()+"_count", labels)] = float64(h.GetSampleCount())
				out[key(f.GetName()+"_sum", labels)] = h.GetSampleSum()
			}
		}
	}
	return out
}

func want(t *testing.T, got map[string]float64, samples map[string]float64) {
	t.Helper()
	for k, v := range samples {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestProtocolMetricsResolveEveryServedVersion(t *testing.T) {
	m := NewMetrics()
	p := m.Protocol("test", []API{{Key: 0, Name: "Produce", Min: 3, Max: 5}, {Key: 2, Name: "ListOffsets", Min: 1, Max: 1}})
	for _, c := range []struct {
		key, version int16
	}{{0, 3}, {0, 5}, {2, 1}, {0, 5}, {0, 2}, {1, 1}, {2, 2}, {-1, 0}, {99, 1}} {
		p.API(c.key, c.version).Request()
	}
	p.API(0, 4).Error()
	got := gather(t, m)
	want(t, got, map[string]float64{
		`thorstream_requests_total{api="Produce",protocol="test",version="3"}`:       1,
		`thorstream_requests_total{api="Produce",protocol="test",version="4"}`:       0, // resolved up front
		`thorstream_requests_total{api="Produce",protocol="test",version="5"}`:       2,
		`thorstream_requests_total{api="ListOffsets",protocol="test",version="1"}`:   1,
		`thorstream_requests_total{api="unsupported",protocol="test",version=""}`:    5, // 0 v2, key 1, 2 v2, -1, 99
		`thorstream_request_errors_total{api="Produce",protocol="test",version="4"}`: 1,
	})
	if first, again := p.API(0, 3), p.API(0, 3); first != again || first == p.API(0, 4) {
		t.Error("API does not return one set of counters per key and version")
	}
	// Off: every piece is nil and counts nothing.
	var off *Metrics
	off.Protocol("x", nil).API(0, 0).Request()
	off.Listener("x").Opened()
	off.WatchBudget(NewBudget(1))
	off.Protocol("x", nil).ObserveProduce(off.Protocol("x", nil).Start())
}

func TestMetricsListenerSessionsAndBudget(t *testing.T) {
	m := NewMetrics()
	l := m.Listener("kafka")
	l.Opened()
	l.Opened()
	l.Opened()
	l.Closed(ClosedBadFrame)
	l.Closed(ClosedByClient)
	budget := NewBudget(1000)
	m.WatchBudget(budget)
	budget.Force(300)

	tr := newFakeTransport()
	sess := NewSession(tr, Limits{MaxInFlight: 1, Metrics: m})
	seq, ok := sess.Begin(10)
	if !ok {
		t.Fatal("first frame refused")
	}
	for range 2 { // refused twice: paused once
		if _, ok := sess.Begin(10); ok {
			t.Fatal("second frame accepted past MaxInFlight 1")
		}
	}
	want(t, gather(t, m), map[string]float64{
		`thorstream_connections_open{listener="kafka"}`:                               1,
		`thorstream_connections_total{listener="kafka"}`:                              3,
		`thorstream_connections_closed_total{listener="kafka",reason="bad_frame"}`:    1,
		`thorstream_connections_closed_total{listener="kafka",reason="client"}`:       1,
		`thorstream_connections_closed_total{listener="kafka",reason="idle_timeout"}`: 0,
		`thorstream_connections_paused`:                                               1,
		`thorstream_inflight_bytes`:                                                   300,
		`thorstream_inflight_limit_bytes`:                                             1000,
	})
	sess.Complete(seq, nil) // frees room: resumed
	want(t, gather(t, m), map[string]float64{`thorstream_connections_paused`: 0})
	if _, ok := sess.Begin(10); !ok {
		t.Fatal("frame refused after room was made")
	}
	if _, ok := sess.Begin(10); ok {
		t.Fatal("frame accepted past MaxInFlight 1")
	}
	want(t, gather(t, m), map[string]float64{`thorstream_connections_paused`: 1})
	sess.Close() // a paused connection that closes is paused no more
	want(t, gather(t, m), map[string]float64{`thorstream_connections_paused`: 0})
}

// metricsEnv is a broker and a binary protocol server with metrics, driven through one session.
func metricsEnv(t *testing.T) (*Metrics, *cluster.Metrics, *env) {
	t.Helper()
	m, cm := NewMetrics(), cluster.NewMetrics()
	b, err := cluster.Open(cluster.Options{DataDir: "/d", FS: vfs.NewMem(), Fsync: cluster.FsyncPolicy{Mode: cluster.FsyncAlways}, Metrics: cm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	cm.Attach(b)
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "broker.local:9092", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	tr := newFakeTransport()
	return m, cm, &env{t: t, broker: b, server: s, tr: tr, sess: NewSession(tr, Limits{Metrics: m})}
}

func TestServerCountsRequestsErrorsLatenciesAndBytes(t *testing.T) {
	m, cm, e := metricsEnv(t)
	e.createTopic("t", 1)
	records := makeBatch(4, testNow.UnixMilli(), 1)
	if resp := e.produce("t", 0, records); resp.ErrorCode != 0 {
		t.Fatalf("produce: %+v", resp)
	}
	if resp := e.produce("t", 7, makeBatch(1, testNow.UnixMilli(), 1)); resp.ErrorCode == 0 {
		t.Fatal("produce to a partition that does not exist succeeded")
	}
	if resp := e.fetch(fetchReq(0, 0, "t", 0, 0)); resp.ErrorCode != 0 || len(resp.Records) == 0 {
		t.Fatalf("fetch: %+v", resp)
	}
	if resp := e.fetch(fetchReq(0, 0, "t", 0, 99)); resp.ErrorCode == 0 {
		t.Fatal("fetch past the log end succeeded")
	}
	// A body that does not decode, and a version the protocol does not serve.
	e.recv(e.send(proto.KeyProduce, proto.Version, []byte{1}))
	e.recv(e.send(proto.KeyFetch, 7, nil))

	got := gather(t, m, cm)
	want(t, got, map[string]float64{
		`thorstream_requests_total{api="CreateTopics",protocol="binary",version="1"}`:     1,
		`thorstream_requests_total{api="Produce",protocol="binary",version="1"}`:          3,
		`thorstream_request_errors_total{api="Produce",protocol="binary",version="1"}`:    2, // unknown partition, bad body
		`thorstream_requests_total{api="Fetch",protocol="binary",version="1"}`:            2,
		`thorstream_request_errors_total{api="Fetch",protocol="binary",version="1"}`:      1, // offset out of range
		`thorstream_requests_total{api="unsupported",protocol="binary",version=""}`:       1,
		`thorstream_request_errors_total{api="unsupported",protocol="binary",version=""}`: 1,
		`thorstream_request_duration_seconds_count{api="Produce",protocol="binary"}`:      2, // the one that decoded
		`thorstream_request_duration_seconds_count{api="Fetch",protocol="binary"}`:        2,
		`thorstream_topic_records_in_total{topic="t"}`:                                    4,
		`thorstream_topic_records_out_total{topic="t"}`:                                   4,
		`thorstream_topic_bytes_out_total{topic="t"}`:                                     float64(len(records)),
		`thorstream_partition_log_end_offset{partition="0",topic="t"}`:                    4,
	})
	if got[`thorstream_request_duration_seconds_sum{api="Produce",protocol="binary"}`] <= 0 {
		t.Error("produce latencies sum to nothing")
	}
}
