package bench

import (
	"runtime"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor/core"
)

// instantTransport completes every write at once, as a connection whose write finished would,
// and tells the benchmark that the response left.
type instantTransport struct {
	written chan struct{} // capacity 1: one request in flight at a time
}

func (t *instantTransport) Writev(r *core.Response) error {
	r.Written(nil)
	t.written <- struct{}{}
	return nil
}

func (t *instantTransport) Wake()  {}
func (t *instantTransport) Close() {}

// build16KiBBatch returns a RecordBatch of as many 100-byte records as fit in 16 KiB, and their
// count.
func build16KiBBatch(ts int64) ([]byte, int) {
	var bl batch.Builder
	bl.Reset()
	value := make([]byte, recordBytes)
	for bl.Size()+batch.EstimateRecordSize(nil, value, nil) <= batchBytes {
		bl.Append(nil, value, ts, nil)
	}
	return append([]byte(nil), bl.Finish()...), bl.Len()
}

// BenchmarkCoreProduce measures the request core without sockets: core.Server.HandleFrame with
// a Produce frame of one 16 KiB batch (acks=all) for a one-partition topic on the OS filesystem,
// fsync=never, through the replica goroutine and the log, until the response is handed to the
// transport. One op is one request, one at a time; allocs/op is what the server allocates per
// produce request in steady state (the frame copy a loop would make is pooled, as in the
// reactor).
func BenchmarkCoreProduce(b *testing.B) {
	cb, err := cluster.Open(cluster.Options{DataDir: b.TempDir(), Fsync: cluster.FsyncPolicy{Mode: cluster.FsyncNever}})
	if err != nil {
		b.Fatal(err)
	}
	defer cb.Close()
	if err := cb.CreateTopic(cluster.TopicSpec{Name: "core", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		b.Fatal(err)
	}
	server, err := core.NewServer(core.Options{Broker: cb, AdvertisedAddr: "127.0.0.1:9092"})
	if err != nil {
		b.Fatal(err)
	}
	tr := &instantTransport{written: make(chan struct{}, 1)}
	sess := core.NewSession(tr, core.Limits{})

	records, count := build16KiBBatch(time.Now().UnixMilli())
	req, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: proto.KeyProduce, APIVersion: proto.Version, CorrelationID: 1})
	req = (&proto.ProduceRequest{Acks: proto.AcksAll, TimeoutMs: 30000, Topics: []proto.ProduceTopic{{
		Name: []byte("core"), Partitions: []proto.ProducePartition{{Partition: 0, Records: records}},
	}}}).AppendTo(req)
	proto.FinishFrame(req, start, 0)
	body := req[proto.SizeLen:]

	one := func() {
		// What the reactor does with a whole frame: a pooled copy, a sequence number, the core.
		f := core.NewFrame(len(body))
		copy(f.Bytes(), body)
		seq, ok := sess.Begin(len(body))
		if !ok {
			b.Fatal("session refused the frame")
		}
		server.HandleFrame(sess, seq, f)
		<-tr.written
	}
	for range 2000 { // warm the pools, the log's buffers and the index
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
	// allocs/op is truncated to a whole number; this is the exact average, which shows the
	// amortised allocations (slice growth, segment rolls) that truncation hides.
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "mallocs/req")
}
