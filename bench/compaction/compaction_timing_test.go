// Package compaction holds benchmarks of log compaction: one cleaning pass over a dirty log
// (its input throughput and its memory), and produce throughput through the Kafka listener to a
// compacted topic with the cleaner running and with it off. The figures and how to read them are
// in docs/BENCHMARKS.md ("Log compaction").
package compaction

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
	"github.com/thorstream/thorstream/reactor/kafka"
)

// templates holds the dirty logs the pass benchmarks copy, built once per size for the process.
var templates struct {
	mu   sync.Mutex
	root string
	dirs map[cleanSize]string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if templates.root != "" {
		os.RemoveAll(templates.root)
	}
	os.Exit(code)
}

// cleanSize is a dirty log: records updates, each of one of keys keys (uniformly at random), in
// segments of segment bytes.
type cleanSize struct{ keys, records, segment int }

const (
	valueBytes      = 100
	recordsPerBatch = 1000
)

// TestHarness checks in a second or two what the benchmarks rely on, so that `go test` without
// -bench keeps them from rotting: a pass over a template log cleans all of it, and a broker's
// cleaner compacts a topic produced through the Kafka listener.
func TestHarness(t *testing.T) {
	sz := cleanSize{keys: 100, records: 5000, segment: 64 << 10}
	dir := filepath.Join(t.TempDir(), "p-0")
	copyDir(t, dirtyLog(t, sz), dir)
	l, err := partition.Open(partition.Options{FS: vfs.Default, Dir: dir, SegmentBytes: int64(sz.segment), RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	segs := l.Segments()
	st, err := l.Clean(partition.CleanOptions{Force: true, Map: partition.NewOffsetMap(1 << 20), SegmentBytes: int64(sz.segment),
		OnWriter: func(fn func() error) error { return fn() }})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ran || st.EndMapped != segs[len(segs)-1] || st.Records != int64(sz.records) || st.Records-st.Removed != int64(sz.keys) {
		t.Fatalf("pass over the template log: %+v (segments %v)", st, segs)
	}

	br := startBroker(t, cluster.FsyncPolicy{}, true)
	if err := br.cluster.CreateTopic(cluster.TopicSpec{Name: "harness", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "1048576"}}, false); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.kafkaAddr), kgo.DefaultProduceTopic("harness"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	values := randomValues()
	var records []*kgo.Record
	for i := range 30_000 {
		records = append(records, &kgo.Record{Key: fmt.Appendf(nil, "key-%08d", i%1000), Value: values[i%len(values)]})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		var passes int64
		for _, s := range br.cluster.Cleaner().Stats() {
			passes += s.Passes
		}
		if passes > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no cleaning pass within a minute: %+v", br.cluster.Cleaner().Stats())
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// BenchmarkCleanerPass is one cleaning pass (partition.Log.Clean, as the cleaner runs it: a
// 128 MiB offset map, 1 MiB reads, no rate limit) over a log whose every segment but the active
// one is dirty: uncompressed batches of 1000 records, 12-byte keys, 100-byte values, 64 MiB
// segments (and 1 MiB ones, the smallest segment.bytes, for many swaps). One op is one pass; its
// bytes are the log bytes it cleans (every segment but the active one, which holds one record).
// writer-ms is the time the pass held the log's writer (the swaps, which a partition's appends
// wait for). The largest size, 1 M keys over 10 M records, is a 1.4 GB log, built once (about
// 10 s) and copied before each pass; it needs about 3 GB of temporary space.
func BenchmarkCleanerPass(b *testing.B) {
	sizes := []cleanSize{{100_000, 1_000_000, 64 << 20}, {1_000_000, 1_000_000, 64 << 20},
		{1_000_000, 10_000_000, 64 << 20}, {100_000, 1_000_000, 1 << 20}}
	for _, sz := range sizes {
		b.Run(fmt.Sprintf("keys=%d/records=%d/segment=%dMiB", sz.keys, sz.records, sz.segment>>20), func(b *testing.B) { benchmarkCleanerPass(b, sz) })
	}
}

func benchmarkCleanerPass(b *testing.B, sz cleanSize) {
	template := dirtyLog(b, sz)
	var input int64
	var last partition.CleanStats
	var peakGrowth, mapBytes int64
	var writer time.Duration
	var swaps int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "p-0")
		copyDir(b, template, dir)
		l, err := partition.Open(partition.Options{FS: vfs.Default, Dir: dir, SegmentBytes: int64(sz.segment), RetentionBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		segs := l.Segments()
		active := segs[len(segs)-1]
		input = 0
		for _, e := range dirSegments(b, dir) {
			if e.base < active {
				input += e.size
			}
		}
		m := partition.NewOffsetMap(cleaner.DefaultDedupeBufferBytes)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var peak atomic.Uint64
		stop, sampled := make(chan struct{}), make(chan struct{})
		go sampleHeap(&peak, stop, sampled)
		b.StartTimer()
		writer, swaps = 0, 0
		onWriter := func(fn func() error) error {
			begin := time.Now()
			err := fn()
			writer += time.Since(begin)
			swaps++
			return err
		}
		st, err := l.Clean(partition.CleanOptions{Force: true, Map: m, SegmentBytes: int64(sz.segment),
			ReadBufferBytes: cleaner.DefaultReadBufferBytes, OnWriter: onWriter})
		b.StopTimer()
		close(stop)
		<-sampled
		if err != nil {
			b.Fatal(err)
		}
		if !st.Ran || st.EndMapped != active || st.Records != int64(sz.records) {
			b.Fatalf("the pass did not clean the whole log: %+v (active segment at %d)", st, active)
		}
		if got := int64(l.Segments()[0]); got != 0 {
			b.Fatalf("log starts at %d after the pass", got)
		}
		last = st
		peakGrowth = max(peakGrowth, int64(peak.Load())-int64(base))
		mapBytes = m.Bytes()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.SetBytes(input)
	b.ReportMetric(float64(mapBytes)/(1<<20), "map-MiB")
	b.ReportMetric(float64(peakGrowth)/(1<<20), "heap-growth-MiB")
	b.ReportMetric(float64(last.Records), "records/pass")
	b.ReportMetric(float64(last.Removed)/float64(last.Records), "removed-share")
	b.ReportMetric(float64(last.BytesWritten)/(1<<20), "written-MiB")
	b.ReportMetric(float64(swaps), "swaps")
	b.ReportMetric(float64(writer.Microseconds())/1000, "writer-ms")
}

// sampleHeap records the largest HeapInuse seen every 2 ms until stop.
func sampleHeap(peak *atomic.Uint64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// dirtyLog builds (once per size and process) a closed log of sz and returns its directory.
func dirtyLog(b testing.TB, sz cleanSize) string {
	b.Helper()
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if dir, ok := templates.dirs[sz]; ok {
		return dir
	}
	if templates.root == "" {
		root, err := os.MkdirTemp("", "thorstream-compaction-bench-")
		if err != nil {
			b.Fatal(err)
		}
		templates.root, templates.dirs = root, map[cleanSize]string{}
	}
	dir := filepath.Join(templates.root, fmt.Sprintf("k%d-r%d-s%d", sz.keys, sz.records, sz.segment))
	l, err := partition.Open(partition.Options{FS: vfs.Default, Dir: dir, SegmentBytes: int64(sz.segment), RetentionBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(sz.keys), uint64(sz.records)))
	value := make([]byte, valueBytes)
	key := make([]byte, 0, 12)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	var bld batch.Builder
	for written := 0; written < sz.records; {
		bld.Reset()
		for range min(recordsPerBatch, sz.records-written) {
			for i := range value {
				value[i] = byte(rng.UintN(256))
			}
			key = fmt.Appendf(key[:0], "key-%08d", rng.IntN(sz.keys))
			bld.Append(key, value, ts, nil)
			ts++
			written++
		}
		raw := bld.Finish()
		batch.SetBaseOffset(raw, l.NextOffset())
		if err := l.Append([][]byte{raw}); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	// One more record in a segment of its own, so that every record above is in a segment the
	// pass may clean: reopened with a tiny segment size, the log rolls before this append.
	l, err = partition.Open(partition.Options{FS: vfs.Default, Dir: dir, SegmentBytes: 4096, RetentionBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	bld.Reset()
	bld.Append([]byte("key-00000000"), value, ts, nil)
	raw := bld.Finish()
	batch.SetBaseOffset(raw, l.NextOffset())
	if err := l.Append([][]byte{raw}); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	templates.dirs[sz] = dir
	return dir
}

type segFile struct {
	base int64
	size int64
}

// dirSegments lists the .log files of a partition directory.
func dirSegments(b testing.TB, dir string) []segFile {
	b.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var out []segFile
	for _, e := range entries {
		name := e.Name()
		if filepath.Ext(name) != ".log" {
			continue
		}
		base, err := strconv.ParseInt(name[:len(name)-4], 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, segFile{base, info.Size()})
	}
	return out
}

// copyDir copies the regular files of from into a new directory to.
func copyDir(b testing.TB, from, to string) {
	b.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		b.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduceWhileCleaning produces keyed records (100-byte random values over 100,000 keys)
// with franz-go's defaults (idempotent, acks=all, snappy, batches up to 1 MB) through the Kafka listener of a
// broker in this process (fsync always, 2 event loops) to a compacted topic with 1 MiB segments
// and the default min.cleanable.dirty.ratio (0.5). cleaner=on runs the broker's cleaner (one
// thread, no rate limit, looking for dirty logs every 100 ms), which compacts the topic while it
// is written; cleaner=off is the same broker without one. One op is one record; cpu-cores is the
// CPU time of the process (broker, cleaner and client) over the elapsed time.
func BenchmarkProduceWhileCleaning(b *testing.B) {
	for _, policy := range []cluster.FsyncPolicy{{Mode: cluster.FsyncAlways}, {Mode: cluster.FsyncInterval, Interval: 5 * time.Millisecond}} {
		for _, on := range []bool{false, true} {
			name := "cleaner=off"
			if on {
				name = "cleaner=on"
			}
			b.Run("fsync="+policy.String()+"/"+name, func(b *testing.B) { benchmarkProduceWhileCleaning(b, policy, on) })
		}
	}
}

func benchmarkProduceWhileCleaning(b *testing.B, policy cluster.FsyncPolicy, cleanerOn bool) {
	const keys = 100_000
	br := startBroker(b, policy, cleanerOn)
	topic := "compacted"
	err := br.cluster.CreateTopic(cluster.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "1048576",
	}}, false)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.kafkaAddr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	values := randomValues()
	keyPool := make([][]byte, keys)
	for i := range keyPool {
		keyPool[i] = fmt.Appendf(nil, "key-%08d", i)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: keyPool[0], Value: values[0]}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	done := func(_ *kgo.Record, err error) {
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(int64(len(keyPool[0]) + valueBytes))
	b.ReportAllocs()
	cpuBefore := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		cl.Produce(ctx, &kgo.Record{Key: keyPool[rng.IntN(keys)], Value: values[i%len(values)]}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric((cpuTime(b)-cpuBefore).Seconds()/b.Elapsed().Seconds(), "cpu-cores")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d records failed: %v", n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if c := br.cluster.Cleaner(); c != nil {
		var passes int64
		for _, s := range c.Stats() {
			passes += s.Passes
		}
		b.ReportMetric(float64(passes), "passes")
	}
}

// randomValues returns 4096 distinct random values of valueBytes: a record's value repeats 400 KB
// later, beyond the window of every codec but zstd's, so batches barely compress, as real data.
func randomValues() [][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([][]byte, 4096)
	for i := range out {
		out[i] = make([]byte, valueBytes)
		for j := range out[i] {
			out[i][j] = byte(rng.UintN(256))
		}
	}
	return out
}

// cpuTime is the user and system CPU time of the process so far (broker, cleaner and client).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// broker is a broker in this process with its Kafka listener on a loopback port.
type broker struct {
	cluster   *cluster.Broker
	engine    *reactor.Reactor
	kafkaAddr string
}

// startBroker starts a broker in b's temporary directory with the fsync policy, closed at
// cleanup, with or without a cleaner (one thread, no rate limit, 100 ms backoff).
func startBroker(b testing.TB, policy cluster.FsyncPolicy, cleanerOn bool) *broker {
	b.Helper()
	cb, err := cluster.Open(cluster.Options{DataDir: b.TempDir(), Fsync: policy, CleanerDisabled: !cleanerOn,
		Cleaner: cleaner.Options{Backoff: 100 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	coord, err := offsetslog.Start(cb, groups.DefaultConfig(), offsetslog.Options{})
	if err != nil {
		_ = cb.Close()
		b.Fatal(err)
	}
	var lastErr error
	for range 5 { // a free port may be taken before the reactor binds it
		addrs, err := freeAddrs(2)
		if err != nil {
			b.Fatal(err)
		}
		server, err := core.NewServer(core.Options{Broker: cb, Coordinator: coord, AdvertisedAddr: addrs[0]})
		if err != nil {
			b.Fatal(err)
		}
		ks, err := kafka.NewServer(kafka.Options{Broker: cb, Coordinator: coord, AdvertisedAddr: addrs[1]})
		if err != nil {
			b.Fatal(err)
		}
		engine := reactor.New(reactor.Options{Addr: addrs[0], KafkaAddr: addrs[1], Loops: 2}, server, ks)
		if err := engine.Start(); err != nil {
			lastErr = err
			continue
		}
		br := &broker{cluster: cb, engine: engine, kafkaAddr: addrs[1]}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopErr := engine.Stop(ctx)
			coord.Close()
			if err := errors.Join(stopErr, cb.Close()); err != nil {
				b.Errorf("closing the broker: %v", err)
			}
		})
		return br
	}
	coord.Close()
	_ = cb.Close()
	b.Fatalf("starting the reactor: %v", lastErr)
	return nil
}

// freeAddrs returns n distinct loopback addresses that were free a moment ago.
func freeAddrs(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
