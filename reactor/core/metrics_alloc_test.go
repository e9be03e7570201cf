//go:build !race

package core

import (
	"runtime"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestProduceAllocationsWithMetrics is TestProduceAllocations with every metric on: request and
// error counters, the produce latency histogram, the session's pause gauge, and the replica's
// topic counters, group commit, sync and fsync wait histograms. Counting must not allocate.
func TestProduceAllocationsWithMetrics(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fs     func(t *testing.T) (vfs.FS, string)
		policy cluster.FsyncMode
	}{
		{"mem/fsync=always", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "/d" }, cluster.FsyncAlways},
		{"os/fsync=never", func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }, cluster.FsyncNever},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := tc.fs(t)
			m, cm := NewMetrics(), cluster.NewMetrics()
			b, err := cluster.Open(cluster.Options{DataDir: dir, FS: fs, Fsync: cluster.FsyncPolicy{Mode: tc.policy}, AutoCreateTopics: true, Metrics: cm})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cm.Attach(b)
			const topic = "orders.payments.eu-west-1.v2-events" // over 32 bytes, as in TestProduceAllocations
			if err := b.CreateTopic(cluster.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}, false); err != nil {
				t.Fatal(err)
			}
			s, err := NewServer(Options{Broker: b, AdvertisedAddr: "h:1", Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{}, 1)
			tr := newFakeTransport()
			tr.onWritev = func(*Response) { done <- struct{}{} }
			sess := NewSession(tr, Limits{Metrics: m})

			req, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: proto.KeyProduce, APIVersion: 1, CorrelationID: 1})
			req = produceReq(proto.AcksLeader, topic, 0, makeBatch(5, testNow.UnixMilli(), 1)).AppendTo(req)
			proto.FinishFrame(req, start, 0)
			body := req[proto.SizeLen:]
			one := func() {
				f := NewFrame(len(body))
				copy(f.Bytes(), body)
				seq, ok := sess.Begin(len(body))
				if !ok {
					panic("session refused")
				}
				s.HandleFrame(sess, seq, f)
				<-done
			}
			for range 2000 {
				one()
			}
			allocs := testing.AllocsPerRun(2000, one)
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const n = 5000
			for range n {
				one()
			}
			runtime.ReadMemStats(&after)
			t.Logf("with metrics: %.2f allocations per produce request; exact: %d in %d (%.4f per request)",
				allocs, after.Mallocs-before.Mallocs, n, float64(after.Mallocs-before.Mallocs)/n)
			if allocs > 0 {
				t.Errorf("produce with metrics allocates %.2f times per request, want 0", allocs)
			}
			// The metrics did count: the requests, and the records they appended.
			got := gather(t, m, cm)
			if c := got[`thorstream_requests_total{api="Produce",protocol="binary",version="1"}`]; c < 9000 {
				t.Errorf("%v produce requests counted, want 9000 or more", c)
			}
			if c := got[`thorstream_topic_records_in_total{topic="`+topic+`"}`]; c < 45000 {
				t.Errorf("%v records counted in, want 45000 or more", c)
			}
		})
	}
}
