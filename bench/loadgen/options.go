// Package loadgen drives any Kafka-compatible broker with franz-go, the way
// kafka-producer-perf-test and kafka-consumer-perf-test do, and measures it: Produce (records
// of a fixed size at a fixed or unlimited rate, send-to-ack latency per record), Consume (every
// partition read directly, no consumer group) and EndToEnd (timestamped records produced at a
// fixed rate and consumed in the same process).
//
// A run is bounded by a record count or a duration (Consume without either reads up to the end
// offsets it finds at its start), prints a progress line every second, samples its throughput
// and latency every second into a series, and returns a Result; WriteReport renders one as a
// self-contained HTML or SVG page. Latencies go to a fixed-size log-linear Histogram (relative error under
// 1 %). Throughput in MiB/s uses 2^20 bytes, as Kafka's perf tools do, and counts key and value
// bytes only.
//
// cmd/thorload is the command-line front end.
package loadgen

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrOptions is wrapped by every validation error, so a caller can tell bad usage apart from a
// failed run.
var ErrOptions = errors.New("loadgen: invalid options")

// NoLinger in Options.Linger sends every batch at once (the zero value means the default).
const NoLinger time.Duration = -1

// Options configures a run. The zero value of a field takes the documented default; the same
// struct serves the three modes, each using the fields it names.
type Options struct {
	// Brokers are the seed host:port addresses. Required.
	Brokers []string
	// Topic is the topic to write or read. Required.
	Topic string

	// Records stops the run after this many records (acknowledged for Produce, received for
	// Consume and EndToEnd). Duration stops it after this long. With both, the first reached
	// ends the run. Produce and EndToEnd need at least one. Consume without either reads every
	// partition up to the end offsets it finds when it starts, then stops (From "beginning"),
	// or reads until its context is cancelled (From "end").
	Records  int64
	Duration time.Duration

	// RecordSize is the value size in bytes (Produce, EndToEnd). Default 100; EndToEnd needs 8.
	RecordSize int
	// Rate caps records sent per second; 0 is unlimited (Produce). EndToEnd's default is 1000.
	Rate float64
	// Partitions, when positive, creates the topic with this many partitions if it is missing
	// (Produce, EndToEnd). When 0 the topic must exist or the broker must auto-create it.
	Partitions int32
	// Acks is "all" (default), "1" or "0".
	Acks string
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// Idempotent enables the idempotent producer; it needs Acks "all".
	Idempotent bool
	// Linger is how long a partition waits for more records before a batch is sent. Default
	// 10 ms (franz-go's).
	Linger time.Duration
	// BatchBytes is the largest record batch. Default 1000012 (Kafka's max.message.bytes).
	BatchBytes int32
	// MaxInFlight is the produce requests in flight per broker without idempotence (the
	// idempotent producer always uses 5). Default 5.
	MaxInFlight int
	// Producers is how many producer clients send in parallel, each from its own goroutine
	// with its share of Rate and Records (Produce). Default 1. One franz-go client tops out at
	// what one core can feed it; a second one lets a 2-core load box saturate a broker.
	Producers int

	// From is where Consume starts: "beginning" (default) or "end".
	From string
	// IdleTimeout ends Consume, and EndToEnd's wait for the last records, when no record has
	// arrived for this long; missing records are then errors. Default 10 s.
	IdleTimeout time.Duration

	// Progress receives a progress line every ProgressInterval (default 1 s); nil is silent.
	Progress         io.Writer
	ProgressInterval time.Duration
	// SampleInterval is the length of one interval of Result.Series. Default 1 s.
	SampleInterval time.Duration
}

// untilEnd reports whether a Consume run reads up to the end offsets seen at its start.
func (o Options) untilEnd(mode string) bool {
	return mode == ModeConsume && o.Records == 0 && o.Duration == 0 && o.From != "end"
}

// until describes what ends a run of mode, for the Result.
func (o Options) until(mode string) string {
	switch {
	case o.Records > 0 && o.Duration > 0:
		return fmt.Sprintf("%d records or %v", o.Records, o.Duration)
	case o.Records > 0:
		return fmt.Sprintf("%d records", o.Records)
	case o.Duration > 0:
		return o.Duration.String()
	case o.untilEnd(mode):
		return "the end offsets at the start"
	}
	return "interrupted"
}

func (o Options) withDefaults(mode string) Options {
	if o.RecordSize == 0 {
		o.RecordSize = 100
	}
	if o.Producers <= 0 {
		o.Producers = 1
	}
	if o.Rate == 0 && mode == ModeEndToEnd {
		o.Rate = 1000
	}
	if o.Acks == "" {
		o.Acks = "all"
	}
	if o.Compression == "" {
		o.Compression = "none"
	}
	switch {
	case o.Linger == 0:
		o.Linger = 10 * time.Millisecond
	case o.Linger == NoLinger:
		o.Linger = 0
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 1000012
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 5
	}
	if o.From == "" {
		o.From = "beginning"
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = time.Second
	}
	return o
}

// Validate reports the first problem with o for mode (ModeProduce, ModeConsume or
// ModeEndToEnd), after defaults are applied; the error wraps ErrOptions.
func (o Options) Validate(mode string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	if o.Producers < 0 || o.Producers > 64 {
		return bad("--producers must be 1 to 64")
	}
	o = o.withDefaults(mode)
	switch mode {
	case ModeProduce, ModeConsume, ModeEndToEnd:
	default:
		return bad("unknown mode %q", mode)
	}
	if len(o.Brokers) == 0 || slicesContainEmpty(o.Brokers) {
		return bad("--brokers is required (host:port[,host:port])")
	}
	if o.Topic == "" {
		return bad("--topic is required")
	}
	if o.Records < 0 || o.Duration < 0 {
		return bad("--records and --duration must not be negative")
	}
	if o.Records == 0 && o.Duration == 0 && mode != ModeConsume {
		return bad("one of --records or --duration is required")
	}
	if mode == ModeConsume {
		if o.From != "beginning" && o.From != "end" {
			return bad("--from must be beginning or end, not %q", o.From)
		}
		return nil
	}
	minSize := 0
	if mode == ModeEndToEnd {
		minSize = timestampBytes
	}
	if o.RecordSize < minSize {
		return bad("--record-size must be at least %d", minSize)
	}
	if o.Rate < 0 {
		return bad("--rate must not be negative")
	}
	if o.Partitions < 0 {
		return bad("--partitions must not be negative")
	}
	if _, err := parseAcks(o.Acks); err != nil {
		return bad("%v", err)
	}
	if _, err := parseCompression(o.Compression); err != nil {
		return bad("%v", err)
	}
	if o.Idempotent && o.Acks != "all" {
		return bad("--idempotent needs --acks all")
	}
	if o.Linger < 0 && o.Linger != NoLinger || o.BatchBytes < 0 || o.MaxInFlight < 0 || o.IdleTimeout < 0 {
		return bad("--linger, --batch-bytes and --max-in-flight must not be negative")
	}
	return nil
}

func slicesContainEmpty(s []string) bool {
	for _, v := range s {
		if strings.TrimSpace(v) == "" {
			return true
		}
	}
	return false
}

func parseAcks(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("--acks must be all, 1 or 0, not %q", s)
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression must be none, gzip, snappy, lz4 or zstd, not %q", s)
}
