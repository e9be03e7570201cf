// Command thorload drives any Kafka-compatible broker with franz-go and measures it, like
// kafka-producer-perf-test and kafka-consumer-perf-test: produce, consume and end-to-end
// latency runs, a progress line on stderr every second, a human summary and a JSON result.
// Run `thorload -h` for usage. The work is done by package bench/loadgen.
//
// Exit status: 0 when every record succeeded, 1 when any failed (the first errors are printed)
// or the run could not start, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/thorstream/thorstream/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: thorload <command> [flags]

commands:
  produce   write fixed-size records at a rate; latency is send-to-ack per record
  consume   read every partition of a topic directly (no consumer group)
  e2e       produce timestamped records at a fixed rate and consume them in this process;
            latency is receipt time minus send time

Every run needs --brokers, --topic and --records N or --duration D (the first reached ends it).
Run 'thorload <command> -h' for the command's flags.

exit status: 0 success, 1 a record failed or the run could not start, 2 bad usage
`

// command is a parsed command line.
type command struct {
	mode     string
	options  loadgen.Options
	jsonPath string
	quiet    bool
}

// parseArgs parses args (without the program name). It returns flag.ErrHelp for -h and an
// error wrapping errUsage for everything else wrong; the usage text has been written to
// stderr by then.
func parseArgs(args []string, stderr io.Writer) (*command, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("%w: no command", errUsage)
	}
	c := &command{mode: args[0]}
	switch c.mode {
	case "produce", "consume", "e2e":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return nil, flag.ErrHelp
	default:
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("%w: unknown command %q", errUsage, c.mode)
	}
	if c.mode == "e2e" {
		c.mode = loadgen.ModeEndToEnd
	}

	fs := flag.NewFlagSet("thorload "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &c.options
	var brokers string
	fs.StringVar(&brokers, "brokers", "", "seed brokers, host:port[,host:port] (required)")
	fs.StringVar(&o.Topic, "topic", "", "topic (required)")
	fs.Int64Var(&o.Records, "records", 0, "stop after this many records")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (e.g. 20s)")
	fs.StringVar(&c.jsonPath, "json", "", "write the JSON result to this file ('-': stdout, the summary then goes to stderr)")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line")
	size, partitions, batchBytes := 100, 0, 1000012
	if c.mode != loadgen.ModeConsume {
		if c.mode == loadgen.ModeEndToEnd {
			o.Rate = 1000
		}
		fs.IntVar(&size, "record-size", size, "value size in bytes")
		fs.Float64Var(&o.Rate, "rate", o.Rate, "records per second, 0 = unlimited")
		fs.IntVar(&partitions, "partitions", 0, "create the topic with this many partitions if it is missing (0: rely on auto-creation)")
		fs.StringVar(&o.Acks, "acks", "all", "all, 1 or 0")
		fs.StringVar(&o.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
		fs.BoolVar(&o.Idempotent, "idempotent", false, "idempotent producer (needs --acks all)")
		fs.DurationVar(&o.Linger, "linger", 10*time.Millisecond, "how long a partition waits to fill a batch (0: send at once)")
		fs.IntVar(&batchBytes, "batch-bytes", batchBytes, "largest record batch in bytes")
		fs.IntVar(&o.Producers, "producers", 1, "producer clients sending in parallel, each with its share of --rate and --records")
		fs.IntVar(&o.MaxInFlight, "max-in-flight", 5, "produce requests in flight per broker (without --idempotent; the idempotent producer uses 5)")
	} else {
		fs.StringVar(&o.From, "from", "beginning", "where to start: beginning or end")
	}
	if c.mode != loadgen.ModeProduce {
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Second, "with --records: give up after this long without a record")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if c.mode != loadgen.ModeConsume {
		if partitions < 0 || partitions > math.MaxInt32 || batchBytes < 0 || batchBytes > math.MaxInt32 {
			return nil, fmt.Errorf("%w: --partitions and --batch-bytes must be between 0 and %d", errUsage, math.MaxInt32)
		}
		o.RecordSize, o.Partitions, o.BatchBytes = size, int32(partitions), int32(batchBytes)
		if o.Linger == 0 {
			o.Linger = loadgen.NoLinger // an explicit 0, not "the default"
		}
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Brokers = append(o.Brokers, b)
		}
	}
	return c, nil
}

var errUsage = errors.New("bad usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = c.options.Validate(c.mode)
	}
	if err != nil {
		fmt.Fprintf(stderr, "thorload: %v\n", err)
		return 2
	}
	if !c.quiet {
		c.options.Progress = stderr
	}
	var result *loadgen.Result
	switch c.mode {
	case loadgen.ModeProduce:
		result, err = loadgen.Produce(ctx, c.options)
	case loadgen.ModeConsume:
		result, err = loadgen.Consume(ctx, c.options)
	default:
		result, err = loadgen.EndToEnd(ctx, c.options)
	}
	if errors.Is(err, loadgen.ErrOptions) {
		fmt.Fprintf(stderr, "thorload: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "thorload: %v\n", err)
		return 1
	}
	summary := stdout
	if c.jsonPath == "-" {
		summary = stderr
	}
	result.WriteSummary(summary)
	if err := writeJSON(c.jsonPath, result, stdout); err != nil {
		fmt.Fprintf(stderr, "thorload: %v\n", err)
		return 1
	}
	if result.Failed > 0 {
		return 1
	}
	return 0
}

func writeJSON(path string, r *loadgen.Result, stdout io.Writer) error {
	switch path {
	case "":
		return nil
	case "-":
		return r.WriteJSON(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
