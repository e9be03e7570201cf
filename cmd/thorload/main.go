// Command thorload drives any Kafka-compatible broker with franz-go and measures it, like
// kafka-producer-perf-test and kafka-consumer-perf-test: produce, consume and end-to-end
// latency runs, a progress line on stderr every second, a human summary, a JSON result and a
// self-contained HTML or SVG report with throughput over time, the latency histogram and the
// run's settings. Run `thorload -h` for usage. The work is done by package bench/loadgen.
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
	"path/filepath"
	"strconv"
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

Every run needs --brokers and --topic. produce and e2e also need --records N or --duration D
(with both, the first reached ends the run). consume without either reads every partition up
to the end offsets it finds at its start and stops there (--from beginning, the default), or
reads until interrupted (--from end); interrupting any run (Ctrl-C) ends it with a summary.

--report FILE writes a self-contained report: throughput per second, latency percentiles and
histogram, and every setting of the run (an SVG image if FILE ends in .svg, else HTML).
Run 'thorload <command> -h' for the command's flags.

exit status: 0 success, 1 a record failed or the run could not start, 2 bad usage
`

// command is a parsed command line.
type command struct {
	mode       string
	options    loadgen.Options
	jsonPath   string
	reportPath string
	quiet      bool
	// info is the command line and every flag's value, for the report.
	info loadgen.ReportInfo
}

// commandHelp opens each command's -h output.
var commandHelp = map[string]string{
	"produce": `usage: thorload produce --brokers host:port --topic T (--records N | --duration D) [flags]

Writes --record-size byte records at --rate; latency is send-to-ack per record.
`,
	"consume": `usage: thorload consume --brokers host:port --topic T [--records N] [--duration D] [flags]

Reads every partition of the topic directly (no consumer group); latency is each record's age
on arrival. Without --records or --duration it reads each partition up to the end offset it
had when the run started, then stops and reports what it read (--from beginning), or reads
until interrupted (--from end).
`,
	"e2e": `usage: thorload e2e --brokers host:port --topic T (--records N | --duration D) [flags]

Produces timestamped records at --rate and consumes them in this process; latency is receipt
time minus send time.
`,
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
	fs.Usage = func() {
		fmt.Fprint(stderr, commandHelp[args[0]], "\nflags:\n")
		fs.PrintDefaults()
	}
	o := &c.options
	var brokers string
	fs.StringVar(&brokers, "brokers", "", "seed brokers, host:port[,host:port] (required)")
	fs.StringVar(&o.Topic, "topic", "", "topic (required)")
	if c.mode == loadgen.ModeConsume {
		fs.Int64Var(&o.Records, "records", 0, "stop after this many records (neither this nor --duration: read to the end offsets seen at the start)")
	} else {
		fs.Int64Var(&o.Records, "records", 0, "stop after this many records")
	}
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (e.g. 20s)")
	fs.StringVar(&c.jsonPath, "json", "", "write the JSON result to this file ('-': stdout, the summary then goes to stderr)")
	fs.StringVar(&c.reportPath, "report", "", "write a self-contained report to this file: SVG if it ends in .svg, else HTML")
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
	if c.mode == loadgen.ModeConsume {
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Second, "with --records, or reading to the end offsets: give up after this long without a record")
	} else if c.mode == loadgen.ModeEndToEnd {
		fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Second, "give up waiting for the last records after this long without one")
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
	c.info = reportInfo(fs, args)
	return c, nil
}

// reportInfo records the command line and every flag's value (given or default).
func reportInfo(fs *flag.FlagSet, args []string) loadgen.ReportInfo {
	words := []string{"thorload"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		words = append(words, a)
	}
	info := loadgen.ReportInfo{Command: strings.Join(words, " ")}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		info.Flags = append(info.Flags, loadgen.Flag{Name: f.Name, Value: f.Value.String(), Set: given[f.Name]})
	})
	return info
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
	if err := writeReport(c.reportPath, result, c.info); err != nil {
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

// writeReport writes the report to path (nothing when path is empty): an SVG image when the
// name ends in .svg, an HTML page otherwise.
func writeReport(path string, r *loadgen.Result, info loadgen.ReportInfo) error {
	if path == "" {
		return nil
	}
	format := loadgen.ReportHTML
	if strings.EqualFold(filepath.Ext(path), ".svg") {
		format = loadgen.ReportSVG
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := loadgen.WriteReport(f, format, r, info); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
