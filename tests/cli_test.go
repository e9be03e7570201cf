package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run thorctl as a user does, against a broker running as a separate process with
// its default settings, and check what it prints and how it exits.

// mustCLI runs thorctl and fails the test unless it exits 0.
func mustCLI(t *testing.T, addr, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, addr, stdin, args...)
	if code != 0 {
		t.Fatalf("thorctl %s: exit %d\nstderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout, stderr
}

// outputLines splits output into lines; no output is no lines.
func outputLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// consumedRecord is one line of `consume --print-offset [--print-key]`.
type consumedRecord struct {
	partition int
	offset    int64
	key       string
	value     string
}

// parseConsumed parses `consume --print-offset` output ("P/O<TAB>[KEY<TAB>]VALUE").
func parseConsumed(t *testing.T, out string, withKey bool) []consumedRecord {
	t.Helper()
	var recs []consumedRecord
	for _, line := range outputLines(out) {
		n := 2
		if withKey {
			n = 3
		}
		fields := strings.SplitN(line, "\t", n)
		if len(fields) != n {
			t.Fatalf("consume printed %q: want %d tab-separated fields", line, n)
		}
		ps, offs, ok := strings.Cut(fields[0], "/")
		p, err1 := strconv.Atoi(ps)
		o, err2 := strconv.ParseInt(offs, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("consume printed %q: the first field is not PARTITION/OFFSET", line)
		}
		r := consumedRecord{partition: p, offset: o, value: fields[n-1]}
		if withKey {
			r.key = fields[1]
		}
		recs = append(recs, r)
	}
	return recs
}

// byPartition groups records by partition, keeping their printed order.
func byPartition(recs []consumedRecord) map[int][]consumedRecord {
	out := map[int][]consumedRecord{}
	for _, r := range recs {
		out[r.partition] = append(out[r.partition], r)
	}
	return out
}

// partitionRow is one row of `topic describe`'s partition table.
type partitionRow struct {
	partition        int
	earliest, latest int64
}

// describeTopic runs `topic describe` and parses its partition count and table.
func describeTopic(t *testing.T, addr, topic string) []partitionRow {
	t.Helper()
	out, _ := mustCLI(t, addr, "", "topic", "describe", topic)
	lines := outputLines(out)
	if len(lines) == 0 || lines[0] != "Topic: "+topic {
		t.Fatalf("topic describe %s printed:\n%s", topic, out)
	}
	var declared int
	var rows []partitionRow
	inTable := false
	for _, line := range lines {
		if n, ok := strings.CutPrefix(line, "Partitions: "); ok {
			declared, _ = strconv.Atoi(n)
			continue
		}
		f := strings.Fields(line)
		if len(f) == 7 && f[0] == "PARTITION" && f[4] == "EARLIEST" && f[5] == "LATEST" && f[6] == "LAG" {
			inTable = true
			continue
		}
		if !inTable {
			continue
		}
		if len(f) != 7 {
			t.Fatalf("topic describe: partition row %q does not have 7 columns", line)
		}
		p, err1 := strconv.Atoi(f[0])
		e, err2 := strconv.ParseInt(f[4], 10, 64)
		l, err3 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("topic describe: partition row %q is not numeric", line)
		}
		rows = append(rows, partitionRow{p, e, l})
	}
	if declared != len(rows) {
		t.Fatalf("topic describe says %d partitions but lists %d:\n%s", declared, len(rows), out)
	}
	for i, r := range rows {
		if r.partition != i {
			t.Fatalf("topic describe: row %d is partition %d:\n%s", i, r.partition, out)
		}
	}
	return rows
}

// sortedCopy returns s sorted, for multiset comparisons.
func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// multisetDiff reports the first difference between two multisets of lines, or "".
func multisetDiff(got, want []string) string {
	g, w := sortedCopy(got), sortedCopy(want)
	if slices.Equal(g, w) {
		return ""
	}
	if len(g) != len(w) {
		return fmt.Sprintf("%d lines, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			return fmt.Sprintf("sorted line %d is %q, want %q", i, g[i], w[i])
		}
	}
	return "differ"
}

// TestCLIAcceptanceScenario is the acceptance scenario, step by step, through thorctl
// against a broker with default settings: topics, 100,000 lines in and out, keys, starting
// positions, consumer groups, delete, and segment inspection once the broker has stopped.
func TestCLIAcceptanceScenario(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	addr := b.addr
	// need runs a step the next steps build on: if it fails, the scenario stops.
	need := func(name string, fn func(t *testing.T)) {
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}

	need("topic create, list and describe", func(t *testing.T) {
		out, _ := mustCLI(t, addr, "", "topic", "create", "events", "--partitions", "3")
		if !strings.Contains(out, "created topic events (3 partitions") {
			t.Errorf("topic create printed %q", out)
		}
		out, _ = mustCLI(t, addr, "", "topic", "list")
		found := false
		for _, line := range outputLines(out) {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "events" {
				found = true
				if f[1] != "3" || f[2] != "1" {
					t.Errorf("topic list shows %q, want 3 partitions and replication 1", line)
				}
			}
		}
		if !found {
			t.Fatalf("topic list does not show events:\n%s", out)
		}
		rows := describeTopic(t, addr, "events")
		if len(rows) != 3 {
			t.Fatalf("topic describe shows %d partitions, want 3", len(rows))
		}
		for _, r := range rows {
			if r.earliest != 0 || r.latest != 0 {
				t.Errorf("new partition %d: offsets %d..%d, want 0..0", r.partition, r.earliest, r.latest)
			}
		}
	})

	const total = 100_000
	input := make([]string, total)
	for i := range input {
		input[i] = fmt.Sprintf("event-%06d", i)
	}
	var latest [3]int64 // per partition, after the produce

	need("produce 100000 lines from stdin", func(t *testing.T) {
		out, stderr := mustCLI(t, addr, strings.Join(input, "\n")+"\n", "produce", "events")
		if out != "" {
			t.Errorf("produce wrote to stdout: %q", out)
		}
		if !strings.Contains(stderr, fmt.Sprintf("produced %d records in ", total)) || strings.Contains(stderr, "failed") {
			t.Errorf("produce summary on stderr: %q", stderr)
		}
		sum := int64(0)
		for _, r := range describeTopic(t, addr, "events") {
			if r.earliest != 0 {
				t.Errorf("partition %d starts at %d", r.partition, r.earliest)
			}
			latest[r.partition] = r.latest
			sum += r.latest
		}
		if sum != total {
			t.Fatalf("topic describe: the partitions end at %v, %d records in all, want %d", latest, sum, total)
		}
	})

	var all map[int][]consumedRecord // every record of events, per partition, in offset order
	need("consume from the beginning prints exactly the lines produced", func(t *testing.T) {
		out, _ := mustCLI(t, addr, "", "consume", "events", "--from-beginning")
		if d := multisetDiff(outputLines(out), input); d != "" {
			t.Fatalf("consume --from-beginning: %s", d)
		}
		out, _ = mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--print-offset")
		recs := parseConsumed(t, out, false)
		values := make([]string, len(recs))
		for i, r := range recs {
			values[i] = r.value
		}
		if d := multisetDiff(values, input); d != "" {
			t.Fatalf("consume --from-beginning --print-offset: values: %s", d)
		}
		all = byPartition(recs)
		for p := 0; p < 3; p++ {
			recs := all[p]
			if int64(len(recs)) != latest[p] {
				t.Fatalf("partition %d: %d records printed, describe says it ends at %d", p, len(recs), latest[p])
			}
			for i, r := range recs {
				if r.offset != int64(i) {
					t.Fatalf("partition %d: record %d printed with offset %d: out of order or a gap", p, i, r.offset)
				}
				// One producer reading stdin in order: each partition keeps the input order.
				if i > 0 && r.value <= recs[i-1].value {
					t.Fatalf("partition %d: %q at offset %d after %q: not in input order", p, r.value, r.offset, recs[i-1].value)
				}
			}
		}
	})

	keyedCount := map[int]int64{}
	t.Run("equal keys go to the same partition", func(t *testing.T) {
		mustCLI(t, addr, "", "topic", "create", "keyed", "--partitions", "3")
		const n, keys = 20_000, 50
		var in strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&in, "user-%02d:%06d\n", i%keys, i)
		}
		mustCLI(t, addr, in.String(), "produce", "keyed", "--key-separator", ":")
		out, _ := mustCLI(t, addr, "", "consume", "keyed", "--from-beginning", "--print-key", "--print-offset")
		recs := parseConsumed(t, out, true)
		if len(recs) != n {
			t.Fatalf("%d records consumed, want %d", len(recs), n)
		}
		partitionOf := map[string]int{}
		lastOfKey := map[string]int{}
		seen := map[int]bool{}
		for _, r := range recs {
			i, err := strconv.Atoi(r.value)
			if err != nil || seen[i] {
				t.Fatalf("value %q: not a produced value, or printed twice (the separator must not stay in the value)", r.value)
			}
			seen[i] = true
			if want := fmt.Sprintf("user-%02d", i%keys); r.key != want {
				t.Fatalf("value %q has key %q, want %q", r.value, r.key, want)
			}
			if p, ok := partitionOf[r.key]; ok && p != r.partition {
				t.Fatalf("key %q is in partitions %d and %d", r.key, p, r.partition)
			}
			partitionOf[r.key] = r.partition
			if last, ok := lastOfKey[r.key]; ok && i < last {
				t.Fatalf("key %q: %d after %d, out of order", r.key, i, last)
			}
			lastOfKey[r.key] = i
			keyedCount[r.partition]++
		}
		if len(partitionOf) != keys || len(keyedCount) < 2 {
			t.Fatalf("%d keys over %d partitions: want %d keys spread over more than one partition", len(partitionOf), len(keyedCount), keys)
		}
	})

	t.Run("consume from an offset of one partition", func(t *testing.T) {
		const p = 1
		start := latest[p] / 2
		out, _ := mustCLI(t, addr, "", "consume", "events", "--offset", fmt.Sprint(start), "--partition", fmt.Sprint(p), "--print-offset")
		got := parseConsumed(t, out, false)
		if want := all[p][start:]; !slices.Equal(got, want) {
			t.Fatalf("--offset %d --partition %d: %d records from %v, want %d from %v", start, p, len(got), firstOf(got), len(want), firstOf(want))
		}
		out, _ = mustCLI(t, addr, "", "consume", "events", "--offset", fmt.Sprint(start), "--partition", fmt.Sprint(p), "--print-offset", "--max-messages", "5")
		if got, want := parseConsumed(t, out, false), all[p][start:start+5]; !slices.Equal(got, want) {
			t.Fatalf("--offset %d --partition %d --max-messages 5: %v, want %v", start, p, got, want)
		}
	})

	t.Run("consume with max messages", func(t *testing.T) {
		out, _ := mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--max-messages", "10", "--print-offset")
		got := parseConsumed(t, out, false)
		if len(got) != 10 {
			t.Fatalf("--max-messages 10 printed %d records", len(got))
		}
		seen := map[[2]int64]bool{}
		for _, r := range got {
			k := [2]int64{int64(r.partition), r.offset}
			if seen[k] || r.offset >= int64(len(all[r.partition])) || all[r.partition][r.offset] != r {
				t.Fatalf("--max-messages printed %+v: a duplicate or not the stored record", r)
			}
			seen[k] = true
		}
		out, _ = mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--partition", "2", "--max-messages", "3", "--print-offset")
		if got, want := parseConsumed(t, out, false), all[2][:3]; !slices.Equal(got, want) {
			t.Fatalf("--partition 2 --max-messages 3: %v, want %v", got, want)
		}
	})

	t.Run("consume from a timestamp", func(t *testing.T) {
		mustCLI(t, addr, "", "topic", "create", "timed", "--partitions", "3")
		var early, late []string
		for i := 0; i < 1000; i++ {
			early = append(early, fmt.Sprintf("early-%04d", i))
			late = append(late, fmt.Sprintf("late-%04d", i))
		}
		mustCLI(t, addr, strings.Join(early, "\n")+"\n", "produce", "timed")
		// Every early record was stamped before produce exited, so before cut; let the clock
		// reach cut (at most a millisecond) so every late record is stamped at or after it.
		cut := time.Now().UnixMilli() + 1
		for time.Now().UnixMilli() < cut {
		}
		mustCLI(t, addr, strings.Join(late, "\n")+"\n", "produce", "timed")
		for _, ts := range []string{fmt.Sprint(cut), time.UnixMilli(cut).UTC().Format(time.RFC3339Nano)} {
			out, _ := mustCLI(t, addr, "", "consume", "timed", "--timestamp", ts)
			if d := multisetDiff(outputLines(out), late); d != "" {
				t.Fatalf("--timestamp %s: %s", ts, d)
			}
		}
		future := time.Now().Add(time.Hour).UnixMilli()
		if out, _ := mustCLI(t, addr, "", "consume", "timed", "--timestamp", fmt.Sprint(future)); out != "" {
			t.Fatalf("--timestamp an hour ahead printed %d lines, want none", len(outputLines(out)))
		}
	})

	t.Run("a group resumes after what it printed", func(t *testing.T) {
		out, _ := mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--group", "g", "--max-messages", "1000", "--print-offset")
		first := parseConsumed(t, out, false)
		if len(first) != 1000 {
			t.Fatalf("first run printed %d records, want 1000", len(first))
		}
		out, _ = mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--group", "g", "--print-offset")
		second := parseConsumed(t, out, false)
		firstBy, secondBy := byPartition(first), byPartition(second)
		for p := 0; p < 3; p++ {
			resume := int64(0)
			if recs := firstBy[p]; len(recs) > 0 {
				resume = recs[len(recs)-1].offset + 1
			}
			// The two runs together print the partition once, in order: the second starts
			// exactly after the last record the first printed.
			joined := append(slices.Clone(firstBy[p]), secondBy[p]...)
			if !slices.Equal(joined, all[p]) {
				t.Fatalf("partition %d: the first run printed %d records, the second %d starting at %v; want the second to start at offset %d and reach %d",
					p, len(firstBy[p]), len(secondBy[p]), firstOf(secondBy[p]), resume, latest[p])
			}
		}
		if out, _ := mustCLI(t, addr, "", "consume", "events", "--from-beginning", "--group", "g"); out != "" {
			t.Fatalf("a third run of the group printed %d records, want none: everything was committed", len(outputLines(out)))
		}
	})

	t.Run("topic delete, then describe fails", func(t *testing.T) {
		mustCLI(t, addr, "", "topic", "delete", "events")
		out, stderr, code := runCLI(t, addr, "", "topic", "describe", "events")
		if code == 0 || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("topic describe of the deleted topic: exit %d, stderr %q, want a non-zero exit naming UNKNOWN_TOPIC_OR_PARTITION; stdout:\n%s", code, stderr, out)
		}
		out, _ = mustCLI(t, addr, "", "topic", "list")
		for _, line := range outputLines(out) {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "events" {
				t.Errorf("topic list shows events after it was deleted (and described): %q", line)
			}
		}
	})

	b.stop()

	var logs []string
	need("segment verify passes on the healthy data directory", func(t *testing.T) {
		out, stderr := mustCLI(t, addr, "", "segment", "verify", dir)
		var err error
		logs, err = filepath.Glob(filepath.Join(dir, "*", "*.log"))
		if err != nil || len(logs) == 0 {
			t.Fatalf("no .log files under %s: %v", dir, err)
		}
		lines := outputLines(out)
		if len(lines) != len(logs) {
			t.Fatalf("segment verify printed %d lines for %d .log files:\n%s%s", len(lines), len(logs), out, stderr)
		}
		for _, line := range lines {
			if !strings.Contains(line, ": ok, ") {
				t.Errorf("segment verify: %s", line)
			}
		}
	})

	// The keyed topic was never deleted: its first partition with records is the one to inspect.
	part := -1
	for p := 0; p < 3; p++ {
		if keyedCount[p] > 0 {
			part = p
			break
		}
	}
	if part < 0 {
		t.Fatal("no partition of keyed holds records (see the key step)")
	}
	segment := filepath.Join(dir, fmt.Sprintf("keyed-%d", part), "00000000000000000000.log")

	type dumpedBatch struct{ position, size, baseOffset, lastOffset, count int64 }
	var batches []dumpedBatch
	need("segment dump prints the batches", func(t *testing.T) {
		out, _ := mustCLI(t, addr, "", "segment", "dump", segment)
		for _, line := range outputLines(out) {
			var d dumpedBatch
			if _, err := fmt.Sscanf(line, "position=%d baseOffset=%d lastOffset=%d count=%d size=%d",
				&d.position, &d.baseOffset, &d.lastOffset, &d.count, &d.size); err != nil {
				t.Fatalf("segment dump line %q: %v", line, err)
			}
			batches = append(batches, d)
		}
		// The batches tile the file and the offsets 0 .. the partition's end, in order.
		pos, next := int64(0), int64(0)
		for _, d := range batches {
			if d.position != pos || d.baseOffset != next || d.lastOffset != d.baseOffset+d.count-1 || d.count < 1 {
				t.Fatalf("segment dump: batch %+v after position %d, offset %d", d, pos, next)
			}
			pos, next = pos+d.size, d.lastOffset+1
		}
		info, err := os.Stat(segment)
		if err != nil {
			t.Fatal(err)
		}
		if pos != info.Size() || next != keyedCount[part] {
			t.Fatalf("segment dump: batches cover %d of %d bytes and offsets up to %d, want %d", pos, info.Size(), next, keyedCount[part])
		}
	})

	t.Run("segment verify fails after a byte in the middle of a .log is corrupted", func(t *testing.T) {
		data, err := os.ReadFile(segment)
		if err != nil {
			t.Fatal(err)
		}
		// The byte in the middle of the file, moved into the CRC-covered part of its batch if it
		// falls on the few header bytes the CRC does not cover (the leader epoch, for instance).
		middle := int64(len(data) / 2)
		for _, d := range batches {
			if middle >= d.position && middle < d.position+d.size {
				if middle < d.position+21 {
					middle = d.position + 61 + (d.size-61)/2
				}
				break
			}
		}
		data[middle] ^= 0x5a
		if err := os.WriteFile(segment, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runCLI(t, addr, "", "segment", "verify", dir)
		if code == 0 {
			t.Fatalf("segment verify exits 0 after corrupting byte %d of %s:\n%s", middle, segment, out)
		}
		bad := 0
		for _, line := range outputLines(out) {
			if strings.HasPrefix(line, segment+": BAD") {
				bad++
			} else if !strings.Contains(line, ": ok, ") {
				t.Errorf("segment verify: unexpected line %q", line)
			}
		}
		if bad != 1 || !strings.Contains(stderr, "1 of ") {
			t.Fatalf("segment verify does not report exactly the corrupted file:\n%s%s", out, stderr)
		}
		out, _, code = runCLI(t, addr, "", "segment", "dump", segment)
		if code == 0 || !strings.Contains(out, "BAD") {
			t.Fatalf("segment dump of the corrupted file: exit %d\n%s", code, out)
		}
	})
}

// firstOf describes where a list of records starts, for failure messages.
func firstOf(recs []consumedRecord) string {
	if len(recs) == 0 {
		return "(nothing)"
	}
	return fmt.Sprintf("%d/%d", recs[0].partition, recs[0].offset)
}

// TestCLIDescribeDeletedTopicAutoCreateOff: with auto-creation off, describing a deleted topic
// fails with UNKNOWN_TOPIC_OR_PARTITION, and so do consuming and producing to it.
func TestCLIDescribeDeletedTopicAutoCreateOff(t *testing.T) {
	b := startBroker(t, t.TempDir(), "THORSTREAM_AUTO_CREATE_TOPICS=false")
	mustCLI(t, b.addr, "", "topic", "create", "gone", "--partitions", "2")
	mustCLI(t, b.addr, "", "topic", "delete", "gone")
	for _, args := range [][]string{
		{"topic", "describe", "gone"},
		{"consume", "gone", "--from-beginning"},
		{"produce", "gone"},
		{"topic", "delete", "gone"},
	} {
		_, stderr, code := runCLI(t, b.addr, "a line\n", args...)
		if code != 1 || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("thorctl %s after delete: exit %d, stderr %q; want 1 and UNKNOWN_TOPIC_OR_PARTITION", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestCLIUnreachableBroker: every command that needs the broker fails with status 1 and a message
// naming the address when nobody listens there.
func TestCLIUnreachableBroker(t *testing.T) {
	addr := freeAddr(t)
	for _, args := range [][]string{
		{"topic", "list"},
		{"topic", "create", "x"},
		{"topic", "describe", "x"},
		{"topic", "delete", "x"},
		{"produce", "x"},
		{"consume", "x", "--from-beginning"},
	} {
		start := time.Now()
		out, stderr, code := runCLI(t, addr, "a line\n", args...)
		if code != 1 || !strings.Contains(stderr, addr) {
			t.Errorf("thorctl --broker %s %s: exit %d, stderr %q; want 1 and the address", addr, strings.Join(args, " "), code, stderr)
		}
		if out != "" {
			t.Errorf("thorctl %s printed %q on stdout", strings.Join(args, " "), out)
		}
		t.Logf("%s: failed in %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	}
}
