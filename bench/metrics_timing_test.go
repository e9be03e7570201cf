package bench

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor/core"
)

// BenchmarkCoreProduceMetrics is BenchmarkCoreProduce with every metric on, as the broker runs
// with THORSTREAM_HTTP_ADDR set: request and error counters, the produce latency histogram, the
// session's pause gauge, the topic's bytes and records, the group commit histogram and, with
// fsync=always, the sync and fsync wait histograms. allocs/op must stay 0; ns/op against
// BenchmarkCoreProduce's is the metrics' cost.
func BenchmarkCoreProduceMetrics(b *testing.B) {
	for _, policy := range []cluster.FsyncMode{cluster.FsyncNever, cluster.FsyncAlways} {
		name := "fsync=never"
		if policy == cluster.FsyncAlways {
			name = "fsync=always"
		}
		b.Run(name, func(b *testing.B) { benchmarkCoreProduceMetrics(b, policy) })
	}
}

func benchmarkCoreProduceMetrics(b *testing.B, policy cluster.FsyncMode) {
	m, cm := core.NewMetrics(), cluster.NewMetrics()
	// Registered as the broker registers them, so a scrape could run alongside.
	prometheus.NewRegistry().MustRegister(m, cm)
	cb, err := cluster.Open(cluster.Options{DataDir: b.TempDir(), Fsync: cluster.FsyncPolicy{Mode: policy}, Metrics: cm})
	if err != nil {
		b.Fatal(err)
	}
	defer cb.Close()
	cm.Attach(cb)
	if err := cb.CreateTopic(cluster.TopicSpec{Name: "core", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		b.Fatal(err)
	}
	server, err := core.NewServer(core.Options{Broker: cb, AdvertisedAddr: "127.0.0.1:9092", Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	tr := &instantTransport{written: make(chan struct{}, 1)}
	sess := core.NewSession(tr, core.Limits{Metrics: m})

	records, count := build16KiBBatch(time.Now().UnixMilli())
	req, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: proto.KeyProduce, APIVersion: proto.Version, CorrelationID: 1})
	req = (&proto.ProduceRequest{Acks: proto.AcksAll, TimeoutMs: 30000, Topics: []proto.ProduceTopic{{
		Name: []byte("core"), Partitions: []proto.ProducePartition{{Partition: 0, Records: records}},
	}}}).AppendTo(req)
	proto.FinishFrame(req, start, 0)
	body := req[proto.SizeLen:]

	one := func() {
		f := core.NewFrame(len(body))
		copy(f.Bytes(), body)
		seq, ok := sess.Begin(len(body))
		if !ok {
			b.Fatal("session refused the frame")
		}
		server.HandleFrame(sess, seq, f)
		<-tr.written
	}
	warm := 2000
	if policy == cluster.FsyncAlways {
		warm = 200 // a sync each: this disk takes milliseconds
	}
	for range warm {
		one()
	}

	b.SetBytes(int64(len(records)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		one()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	reportRecords(b, b.N*count)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "mallocs/req")
}
