package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/bench"
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
		"consume --brokers a:1 --topic t --records -1",
		"e2e --brokers a:1 --topic t",
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

// TestDocumentedCommandsParse keeps every thorload command line of README.md and docs/ valid
// as written (the consume example of the README has neither --records nor --duration). Lines
// with placeholders ("<records produced>") are left out.
func TestDocumentedCommandsParse(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	command := regexp.MustCompile(`\bthorload ((?:produce|consume|e2e)\b[^` + "`" + `|\n#]*)`)
	checked := 0
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range command.FindAllSubmatch(text, -1) {
			line := string(m[1])
			if strings.Contains(line, "<") {
				continue
			}
			var stderr bytes.Buffer
			c, err := parseArgs(strings.Fields(line), &stderr)
			if err == nil {
				err = c.options.Validate(c.mode)
			}
			if err != nil {
				t.Errorf("%s: thorload %s: %v\n%s", filepath.Base(file), line, err, stderr.String())
			}
			checked++
		}
	}
	t.Logf("%d documented thorload commands parse", checked)
	if checked < 6 {
		t.Fatalf("found %d thorload commands in the docs, want the README's three and the benchmarks'", checked)
	}
}

// TestRunWritesReports runs thorload against a broker in this process: a produce run with an
// HTML report and a consume run without --records or --duration (it stops at the end offsets
// it found) with an SVG report. Both reports are well-formed and hold the percentiles and the
// settings.
func TestRunWritesReports(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	b, err := bench.Start(bench.Options{DataDir: t.TempDir(), Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("stopping the broker: %v", err)
		}
	})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	htmlPath, jsonPath := filepath.Join(dir, "produce.html"), filepath.Join(dir, "produce.json")
	var stdout, stderr bytes.Buffer
	produce := "produce --brokers " + b.KafkaAddr + " --topic load --partitions 3 --records 5000 --rate 20000 --quiet" +
		" --report " + htmlPath + " --json " + jsonPath
	if code := run(ctx, strings.Fields(produce), &stdout, &stderr); code != 0 {
		t.Fatalf("produce: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var produced loadgen.Result
	if raw, err := os.ReadFile(jsonPath); err != nil || json.Unmarshal(raw, &produced) != nil {
		t.Fatalf("reading the JSON result: %v", err)
	}
	text := reportText(t, htmlPath, "html")
	for _, want := range append(percentiles(produced.Latency),
		"GOMAXPROCS", strconv.Itoa(runtime.GOMAXPROCS(0)), runtime.Version(), b.KafkaAddr,
		produced.Start.Format(time.RFC3339), "--rate", "20000", "--record-size", "--compression", "none",
		"thorload "+produce) {
		if !strings.Contains(text, want) {
			t.Errorf("produce report: no %q", want)
		}
	}

	svgPath := filepath.Join(dir, "consume.svg")
	stdout.Reset()
	stderr.Reset()
	consume := "consume --brokers " + b.KafkaAddr + " --topic load --from beginning --quiet --report " + svgPath + " --json -"
	done := make(chan int, 1)
	go func() { done <- run(ctx, strings.Fields(consume), &stdout, &stderr) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("consume: exit %d\n%s", code, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatal("consume without --records or --duration did not stop")
	}
	var consumed loadgen.Result
	if err := json.Unmarshal(stdout.Bytes(), &consumed); err != nil {
		t.Fatalf("consume JSON: %v\n%s", err, stdout.String())
	}
	if consumed.Records != 5000 || consumed.Failed != 0 {
		t.Fatalf("consume read %d records, %d failed %v; want 5000, 0", consumed.Records, consumed.Failed, consumed.FirstErrors)
	}
	text = reportText(t, svgPath, "svg")
	for _, want := range append(percentiles(consumed.Latency),
		"GOMAXPROCS", runtime.Version(), "the end offsets at the start", "--from", "beginning", "--records") {
		if !strings.Contains(text, want) {
			t.Errorf("consume report: no %q", want)
		}
	}
}

// percentiles returns the labels and values a report shows for l.
func percentiles(l loadgen.Latency) []string {
	ms := func(v float64) string { return fmt.Sprintf("%.3f ms", v) }
	return []string{"p50", ms(l.P50Ms), "p90", ms(l.P90Ms), "p99", ms(l.P99Ms), "p99.9", ms(l.P999Ms), "max", ms(l.MaxMs)}
}

// reportText parses the report at path as XML, checks that its root element is root and that
// it has charts, and returns its text.
func reportText(t *testing.T, path, root string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var text strings.Builder
	first, svgs := "", 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if first == "" {
				first = tok.Name.Local
			}
			if tok.Name.Local == "svg" {
				svgs++
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if first != root || svgs < 4 {
		t.Fatalf("%s: root <%s> with %d <svg> elements, want <%s> with the charts", path, first, svgs, root)
	}
	return text.String()
}
