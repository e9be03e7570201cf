package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/client/clienttest"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/proto"
)

// assignmentBytes is a ConsumerProtocolAssignment of the given version: topic → partitions
// (written in the order given), null user data, then extra bytes as later versions append.
func assignmentBytes(version int16, extra []byte, topics ...assignedTopic) []byte {
	b := proto.AppendInt16(nil, version)
	b = proto.AppendArrayLen(b, len(topics))
	for _, t := range topics {
		b = proto.AppendString(b, t.Topic)
		b = proto.AppendArrayLen(b, len(t.Partitions))
		for _, p := range t.Partitions {
			b = proto.AppendInt32(b, p)
		}
	}
	b = proto.AppendBytes(b, nil)
	return append(b, extra...)
}

func TestDecodeAssignment(t *testing.T) {
	f := func(name string, in []byte, want string, wantErr bool) {
		t.Helper()
		got, err := decodeAssignment(in)
		if wantErr {
			if !errors.Is(err, errAssignment) {
				t.Errorf("%s: err %v, want errAssignment", name, err)
			}
			return
		}
		if err != nil || formatAssignment(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, formatAssignment(got), err, want)
		}
	}
	two := []assignedTopic{{"orders", []int32{2, 0}}, {"audit", []int32{1}}}
	f("v0", assignmentBytes(0, nil, two...), "audit(1) orders(0,2)", false)
	f("v3 with fields after user data", assignmentBytes(3, []byte{0, 0, 0, 1, 9, 9}, two...), "audit(1) orders(0,2)", false)
	f("empty: not assigned yet", nil, "-", false)
	f("no topics", assignmentBytes(1, nil), "-", false)
	f("without user data (cut after the partitions)", assignmentBytes(0, nil, two...)[:len(assignmentBytes(0, nil, two...))-4], "audit(1) orders(0,2)", false)
	whole := assignmentBytes(0, nil, two...)
	f("cut inside the partitions", whole[:len(whole)-10], "", true)
	f("negative version", assignmentBytes(-1, nil, two...), "", true)
	f("huge topic count", append(proto.AppendInt32(proto.AppendInt16(nil, 0), 1<<30), 0, 0), "", true)
	f("one byte", []byte{0}, "", true)
}

// commit commits offsets for group through the Go client.
func commit(t *testing.T, addr, group string, offsets map[client.TopicPartition]int64) {
	t.Helper()
	c, err := client.New(client.Options{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.CommitOffsets(ctx, group, offsets); err != nil {
		t.Fatal(err)
	}
}

// appendRecords appends n records to topic/p with timestamps from ts on, 1 ms apart.
func appendRecords(fc *clienttest.Cluster, topic string, p int32, n int, ts int64) {
	var b batch.Builder
	b.Reset()
	for i := range n {
		b.Append(nil, []byte("v"), ts+int64(i), nil)
	}
	fc.AppendBatch(topic, p, b.Finish())
}

func TestGroupListDescribeDelete(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	env := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}
	if err := fc.CreateTopic("orders", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := fc.CreateTopic("audit", 1, nil); err != nil {
		t.Fatal(err)
	}

	if r := thorctl(t, "", env, "group", "list"); r.code != 0 || r.stdout != "GROUP  STATE  PROTOCOL-TYPE\n" {
		t.Fatalf("list without groups: %+v", r)
	}

	appendRecords(fc, "orders", 0, 10, 1000)
	appendRecords(fc, "orders", 1, 5, 1000)
	appendRecords(fc, "audit", 0, 4, 1000)
	commit(t, fc.Addrs()[0], "archiver", map[client.TopicPartition]int64{{Topic: "audit", Partition: 0}: 4})
	commit(t, fc.Addrs()[0], "billing", map[client.TopicPartition]int64{{Topic: "orders", Partition: 0}: 7, {Topic: "orders", Partition: 1}: 5})
	fc.SetGroup(proto.DescribedGroup{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Members: []proto.DescribedMember{
		{MemberID: "kgo-1", ClientID: "kgo", ClientHost: "/127.0.0.1",
			Assignment: assignmentBytes(0, nil, assignedTopic{"orders", []int32{0, 1}})},
		{MemberID: "app-2", InstanceID: ptrTo("app"), ClientID: "app", ClientHost: "/127.0.0.2",
			Assignment: assignmentBytes(1, nil, assignedTopic{"orders", []int32{2}})},
		{MemberID: "new-3", ClientID: "app", ClientHost: "/127.0.0.3"},
	}})

	r := thorctl(t, "", env, "group", "list")
	want := "GROUP     STATE   PROTOCOL-TYPE\narchiver  Empty   -\nbilling   Stable  consumer\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("list:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
	r = thorctl(t, "", env, "group", "list", "--state", "empty, PreparingRebalance")
	if r.code != 0 || r.stdout != "GROUP     STATE  PROTOCOL-TYPE\narchiver  Empty  -\n" {
		t.Fatalf("list --state:\n%s", r.stdout)
	}

	r = thorctl(t, "", env, "group", "describe", "billing")
	want = `Group: billing
State: Stable
Protocol: consumer/range
Members: 3
  MEMBER  INSTANCE  CLIENT-ID  HOST        PARTITIONS
  kgo-1   -         kgo        /127.0.0.1  orders(0,1)
  app-2   app       app        /127.0.0.2  orders(2)
  new-3   -         app        /127.0.0.3  -
Lag: 3
TOPIC   PARTITION  COMMITTED  LOG-END  LAG  MEMBER
orders  0          7          10       3    kgo-1
orders  1          5          5        0    kgo-1
orders  2          -          0        -    app-2
`
	if r.code != 0 || r.stdout != want {
		t.Fatalf("describe:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
	r = thorctl(t, "", env, "group", "describe", "archiver")
	want = "Group: archiver\nState: Empty\nProtocol: -\nMembers: none\nLag: 0\nTOPIC  PARTITION  COMMITTED  LOG-END  LAG  MEMBER\naudit  0          4          4        0    -\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("describe an empty group:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
	if r = thorctl(t, "", env, "group", "describe", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "group describe nobody: ") ||
		!strings.Contains(r.stderr, "GROUP_ID_NOT_FOUND") {
		t.Fatalf("describe an unknown group: %+v", r)
	}

	// A group whose members speak another protocol: their assignments are not decoded.
	fc.SetGroup(proto.DescribedGroup{Group: "connect-sink", State: "Stable", ProtocolType: "connect", Protocol: "sessioned",
		Members: []proto.DescribedMember{{MemberID: "w-1", ClientID: "worker", ClientHost: "/10.1.1.1", Assignment: []byte("opaque")}}})
	r = thorctl(t, "", env, "group", "describe", "connect-sink")
	if r.code != 0 || !strings.Contains(r.stdout, "Protocol: connect/sessioned\n") || !strings.Contains(r.stdout, `(6 bytes of protocol "connect")`) ||
		!strings.HasSuffix(r.stdout, "Offsets: none committed\n") {
		t.Fatalf("describe a connect group:\n%s\nstderr %s", r.stdout, r.stderr)
	}

	r = thorctl(t, "", env, "group", "delete", "billing")
	if r.code != 1 || !strings.Contains(r.stderr, "group delete billing: the group has active members; stop its consumers first") ||
		!strings.Contains(r.stderr, "NON_EMPTY_GROUP") {
		t.Fatalf("delete an active group: %+v", r)
	}
	if got := fc.Committed("billing", "orders", 0); got != 7 {
		t.Fatalf("a refused delete dropped the offsets: %d", got)
	}
	if r = thorctl(t, "", env, "group", "delete", "archiver"); r.code != 0 || r.stdout != "deleted group archiver\n" {
		t.Fatalf("delete: %+v", r)
	}
	if got := fc.Committed("archiver", "audit", 0); got != -1 {
		t.Fatalf("the deleted group's offset is still %d", got)
	}
	if r = thorctl(t, "", env, "group", "delete", "archiver"); r.code != 1 || !strings.Contains(r.stderr, "GROUP_ID_NOT_FOUND") {
		t.Fatalf("delete twice: %+v", r)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestGroupResetOffsetsUsage(t *testing.T) {
	f := func(wantInStderr string, args ...string) {
		t.Helper()
		r := thorctl(t, "", nil, append([]string{"group", "reset-offsets"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, wantInStderr) || !strings.Contains(r.stderr, "usage: thorctl group reset-offsets GROUP [flags]") {
			t.Errorf("reset-offsets %q: exit %d, stderr %q; want 2 and %q", args, r.code, r.stderr, wantInStderr)
		}
	}
	f("missing GROUP", "--topic", "t", "--to-earliest")
	f("--topic is required", "g", "--to-earliest")
	f("give one of --to-earliest, --to-latest, --to-offset N and --to-datetime TIME", "g", "--topic", "t")
	f("--to-earliest and --to-offset exclude each other", "g", "--topic", "t", "--to-earliest", "--to-offset", "3")
	f("--to-latest and --to-datetime exclude each other", "g", "--topic", "t", "--to-latest", "--to-datetime", "2024-01-01T00:00:00Z")
	f("--to-offset must be >= 0", "g", "--topic", "t", "--to-offset", "-1")
	f(`--to-datetime "yesterday" is not RFC 3339`, "g", "--topic", "t", "--to-datetime", "yesterday")
	f(`--topic "t:0,x": "x" is not a partition number`, "g", "--topic", "t:0,x", "--to-latest")
	f(`--topic ":1" names no topic`, "g", "--topic", ":1", "--to-latest")
	f("give one of", "g", "--topic", "t", "--to-earliest=false")
}

func TestGroupResetOffsets(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	env := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}
	if err := fc.CreateTopic("orders", 3, nil); err != nil {
		t.Fatal(err)
	}
	appendRecords(fc, "orders", 0, 10, 1000) // offsets 0..9 at 1000..1009 ms
	appendRecords(fc, "orders", 1, 10, 1000)
	fc.SetLogStart("orders", 1, 0)
	appendRecords(fc, "orders", 2, 3, 5000)
	commit(t, fc.Addrs()[0], "billing", map[client.TopicPartition]int64{{Topic: "orders", Partition: 0}: 2})

	reset := func(args ...string) result {
		return thorctl(t, "", env, append([]string{"group", "reset-offsets", "billing", "--topic"}, args...)...)
	}
	r := reset("orders", "--to-latest")
	want := "TOPIC   PARTITION  CURRENT  NEW\norders  0          2        10\norders  1          -        10\norders  2          -        3\n" +
		"dry run: nothing committed; run again with --execute to commit these offsets\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("dry run:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
	if got := fc.Committed("billing", "orders", 0); got != 2 {
		t.Fatalf("a dry run committed %d", got)
	}

	// Offsets beyond the log are moved to its end; a time matches the first record at or after it.
	r = reset("orders:0,2", "--to-offset", "7")
	if r.code != 0 || !strings.Contains(r.stdout, "orders  0          2        7\norders  2          -        3\n") {
		t.Fatalf("--to-offset past the end:\n%s", r.stdout)
	}
	r = reset("orders", "--to-datetime", time.UnixMilli(1004).UTC().Format(time.RFC3339Nano), "--execute")
	want = "TOPIC   PARTITION  CURRENT  NEW\norders  0          2        4\norders  1          -        4\norders  2          -        0\n" +
		"committed the new offsets of 3 partitions for group billing\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("--to-datetime --execute:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
	for p, want := range []int64{4, 4, 0} {
		if got := fc.Committed("billing", "orders", int32(p)); got != want {
			t.Errorf("partition %d committed %d, want %d", p, got, want)
		}
	}
	// After every record: the log end.
	r = reset("orders:2", "--to-datetime", "2100-01-01T00:00:00Z", "--execute")
	if r.code != 0 || !strings.Contains(r.stdout, "orders  2          0        3\n") || fc.Committed("billing", "orders", 2) != 3 {
		t.Fatalf("--to-datetime after every record:\n%s", r.stdout)
	}
	r = reset("orders:1", "--to-earliest", "--execute")
	if r.code != 0 || fc.Committed("billing", "orders", 1) != 0 {
		t.Fatalf("--to-earliest: %+v", r)
	}

	// A group nobody has used yet gets its offsets set before its consumers start.
	r = thorctl(t, "", env, "group", "reset-offsets", "fresh", "--topic", "orders:0", "--to-offset", "5", "--execute")
	if r.code != 0 || fc.Committed("fresh", "orders", 0) != 5 {
		t.Fatalf("a new group: %+v", r)
	}

	if r = reset("orders:3", "--to-latest"); r.code != 1 || !strings.Contains(r.stderr, "topic orders has no partition 3 (it has 3)") {
		t.Fatalf("an unknown partition: %+v", r)
	}
	if r = reset("missing", "--to-latest"); r.code != 1 || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("an unknown topic: %+v", r)
	}

	// Refused while the group has members, dry run or not, and nothing is committed.
	fc.SetGroup(proto.DescribedGroup{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range",
		Members: []proto.DescribedMember{{MemberID: "kgo-1", ClientID: "kgo", ClientHost: "/127.0.0.1"}}})
	for _, args := range [][]string{{"orders", "--to-earliest"}, {"orders", "--to-earliest", "--execute"}} {
		r = reset(args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr,
			"group reset-offsets billing: the group has 1 active member (state Stable): offsets can only be reset while it has none; stop its consumers first") {
			t.Fatalf("reset-offsets %q of an active group: %+v", args, r)
		}
	}
	if got := fc.Committed("billing", "orders", 0); got != 4 {
		t.Fatalf("a refused reset committed %d", got)
	}
}
