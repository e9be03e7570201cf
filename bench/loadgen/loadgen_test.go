package loadgen_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/thorstream/thorstream/bench/loadgen"
	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
	"github.com/thorstream/thorstream/reactor/kafka"
)

// startBroker runs a broker in this process the way cmd/thorstream wires one, with the Kafka
// listener on a free loopback port and data in a temporary directory, and returns the Kafka
// address. It retries when another process takes a port between finding and binding it.
func startBroker(t *testing.T) string {
	t.Helper()
	broker, err := cluster.Open(cluster.Options{DataDir: t.TempDir(), AutoCreateTopics: true, DefaultPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	coord, err := offsetslog.Start(broker, cfg, offsetslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 {
		addr, kafkaAddr := freeAddr(t), freeAddr(t)
		server, err := core.NewServer(core.Options{Broker: broker, Coordinator: coord, AdvertisedAddr: addr})
		if err != nil {
			t.Fatal(err)
		}
		kafkaServer, err := kafka.NewServer(kafka.Options{Broker: broker, Coordinator: coord, AdvertisedAddr: kafkaAddr})
		if err != nil {
			t.Fatal(err)
		}
		engine := reactor.New(reactor.Options{Addr: addr, KafkaAddr: kafkaAddr, Loops: 2}, server, kafkaServer)
		if lastErr = engine.Start(); lastErr != nil {
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopErr := engine.Stop(ctx)
			coord.Close()
			if err := errors.Join(stopErr, broker.Close()); err != nil {
				t.Errorf("stopping the broker: %v", err)
			}
		})
		return kafkaAddr
	}
	coord.Close()
	_ = broker.Close()
	t.Fatalf("starting the reactor: %v", lastErr)
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

func TestProduceThenConsumeAgainstBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const records = 20_000

	produced, err := loadgen.Produce(ctx, loadgen.Options{
		Brokers: []string{addr}, Topic: "load", Records: records, Partitions: 3, Compression: "lz4",
	})
	if err != nil {
		t.Fatal(err)
	}
	if produced.Records != records || produced.Failed != 0 || produced.Bytes != records*100 {
		t.Fatalf("produce: %d records, %d bytes, %d failed %v; want %d, %d, 0",
			produced.Records, produced.Bytes, produced.Failed, produced.FirstErrors, records, records*100)
	}
	// An unpaced run measures the latency of one record in 16.
	if l := produced.Latency; l.Count != records/16 || l.P50Ms <= 0 || l.P50Ms > l.P90Ms || l.P90Ms > l.P99Ms || l.P99Ms > l.MaxMs {
		t.Fatalf("produce latency summary inconsistent: %+v", l)
	}
	checkSeries(t, produced)

	consumed, err := loadgen.Consume(ctx, loadgen.Options{Brokers: []string{addr}, Topic: "load", Records: records})
	if err != nil {
		t.Fatal(err)
	}
	if consumed.Records != records || consumed.Failed != 0 || consumed.Bytes != records*100 {
		t.Fatalf("consume: %d records, %d bytes, %d failed %v; want %d, %d, 0",
			consumed.Records, consumed.Bytes, consumed.Failed, consumed.FirstErrors, records, records*100)
	}

	checkSeries(t, consumed)

	// Without --records or --duration a run reads to the end offsets it found at its start.
	toEnd, err := loadgen.Consume(ctx, loadgen.Options{Brokers: []string{addr}, Topic: "load"})
	if err != nil {
		t.Fatal(err)
	}
	if toEnd.Records != records || toEnd.Failed != 0 || toEnd.Options.Until != "the end offsets at the start" {
		t.Fatalf("consume to the end: %d records, %d failed %v, until %q; want %d, 0",
			toEnd.Records, toEnd.Failed, toEnd.FirstErrors, toEnd.Options.Until, records)
	}
	checkSeries(t, toEnd)

	// From the end without a bound, a run reads until it is interrupted.
	liveCtx, liveCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	live, err := loadgen.Consume(liveCtx, loadgen.Options{Brokers: []string{addr}, Topic: "load", From: "end"})
	liveCancel()
	if err != nil {
		t.Fatal(err)
	}
	if live.Records != 0 || live.Failed != 0 || live.Options.Until != "interrupted" || live.ElapsedSec <= 0 {
		t.Fatalf("consume from the end: %d records, %d failed %v in %.3f s, until %q; want 0, 0, until interrupted",
			live.Records, live.Failed, live.FirstErrors, live.ElapsedSec, live.Options.Until)
	}

	// Asking for more than the topic holds ends after the idle timeout, the shortfall failed.
	short, err := loadgen.Consume(ctx, loadgen.Options{
		Brokers: []string{addr}, Topic: "load", Records: records + 5, IdleTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if short.Records != records || short.Failed != 5 || len(short.FirstErrors) != 1 {
		t.Fatalf("short consume: %d records, %d failed %v; want %d, 5, one error", short.Records, short.Failed, short.FirstErrors, records)
	}
}

func TestEndToEndAgainstBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The topic holds records already: the run must start after them.
	if _, err := loadgen.Produce(ctx, loadgen.Options{Brokers: []string{addr}, Topic: "e2e", Records: 500}); err != nil {
		t.Fatal(err)
	}
	r, err := loadgen.EndToEnd(ctx, loadgen.Options{Brokers: []string{addr}, Topic: "e2e", Records: 2000, Rate: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if r.Produced != 2000 || r.Records != 2000 || r.Failed != 0 {
		t.Fatalf("e2e: %d produced, %d received, %d failed %v", r.Produced, r.Records, r.Failed, r.FirstErrors)
	}
	if r.ElapsedSec < 0.4 {
		t.Fatalf("2000 records at 4000/s took %.3f s, want about 0.5 s", r.ElapsedSec)
	}
	if r.Latency.Count != 2000 || r.Latency.MaxMs <= 0 {
		t.Fatalf("e2e latency: %+v", r.Latency)
	}
	checkSeries(t, r)
}

// checkSeries checks that r's per-second series accounts for every record of the run, in
// order, and ends with the run.
func checkSeries(t *testing.T, r *loadgen.Result) {
	t.Helper()
	if len(r.Series) == 0 {
		t.Fatalf("%s: no series", r.Mode)
	}
	var records, bytes int64
	prev := 0.0
	for _, s := range r.Series {
		if s.TimeSec <= prev || s.Records < 0 || s.RecordsPerSec < 0 {
			t.Fatalf("%s: series out of order or negative: %+v", r.Mode, r.Series)
		}
		records, bytes, prev = records+s.Records, bytes+s.Bytes, s.TimeSec
	}
	if records != r.Records || bytes != r.Bytes {
		t.Fatalf("%s: series adds up to %d records, %d bytes; the run counted %d, %d", r.Mode, records, bytes, r.Records, r.Bytes)
	}
	// A final interval with nothing in it shorter than a quarter of the sample interval is
	// left out of the series.
	if prev+0.25 < r.ElapsedSec {
		t.Fatalf("%s: series ends at %.3f s, the run at %.3f s", r.Mode, prev, r.ElapsedSec)
	}
}

func TestValidate(t *testing.T) {
	ok := loadgen.Options{Brokers: []string{"127.0.0.1:9092"}, Topic: "t", Records: 1}
	f := func(mode string, change func(*loadgen.Options), wantErr bool) {
		t.Helper()
		o := ok
		change(&o)
		err := o.Validate(mode)
		if (err != nil) != wantErr || (err != nil && !errors.Is(err, loadgen.ErrOptions)) {
			t.Errorf("%s %+v: err %v, want error %v", mode, o, err, wantErr)
		}
	}
	none := func(*loadgen.Options) {}
	f(loadgen.ModeProduce, none, false)
	f(loadgen.ModeConsume, none, false)
	f(loadgen.ModeEndToEnd, none, false)
	f("bogus", none, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Brokers = nil }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Topic = "" }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Records = 0 }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Records, o.Duration = 0, time.Second }, false)
	f(loadgen.ModeEndToEnd, func(o *loadgen.Options) { o.Records = 0 }, true)
	f(loadgen.ModeConsume, func(o *loadgen.Options) { o.Records = 0 }, false) // reads to the end offsets
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Acks = "2" }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Acks = "1"; o.Idempotent = true }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Compression = "brotli" }, true)
	f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Rate = -1 }, true)
	f(loadgen.ModeEndToEnd, func(o *loadgen.Options) { o.RecordSize = 4 }, true)
	f(loadgen.ModeConsume, func(o *loadgen.Options) { o.From = "middle" }, true)
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		f(loadgen.ModeProduce, func(o *loadgen.Options) { o.Compression = c }, false)
	}
}
