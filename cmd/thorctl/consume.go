package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/thorstream/thorstream/client"
)

// consumeOptions are consume's parsed flags.
type consumeOptions struct {
	topic         string
	fromBeginning bool
	offset        int64 // -1: not given
	timestamp     int64 // -1: not given
	partition     int   // -1: all
	follow        bool
	maxMessages   int64 // 0: no limit
	group         string
	printKey      bool
	printOffset   bool
}

// parseTimestamp accepts milliseconds since the epoch or RFC 3339.
func parseTimestamp(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q is neither milliseconds nor RFC 3339", s)
	}
	return t.UnixMilli(), nil
}

func parseConsume(args []string) (consumeOptions, error) {
	o := consumeOptions{offset: -1, timestamp: -1}
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest offset (default: the latest, or the group's committed offset)")
	fs.Int64Var(&o.offset, "offset", -1, "start at offset `N` of each partition; -1: not set")
	ts := fs.String("timestamp", "", "start at the first record at or after `T`")
	fs.IntVar(&o.partition, "partition", -1, "consume only partition `N`; -1: every partition")
	fs.BoolVar(&o.follow, "follow", false, "keep consuming until interrupted")
	fs.Int64Var(&o.maxMessages, "max-messages", 0, "stop after `N` records (default: no limit)")
	fs.StringVar(&o.group, "group", "", "consumer group `G` whose offsets are used and committed")
	fs.BoolVar(&o.printKey, "print-key", false, "print the key (null when there is none) and a tab before the value")
	fs.BoolVar(&o.printOffset, "print-offset", false, "print partition/offset and a tab before the value")
	pos, err := parseArgs(fs, args, "TOPIC")
	if err != nil {
		return o, err
	}
	o.topic = pos[0]
	if *ts != "" {
		if o.timestamp, err = parseTimestamp(*ts); err != nil {
			return o, usageError("consume: %v", err)
		}
	}
	starts := 0
	for _, set := range []bool{o.fromBeginning, o.offset >= 0, o.timestamp >= 0} {
		if set {
			starts++
		}
	}
	if starts > 1 {
		return o, usageError("consume: --from-beginning, --offset and --timestamp exclude each other")
	}
	seenOffset := false
	fs.Visit(func(f *flag.Flag) { seenOffset = seenOffset || f.Name == "offset" })
	if seenOffset && o.offset < 0 {
		return o, usageError("consume: --offset must be >= 0")
	}
	if o.maxMessages < 0 {
		return o, usageError("consume: --max-messages must be >= 0")
	}
	if o.partition < -1 {
		return o, usageError("consume: --partition must be >= 0")
	}
	return o, nil
}

func consume(args []string, broker string, e *env) error {
	o, err := parseConsume(args)
	if err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := e.ctx
	fail := func(err error) error { return fmt.Errorf("consume %s: %w", o.topic, err) }

	info, err := c.DescribeTopic(ctx, o.topic)
	if err != nil {
		return fail(err)
	}
	var tps []client.TopicPartition
	for _, p := range info.Partitions {
		if o.partition < 0 || int(p.Partition) == o.partition {
			tps = append(tps, client.TopicPartition{Topic: o.topic, Partition: p.Partition})
		}
	}
	if len(tps) == 0 {
		return fail(fmt.Errorf("topic has no partition %d (it has %d)", o.partition, len(info.Partitions)))
	}
	if o.group != "" && o.partition < 0 && o.offset < 0 && o.timestamp < 0 {
		return consumeInGroup(ctx, e, c, o, tps)
	}

	reset := client.ResetLatest
	if o.fromBeginning {
		reset = client.ResetEarliest
	}
	cons := client.NewConsumer(c, client.ConsumerOptions{Group: o.group, ResetOffset: reset})
	defer cons.Close()

	// Starting positions are resolved here, not lazily, so that partitions already at their end
	// can be left out.
	ends := make(map[client.TopicPartition]int64)
	for _, tp := range tps {
		start, err := startOffset(ctx, c, cons, o, tp)
		if err != nil {
			return fail(err)
		}
		cons.Seek(tp, start)
		if !o.follow {
			end, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampLatest)
			if err != nil {
				return fail(err)
			}
			ends[tp] = end
			if start >= end {
				cons.Unassign(tp)
			}
		}
	}

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	printed := int64(0)
	next := make(map[client.TopicPartition]int64) // after the last printed record, for commits
	commit := func() error {
		if o.group == "" || len(next) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cons.CommitOffsets(cctx, next)
	}
	for len(cons.Assignment()) > 0 && (o.maxMessages == 0 || printed < o.maxMessages) {
		recs, err := cons.Poll(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				break // interrupted
			}
			out.Flush()
			_ = commit()
			return fail(err)
		}
		for _, r := range recs {
			tp := client.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if !o.follow && r.Offset >= ends[tp] {
				continue
			}
			if o.maxMessages > 0 && printed >= o.maxMessages {
				break
			}
			writeRecord(out, r, o)
			printed++
			next[tp] = r.Offset + 1
		}
		if err := out.Flush(); err != nil {
			return fail(err)
		}
		if !o.follow {
			for tp, end := range ends {
				if cons.Position(tp) >= end {
					cons.Unassign(tp)
					delete(ends, tp)
				}
			}
		}
		if err := commit(); err != nil {
			return fail(err)
		}
	}
	return nil
}

// startOffset is where consume starts tp: --offset, --timestamp, the group's committed offset,
// else the earliest (--from-beginning) or latest offset.
func startOffset(ctx context.Context, c *client.Client, cons *client.Consumer, o consumeOptions, tp client.TopicPartition) (int64, error) {
	switch {
	case o.offset >= 0:
		return o.offset, nil
	case o.timestamp >= 0:
		off, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, o.timestamp)
		if err != nil || off >= 0 {
			return off, err
		}
		return c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampLatest)
	}
	if o.group != "" {
		off, err := cons.Committed(ctx, tp)
		if err != nil || off >= 0 {
			return off, err
		}
	}
	if o.fromBeginning {
		return c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampEarliest)
	}
	return c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampLatest)
}

// writeRecord prints one record: [partition/offset TAB] [key TAB] value NEWLINE.
func writeRecord(w *bufio.Writer, r *client.Record, o consumeOptions) {
	if o.printOffset {
		fmt.Fprintf(w, "%d/%d\t", r.Partition, r.Offset)
	}
	if o.printKey {
		if r.Key == nil {
			w.WriteString("null")
		} else {
			w.Write(r.Key)
		}
		w.WriteByte('\t')
	}
	w.Write(r.Value)
	w.WriteByte('\n')
}

// consumeInGroup is consume --group without a partition or a start: the consumer joins the group
// and prints the partitions the group assigns it, from the group's committed offsets (else the
// earliest with --from-beginning, the latest otherwise), committing what it printed after each
// poll and before a rebalance takes partitions away. Without --follow it stops once every
// partition it is assigned has reached the end offset it had when consume started.
func consumeInGroup(ctx context.Context, e *env, c *client.Client, o consumeOptions, tps []client.TopicPartition) error {
	fail := func(err error) error { return fmt.Errorf("consume %s: %w", o.topic, err) }
	ends := make(map[client.TopicPartition]int64)
	if !o.follow {
		for _, tp := range tps {
			end, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampLatest)
			if err != nil {
				return fail(err)
			}
			ends[tp] = end
		}
	}
	next := make(map[client.TopicPartition]int64) // after the last printed record, not committed yet
	var cons *client.Consumer
	commit := func() error {
		if len(next) == 0 {
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cons.CommitOffsets(cctx, next); err != nil {
			return err
		}
		clear(next)
		return nil
	}
	reset := client.ResetLatest
	if o.fromBeginning {
		reset = client.ResetEarliest
	}
	cons = client.NewConsumer(c, client.ConsumerOptions{Group: o.group, ResetOffset: reset,
		// On Poll's goroutine, before a rebalance: the next owner resumes after what was printed.
		OnRevoke: func(revoked []client.TopicPartition) {
			if err := commit(); err != nil {
				fmt.Fprintf(e.stderr, "thorctl: consume %s: committing before a rebalance: %v\n", o.topic, err)
			}
			for _, tp := range revoked {
				delete(next, tp)
			}
		}})
	defer cons.Close() // leaves the group
	cons.Subscribe(o.topic)

	// Poll blocks until records come; without --follow a watcher ends it once the assigned
	// partitions are all at their end offsets.
	atEnd := func() bool {
		assigned := cons.Assignment()
		for _, tp := range assigned {
			if pos := cons.Position(tp); pos < 0 || pos < ends[tp] {
				return false
			}
		}
		return len(assigned) > 0
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	if !o.follow {
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-pollCtx.Done():
					return
				case <-tick.C:
					if atEnd() {
						stopPolling()
						return
					}
				}
			}
		}()
	}

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	printed := int64(0)
	for o.maxMessages == 0 || printed < o.maxMessages {
		recs, pollErr := cons.Poll(pollCtx)
		for _, r := range recs {
			tp := client.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if !o.follow && r.Offset >= ends[tp] {
				continue
			}
			if o.maxMessages > 0 && printed >= o.maxMessages {
				break
			}
			writeRecord(out, r, o)
			printed++
			next[tp] = r.Offset + 1
		}
		if err := out.Flush(); err != nil {
			return fail(err)
		}
		if err := commit(); err != nil {
			return fail(err)
		}
		if pollErr != nil {
			if errors.Is(pollErr, context.Canceled) && pollCtx.Err() != nil {
				break // interrupted, or at the end
			}
			return fail(pollErr)
		}
		if !o.follow && atEnd() {
			break
		}
	}
	if err := commit(); err != nil {
		return fail(err)
	}
	return nil
}
