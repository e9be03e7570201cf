package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/bench/loadgen"
)

func TestParseArgs(t *testing.T) {
	f := func(args string, check func(*command) bool) {
		t.Helper()
		var stderr bytes.Buffer
		c, err := parseArgs(strings.Fields(args), &stderr)
		if err != nil {
			t.Fatalf("%q: %v\n%s", args, err, stderr.String())
		}
		if err := c.options.Validate(c.mode); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !check(c) {
			t.Errorf("%q parsed as %+v", args, c)
		}
	}
	f("produce --brokers a:1,b:2 --topic t --records 5", func(c *command) bool {
		o := c.options
		return c.mode == loadgen.ModeProduce && len(o.Brokers) == 2 && o.Brokers[1] == "b:2" && o.Topic == "t" &&
			o.Records == 5 && o.RecordSize == 100 && o.Rate == 0 && o.Acks == "all" && o.Compression == "none" &&
			!o.Idempotent && o.Linger == 10*time.Millisecond && o.BatchBytes == 1000012 && o.MaxInFlight == 5
	})
	f("produce --brokers a:1 --topic t --duration 20s --record-size 1024 --rate 5000 --partitions 6 --acks 1 "+
		"--compression zstd --linger 5ms --batch-bytes 65536 --max-in-flight 3 --json out.json", func(c *command) bool {
		o := c.options
		return o.Duration == 20*time.Second && o.RecordSize == 1024 && o.Rate == 5000 && o.Partitions == 6 &&
			o.Acks == "1" && o.Compression == "zstd" && o.Linger == 5*time.Millisecond && o.BatchBytes == 65536 &&
			o.MaxInFlight == 3 && c.jsonPath == "out.json"
	})
	f("produce --brokers a:1 --topic t --records 1 --idempotent=true", func(c *command) bool { return c.options.Idempotent })
	f("consume --brokers a:1 --topic t --records 9 --from end --json -", func(c *command) bool {
		return c.mode == loadgen.ModeConsume && c.options.From == "end" && c.options.Records == 9 && c.jsonPath == "-"
	})
	f("e2e --brokers a:1 --topic t --duration 1m", func(c *command) bool {
		return c.mode == loadgen.ModeEndToEnd && c.options.Rate == 1000 && c.options.IdleTimeout == 10*time.Second
	})
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range []string{
		"",
		"fly --brokers a:1 --topic t --records 1",
		"produce --topic t --records 1",
		"produce --brokers a:1 --records 1",
		"produce --brokers a:1 --topic t",
		"produce --brokers a:1 --topic t --records 1 --acks 2",
		"produce --brokers a:1 --topic t --records 1 --acks 0 --idempotent",
		"produce --brokers a:1 --topic t --records 1 --compression brotli",
		"produce --brokers a:1 --topic t --records 1 --partitions -1",
		"produce --brokers a:1 --topic t --records 1 --rate fast",
		"produce --brokers a:1 --topic t --records 1 extra",
		"consume --brokers a:1 --topic t --records 1 --from middle",
		"consume --brokers a:1 --topic t --records 1 --rate 5",
		"e2e --brokers a:1 --topic t --records 1 --record-size 7",
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range []string{"-h", "help", "produce -h", "consume -h", "e2e -h"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), &stdout, &stderr); code != 0 {
			t.Errorf("%q: exit %d, want 0", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("%q printed no usage", args)
		}
	}
}
