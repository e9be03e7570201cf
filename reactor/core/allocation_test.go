//go:build !race

package core

import (
	"runtime"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/vfs"
)

// maxProduceAllocs is what a Produce request may allocate in steady state, end to end through
// the core, the replica and the log (FsyncNever, one partition, one batch). See the report in
// TestProduceAllocations' log for where any allocation comes from.
const maxProduceAllocs = 0

func produceAllocs(t *testing.T, fs vfs.FS, dir string) float64 {
	// Auto-creation on, as brokers run by default: the produce path checks every topic for it.
	b, err := cluster.Open(cluster.Options{DataDir: dir, FS: fs, Fsync: cluster.FsyncPolicy{Mode: cluster.FsyncNever}, AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A name longer than 32 bytes: a []byte to string conversion of a shorter one can use the
	// stack, which would hide an allocation real topic names pay.
	const topic = "orders.payments.eu-west-1.v2-events"
	if err := b.CreateTopic(cluster.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 1)
	tr := newFakeTransport()
	tr.onWritev = func(*Response) { done <- struct{}{} }
	sess := NewSession(tr, Limits{})

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
	for i := 0; i < 2000; i++ { // warm the pools, the log's buffers and the index
		one()
	}
	allocs := testing.AllocsPerRun(2000, one) // truncates to a whole number per run
	// The exact average, to see amortised allocations (slice growth) that truncation hides.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 5000
	for i := 0; i < n; i++ {
		one()
	}
	runtime.ReadMemStats(&after)
	t.Logf("exact: %d allocations in %d produce requests (%.4f per request)", after.Mallocs-before.Mallocs, n, float64(after.Mallocs-before.Mallocs)/n)
	return allocs
}

func TestProduceAllocations(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
	}{
		{"os", func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
		{"mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "/d" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := tc.fs(t)
			allocs := produceAllocs(t, fs, dir)
			t.Logf("produce allocates %.2f times per request in steady state", allocs)
			if allocs > maxProduceAllocs {
				t.Errorf("produce allocates %.2f times per request, want at most %d", allocs, maxProduceAllocs)
			}
		})
	}
}
