package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/codec/errcode"
)

// maxLine bounds one input line (one record).
const maxLine = 16 << 20

// produceStats counts outcomes; callbacks update it from the client's goroutines.
type produceStats struct {
	acked    atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	firstErr error
}

func (s *produceStats) done(_ *client.Record, err error) {
	if err == nil {
		s.acked.Add(1)
		return
	}
	s.failed.Add(1)
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

func parseAcks(s string) (int16, error) {
	switch s {
	case "all", "-1":
		return client.AcksAll, nil
	case "1":
		return client.AcksLeader, nil
	case "0":
		return client.AcksNone, nil
	}
	return 0, usageError("produce: --acks must be all, 1 or 0, not %q", s)
}

func produce(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	sep := fs.String("key-separator", "", "split each line into key and value at the first `SEP`")
	partition := fs.Int("partition", -1, "partition to produce to; -1: by key, else sticky")
	acksFlag := fs.String("acks", "all", "`ACKS`: all (every in-sync replica), 1 (the leader) or 0 (none)")
	linger := fs.Duration("linger", 5*time.Millisecond, "how long a batch waits for more records")
	pos, err := parseArgs(fs, args, "TOPIC")
	if err != nil {
		return err
	}
	acks, err := parseAcks(*acksFlag)
	if err != nil {
		return err
	}
	if *partition < -1 {
		return usageError("produce: --partition must be >= 0")
	}
	topic := pos[0]
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	// Check the topic once, rather than failing every line. A missing topic is asked for with
	// auto-creation allowed, as Kafka producers ask: the broker creates it when its
	// auto-creation is on.
	info, created, err := c.EnsureTopic(e.ctx, topic)
	if err != nil {
		if errcode.Of(err) == errcode.UnknownTopicOrPartition {
			return fmt.Errorf("produce %s: topic %q does not exist and the broker did not create it: "+
				"its topic auto-creation is off (THORSTREAM_AUTO_CREATE_TOPICS=false); create the topic first with "+
				"'thorctl topic create %s': %w", topic, topic, topic, err)
		}
		return fmt.Errorf("produce %s: %w", topic, err)
	}
	if created {
		fmt.Fprintf(e.stderr, "topic %s did not exist: the broker created it with %s\n", topic, plural(len(info.Partitions), "partition"))
	}
	if *partition >= len(info.Partitions) {
		return fmt.Errorf("produce %s: topic has no partition %d (it has %d)", topic, *partition, len(info.Partitions))
	}
	lingerOpt := *linger
	if lingerOpt == 0 {
		lingerOpt = -1 // the option's zero means "default"; the flag's zero means "none"
	}
	p := client.NewProducer(c, client.ProducerOptions{Acks: acks, Linger: lingerOpt})

	var stats produceStats
	start := time.Now()
	stopProgress := startProgress(e, &stats, start)
	readErr := readRecords(e.ctx, e.stdin, topic, int32(*partition), []byte(*sep), p, &stats)
	flushErr := p.Flush(e.ctx)
	p.Close()
	stopProgress()

	elapsed := time.Since(start)
	acked, failed := stats.acked.Load(), stats.failed.Load()
	fmt.Fprintf(e.stderr, "produced %d records in %s (%s/s)", acked, elapsed.Round(time.Millisecond), rate(acked, elapsed))
	if failed > 0 {
		fmt.Fprintf(e.stderr, ", %d failed", failed)
	}
	fmt.Fprintln(e.stderr)
	switch {
	case readErr != nil:
		return fmt.Errorf("produce %s: reading stdin: %w", topic, readErr)
	case failed > 0:
		return fmt.Errorf("produce %s: %d records failed, first: %w", topic, failed, stats.firstErr)
	case flushErr != nil:
		return fmt.Errorf("produce %s: %w", topic, flushErr)
	}
	return nil
}

// readRecords produces one record per line of r.
func readRecords(ctx context.Context, r io.Reader, topic string, partition int32, sep []byte, p *client.Producer, stats *produceStats) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		if ctx.Err() != nil {
			return nil // interrupted: deliver what was read
		}
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		rec := &client.Record{Topic: topic, Partition: partition}
		// One copy per line: the scanner reuses its buffer, the producer keeps the record.
		buf := append([]byte{}, line...)
		rec.Value = buf
		if len(sep) > 0 {
			if i := bytes.Index(buf, sep); i >= 0 {
				rec.Key, rec.Value = buf[:i:i], buf[i+len(sep):]
			}
		}
		p.Produce(ctx, rec, stats.done)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// startProgress prints "produced N records (R/s)" to stderr every progressEvery until stopped.
func startProgress(e *env, stats *produceStats, start time.Time) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(e.progressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fmt.Fprintln(e.stderr, progressLine(stats.acked.Load(), time.Since(start)))
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// progressLine is the periodic progress report: "produced 52000 records (26000/s)".
func progressLine(n int64, elapsed time.Duration) string {
	return fmt.Sprintf("produced %d records (%s/s)", n, rate(n, elapsed))
}

// plural is "1 partition", "3 partitions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// rate formats n per elapsed as a whole number.
func rate(n int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f", float64(n)/elapsed.Seconds())
}
