package tests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// End-to-end tests of `thorctl group` against the broker binary, with franz-go consumers in the
// group over the Kafka listener: Kafka's groups and the binary protocol's are one namespace.

// groupDescription is what `thorctl group describe` printed.
type groupDescription struct {
	state, protocol string
	members         []string            // the member table's lines, trimmed
	lag             int64               // the "Lag:" line; -1 when absent
	rows            map[string][]string // "topic/partition" → COMMITTED, LOG-END, LAG, MEMBER
	raw             string
}

func parseGroupDescribe(t *testing.T, out string) groupDescription {
	t.Helper()
	d := groupDescription{lag: -1, rows: map[string][]string{}, raw: out}
	inMembers, inRows := false, false
	for _, line := range outputLines(out) {
		switch {
		case strings.HasPrefix(line, "State: "):
			d.state = strings.TrimPrefix(line, "State: ")
		case strings.HasPrefix(line, "Protocol: "):
			d.protocol = strings.TrimPrefix(line, "Protocol: ")
		case strings.HasPrefix(line, "Members: "):
			inMembers = line != "Members: none"
		case strings.HasPrefix(line, "Lag: "):
			inMembers = false
			n, err := strconv.ParseInt(strings.TrimPrefix(line, "Lag: "), 10, 64)
			if err != nil {
				t.Fatalf("group describe printed %q", line)
			}
			d.lag = n
		case strings.HasPrefix(line, "TOPIC "):
			inMembers, inRows = false, true
		case inMembers && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "  MEMBER "):
			d.members = append(d.members, strings.TrimSpace(line))
		case inRows:
			f := strings.Fields(line)
			if len(f) != 6 {
				t.Fatalf("group describe printed the row %q", line)
			}
			d.rows[f[0]+"/"+f[1]] = f[2:]
		}
	}
	return d
}

// describeGroup runs `thorctl group describe` and parses what it printed.
func describeGroup(t *testing.T, addr, group string) groupDescription {
	t.Helper()
	out, _ := mustCLI(t, addr, "", "group", "describe", group)
	return parseGroupDescribe(t, out)
}

// waitForGroup describes group until cond holds, for up to a minute.
func waitForGroup(t *testing.T, addr, group string, what string, cond func(groupDescription) bool) groupDescription {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		// A group nobody has joined yet does not exist: poll on.
		out, stderr, code := runCLI(t, addr, "", "group", "describe", group)
		if code != 0 && !strings.Contains(stderr, "GROUP_ID_NOT_FOUND") {
			t.Fatalf("thorctl group describe %s: exit %d\nstderr:\n%s", group, code, stderr)
		}
		d := parseGroupDescribe(t, out)
		if code == 0 && cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %s did not happen within a minute; last description:\n%s", group, what, d.raw)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, with a deadline
	}
}

// pollRecords polls cl until it has n records in all, for up to a minute.
func pollRecords(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consumed %d of %d records within a minute", len(out), n)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestCLIGroups(t *testing.T) {
	httpAddr := freeAddr(t)
	b := startKafkaBroker(t, "THORSTREAM_HTTP_ADDR="+httpAddr, "THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS=0")
	const topic, group, total = "orders", "billing", 60
	mustCLI(t, b.addr, "", "topic", "create", topic, "--partitions", "3")
	var lines strings.Builder
	for i := range total {
		fmt.Fprintf(&lines, "k%d:v%d\n", i, i)
	}
	mustCLI(t, b.addr, lines.String(), "produce", topic, "--key-separator", ":")
	ends := map[string]int64{}
	var endSum int64
	for p := range 3 {
		out, _ := mustCLI(t, b.addr, "", "consume", topic, "--partition", strconv.Itoa(p), "--from-beginning")
		ends[fmt.Sprintf("%s/%d", topic, p)] = int64(len(outputLines(out)))
		endSum += int64(len(outputLines(out)))
	}
	if endSum != total {
		t.Fatalf("the partitions hold %d records, want %d", endSum, total)
	}

	// A franz-go consumer joins the group, consumes everything and commits the first record of
	// each partition.
	cl := newKafkaClient(t, b.kafkaAddr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID("cli-groups-test"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.Balancers(kgo.RangeBalancer()))
	var first []*kgo.Record
	for _, r := range pollRecords(t, cl, total) {
		if r.Offset == 0 {
			first = append(first, r)
		}
	}
	if len(first) != 3 {
		t.Fatalf("%d partitions start at offset 0, want 3 (every partition has records): %v", len(first), ends)
	}
	if err := cl.CommitRecords(ctx(t, 30*time.Second), first...); err != nil {
		t.Fatal(err)
	}
	d := describeGroup(t, b.addr, group)
	if d.state != "Stable" || d.protocol != "consumer/range" || len(d.members) != 1 {
		t.Fatalf("describe with one member:\n%s", d.raw)
	}
	if m := d.members[0]; !strings.Contains(m, " cli-groups-test ") || !strings.Contains(m, "127.0.0.1") || !strings.HasSuffix(m, "orders(0,1,2)") {
		t.Fatalf("member line %q: want the client id, its host and orders(0,1,2)", m)
	}
	if d.lag != total-3 {
		t.Fatalf("lag %d after committing offset 1 of each partition, want %d:\n%s", d.lag, total-3, d.raw)
	}
	for tp, end := range ends {
		if row := d.rows[tp]; len(row) != 4 || row[0] != "1" || row[1] != strconv.FormatInt(end, 10) || row[2] != strconv.FormatInt(end-1, 10) {
			t.Fatalf("%s: row %q, want committed 1, log end %d, lag %d:\n%s", tp, row, end, end-1, d.raw)
		}
	}

	// Resetting or deleting the group is refused while it has a member.
	if _, stderr, code := runCLI(t, b.addr, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest"); code != 1 ||
		!strings.Contains(stderr, "the group has 1 active member (state Stable): offsets can only be reset while it has none") {
		t.Fatalf("reset-offsets of an active group: exit %d, stderr %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, b.addr, "", "group", "delete", group); code != 1 || !strings.Contains(stderr, "NON_EMPTY_GROUP") {
		t.Fatalf("delete of an active group: exit %d, stderr %s", code, stderr)
	}

	// The consumer commits the rest: the lag goes to zero, in the CLI and in /metrics.
	if err := cl.CommitUncommittedOffsets(ctx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	d = waitForGroup(t, b.addr, group, "lag 0", func(d groupDescription) bool { return d.lag == 0 })
	for tp, end := range ends {
		if row := d.rows[tp]; row[0] != strconv.FormatInt(end, 10) || row[2] != "0" {
			t.Fatalf("%s: row %q, want committed %d and lag 0:\n%s", tp, row, end, d.raw)
		}
	}
	samples := scrape(t, httpAddr)
	if lag, n := sum(samples, "thorstream_group_lag", "group="+group, "topic="+topic); lag != 0 || n != 3 {
		t.Fatalf("thorstream_group_lag: %d series summing to %v, want 3 at 0", n, lag)
	}

	// Once the consumer has left, the group is Empty and its offsets can be reset.
	cl.Close()
	waitForGroup(t, b.addr, group, "the member leaving", func(d groupDescription) bool { return d.state == "Empty" && len(d.members) == 0 })
	out, _ := mustCLI(t, b.addr, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
	if !strings.Contains(out, "dry run: nothing committed") || len(outputLines(out)) != 5 {
		t.Fatalf("dry run printed:\n%s", out)
	}
	for tp, end := range ends {
		p := strings.TrimPrefix(tp, topic+"/")
		if !strings.Contains(out, fmt.Sprintf("%s  %s          %d", topic, p, end)) {
			t.Fatalf("the plan does not show partition %s at %d:\n%s", p, end, out)
		}
	}
	if d := describeGroup(t, b.addr, group); d.lag != 0 {
		t.Fatalf("a dry run changed the offsets:\n%s", d.raw)
	}
	out, _ = mustCLI(t, b.addr, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
	if !strings.Contains(out, "committed the new offsets of 3 partitions for group billing") {
		t.Fatalf("--execute printed:\n%s", out)
	}
	if d := describeGroup(t, b.addr, group); d.lag != total {
		t.Fatalf("lag %d after the reset, want %d:\n%s", d.lag, total, d.raw)
	}
	if lag, _ := sum(scrape(t, httpAddr), "thorstream_group_lag", "group="+group); lag != total {
		t.Fatalf("thorstream_group_lag sums to %v after the reset, want %d", lag, total)
	}

	// A new member resumes from the reset offsets: every record again.
	cl2 := newKafkaClient(t, b.kafkaAddr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.DisableAutoCommit())
	if again := pollRecords(t, cl2, total); len(again) != total {
		t.Fatalf("consumed %d records after the reset, want %d", len(again), total)
	}
	cl2.Close()
	waitForGroup(t, b.addr, group, "the second member leaving", func(d groupDescription) bool { return d.state == "Empty" })

	out, _ = mustCLI(t, b.addr, "", "group", "list")
	if !strings.Contains(out, "billing  Empty  consumer") {
		t.Fatalf("group list:\n%s", out)
	}
	if out, _ = mustCLI(t, b.addr, "", "group", "delete", group); out != "deleted group billing\n" {
		t.Fatalf("delete printed %q", out)
	}
	if _, stderr, code := runCLI(t, b.addr, "", "group", "describe", group); code != 1 || !strings.Contains(stderr, "GROUP_ID_NOT_FOUND") {
		t.Fatalf("describe of the deleted group: exit %d, stderr %s", code, stderr)
	}
	if out, _ = mustCLI(t, b.addr, "", "group", "list"); strings.Contains(out, "billing") {
		t.Fatalf("group list after the deletion:\n%s", out)
	}
}
