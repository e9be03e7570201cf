package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/client/clienttest"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

const testTimeout = 30 * time.Second

// result is one thorctl run.
type result struct {
	code           int
	stdout, stderr string
}

// thorctl runs the command line with stdin and the given environment.
func thorctl(t *testing.T, stdin string, environ map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(args, &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return environ[k] }, ctx: ctx, progressEvery: time.Hour,
	})
	return result{code, out.String(), errOut.String()}
}

func newCluster(t *testing.T, opts clienttest.Options) *clienttest.Cluster {
	t.Helper()
	c, err := clienttest.NewCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestUsageErrors(t *testing.T) {
	f := func(wantInStderr string, args ...string) {
		t.Helper()
		r := thorctl(t, "", nil, args...)
		if r.code != 2 {
			t.Errorf("thorctl %q: exit %d, want 2 (stderr %q)", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, wantInStderr) || !strings.Contains(r.stderr, "usage: thorctl") {
			t.Errorf("thorctl %q: stderr %q, want %q and the usage", args, r.stderr, wantInStderr)
		}
	}
	f("no command")
	f(`unknown command "frobnicate"`, "frobnicate")
	f("flag provided but not defined: -nope", "--nope", "topic", "list")
	f("missing subcommand", "topic")
	f(`unknown subcommand "rename"`, "topic", "rename")
	f("missing NAME", "topic", "create")
	f(`unexpected argument "b"`, "topic", "delete", "a", "b")
	f("--partitions must be at least 1", "topic", "create", "t", "--partitions", "0")
	f("want key=value", "topic", "create", "t", "--config", "novalue")
	f("missing TOPIC", "produce")
	f("--acks must be all, 1 or 0", "produce", "t", "--acks", "2")
	f("exclude each other", "consume", "t", "--from-beginning", "--offset", "3")
	f("neither milliseconds nor RFC 3339", "consume", "t", "--timestamp", "yesterday")
	f("--offset must be >= 0", "consume", "t", "--offset", "-5")
	f("missing FILE.log", "segment", "dump")
	if r := thorctl(t, "", nil, "help"); r.code != 0 || !strings.Contains(r.stdout, "usage: thorctl") {
		t.Errorf("help: %+v", r)
	}
}

func TestParseConsumeFlagsAnywhere(t *testing.T) {
	o, err := parseConsume([]string{"--partition", "2", "events", "--timestamp", "2024-01-02T03:04:05Z", "--print-key", "--max-messages", "7"})
	if err != nil {
		t.Fatal(err)
	}
	want := consumeOptions{topic: "events", partition: 2, offset: -1, timestamp: 1704164645000, printKey: true, maxMessages: 7}
	if o != want {
		t.Fatalf("parseConsume = %+v, want %+v", o, want)
	}
	if ts, err := parseTimestamp("1700000000123"); err != nil || ts != 1700000000123 {
		t.Fatalf("parseTimestamp(ms) = %d, %v", ts, err)
	}
}

func TestUnreachableBrokerNamedInError(t *testing.T) {
	dead := newCluster(t, clienttest.Options{})
	addr := dead.Addrs()[0]
	dead.Close()
	r := thorctl(t, "", map[string]string{"THORSTREAM_BROKER": addr}, "topic", "list")
	if r.code != 1 || !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, "NETWORK_EXCEPTION") {
		t.Fatalf("exit %d, stderr %q: want status 1 naming %s and NETWORK_EXCEPTION", r.code, r.stderr, addr)
	}
}

func TestTopicCommands(t *testing.T) {
	fc := newCluster(t, clienttest.Options{Nodes: 2})
	env := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}

	r := thorctl(t, "", env, "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=60000", "--config", "cleanup.policy=delete")
	if r.code != 0 || r.stdout != "created topic orders (3 partitions, the cluster's default replication factor)\n" {
		t.Fatalf("create: %+v", r)
	}
	// --broker wins over the environment.
	r = thorctl(t, "", map[string]string{"THORSTREAM_BROKER": "127.0.0.1:1"}, "--broker", fc.Addrs()[1], "topic", "create", "audit")
	if r.code != 0 {
		t.Fatalf("create with --broker: %+v", r)
	}
	r = thorctl(t, "", env, "topic", "create", "orders")
	if r.code != 1 || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") || !strings.Contains(r.stderr, "broker "+fc.Addrs()[0]) {
		t.Fatalf("duplicate create: %+v", r)
	}

	r = thorctl(t, "", env, "topic", "list")
	wantList := "TOPIC   PARTITIONS  REPLICATION\naudit   1           1\norders  3           1\n"
	if r.code != 0 || r.stdout != wantList {
		t.Fatalf("list:\n%s\nwant:\n%s", r.stdout, wantList)
	}

	var b batch.Builder
	b.Reset()
	b.Append(nil, []byte("a"), 1, nil)
	b.Append(nil, []byte("b"), 2, nil)
	fc.AppendBatch("orders", 1, b.Finish())
	fc.SetLogStart("orders", 1, 1)
	r = thorctl(t, "", env, "topic", "describe", "orders")
	wantDescribe := `Topic: orders
Partitions: 3
Configs:
  cleanup.policy=delete
  retention.ms=60000
PARTITION  LEADER  REPLICAS  ISR  EARLIEST  LATEST  LAG
0          0       0         0    0         0       0
1          1       1         1    1         2       0
2          0       0         0    0         0       0
`
	if r.code != 0 || r.stdout != wantDescribe {
		t.Fatalf("describe:\n%s\nwant:\n%s\nstderr %s", r.stdout, wantDescribe, r.stderr)
	}
	// Through the other node, and with a partition whose node is down: no leader, no offsets.
	fc.SetLeader("orders", 2, -1)
	r = thorctl(t, "", map[string]string{"THORSTREAM_BROKER": fc.Addrs()[1]}, "topic", "describe", "orders")
	wantDescribe = strings.Replace(wantDescribe, "2          0       0         0    0         0       0", "2          -1      -         -    -         -       -", 1)
	if r.code != 0 || r.stdout != wantDescribe {
		t.Fatalf("describe without a leader:\n%s\nwant:\n%s\nstderr %s", r.stdout, wantDescribe, r.stderr)
	}
	fc.SetLeader("orders", 2, 0)

	if r = thorctl(t, "", env, "topic", "delete", "audit"); r.code != 0 || r.stdout != "deleted topic audit\n" {
		t.Fatalf("delete: %+v", r)
	}
	if r = thorctl(t, "", env, "topic", "describe", "audit"); r.code != 1 || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describe deleted: %+v", r)
	}
}

func TestProduceAndConsume(t *testing.T) {
	fc := newCluster(t, clienttest.Options{Nodes: 2})
	if err := fc.CreateTopic("t", 2, nil); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}

	r := thorctl(t, "k1:v1\nk2:v2\nnokey\n", env, "produce", "t", "--key-separator", ":", "--partition", "1")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "produced 3 records in ") {
		t.Fatalf("produce: %+v", r)
	}
	stored := fc.Records("t", 1)
	if len(stored) != 3 || string(stored[0].Key) != "k1" || string(stored[0].Value) != "v1" || stored[2].Key != nil || string(stored[2].Value) != "nokey" {
		t.Fatalf("stored %+v", stored)
	}
	r = thorctl(t, "x\ny\n", env, "produce", "t", "--partition", "0", "--acks", "1", "--linger", "0")
	if r.code != 0 {
		t.Fatalf("produce to 0: %+v", r)
	}

	f := func(want string, args ...string) {
		t.Helper()
		r := thorctl(t, "", env, append([]string{"consume", "t"}, args...)...)
		if r.code != 0 || r.stdout != want {
			t.Errorf("consume %q: exit %d stdout %q stderr %q, want %q", args, r.code, r.stdout, r.stderr, want)
		}
	}
	f("") // latest: nothing new
	f("v1\nv2\nnokey\n", "--partition", "1", "--from-beginning")
	f("1/1\tk2\tv2\n1/2\tnull\tnokey\n", "--partition", "1", "--offset", "1", "--print-key", "--print-offset")
	f("x\n", "--partition", "0", "--from-beginning", "--max-messages", "1")
	all := thorctl(t, "", env, "consume", "t", "--from-beginning")
	if lines := strings.Split(strings.TrimSpace(all.stdout), "\n"); all.code != 0 || len(lines) != 5 {
		t.Errorf("consume all: %+v", all)
	}

	// A group commits what it printed and resumes there.
	f("v1\nv2\n", "--partition", "1", "--from-beginning", "--group", "g", "--max-messages", "2")
	if got := fc.Committed("g", "t", 1); got != 2 {
		t.Errorf("committed %d, want 2", got)
	}
	f("nokey\n", "--partition", "1", "--group", "g")
}

func TestProduceFailureExitsNonZero(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	if err := fc.CreateTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	fc.Control(func(r *clienttest.Request) *clienttest.Action {
		if r.Key == proto.KeyProduce {
			return &clienttest.Action{Error: errcode.MessageTooLarge}
		}
		return nil
	})
	r := thorctl(t, "a\nb\n", map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}, "produce", "t")
	if r.code != 1 || !strings.Contains(r.stderr, "2 records failed") || !strings.Contains(r.stderr, "MESSAGE_TOO_LARGE") ||
		!strings.Contains(r.stderr, fc.Addrs()[0]) {
		t.Fatalf("%+v", r)
	}
}

func TestProgressLine(t *testing.T) {
	if got := progressLine(52000, 2*time.Second); got != "produced 52000 records (26000/s)" {
		t.Fatalf("progressLine = %q", got)
	}
}

// lineWriter signals when it has seen n lines.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	n     int
	ready chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.n && w.ready != nil {
		close(w.ready)
		w.ready = nil
	}
	return len(p), nil
}

func TestConsumeFollowUntilInterrupted(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	if err := fc.CreateTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	follow, interrupt := context.WithCancel(ctx)
	out := &lineWriter{n: 3, ready: make(chan struct{})}
	ready := out.ready
	fetches := make(chan struct{}, 100)
	fc.Control(func(r *clienttest.Request) *clienttest.Action {
		if r.Key == proto.KeyFetch {
			select {
			case fetches <- struct{}{}:
			default:
			}
		}
		return nil
	})
	codeCh := make(chan int, 1)
	go func() {
		codeCh <- run([]string{"--broker", fc.Addrs()[0], "consume", "t", "--follow"}, &env{
			stdin: strings.NewReader(""), stdout: out, stderr: io.Discard,
			getenv: func(string) string { return "" }, ctx: follow, progressEvery: time.Hour,
		})
	}()
	<-fetches // positions are resolved (latest) before the first fetch
	c, err := client.New(client.Options{Brokers: fc.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := client.NewProducer(c, client.ProducerOptions{})
	if err := p.ProduceSync(ctx, client.NewRecord("t", nil, []byte("1")), client.NewRecord("t", nil, []byte("2")), client.NewRecord("t", nil, []byte("3"))); err != nil {
		t.Fatal(err)
	}
	p.Close()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("records not printed")
	}
	interrupt()
	if code := <-codeCh; code != 0 {
		t.Fatalf("exit %d after interrupt", code)
	}
	if got := out.buf.String(); got != "1\n2\n3\n" {
		t.Fatalf("printed %q", got)
	}
}

func TestSegmentDumpAndVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var data []byte
	var b batch.Builder
	for i, n := range []int{3, 2} {
		b.Reset()
		for j := 0; j < n; j++ {
			b.Append([]byte("k"), []byte("v"), 1700000000000+int64(j), nil)
		}
		raw := append([]byte(nil), b.Finish()...)
		batch.SetBaseOffset(raw, int64(i*3))
		batch.SetPartitionLeaderEpoch(raw, 0)
		data = append(data, raw...)
	}
	path := filepath.Join(dir, "00000000000000000000.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	r := thorctl(t, "", nil, "segment", "dump", path)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "position=0 baseOffset=0 lastOffset=2 count=3 size=") ||
		!strings.Contains(lines[1], " baseOffset=3 lastOffset=4 count=2 ") ||
		!strings.Contains(lines[1], "codec=none maxTimestamp=2023-11-14T22:13:20.001Z") {
		t.Fatalf("dump: %+v", r)
	}
	r = thorctl(t, "", nil, "segment", "verify", filepath.Dir(dir))
	if r.code != 0 || r.stdout != path+": ok, 2 batches, "+itoa(len(data))+" bytes, next offset 5\n" {
		t.Fatalf("verify: %+v", r)
	}

	data[len(data)-1] ^= 0xff // break the second batch's CRC
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r = thorctl(t, "", nil, "segment", "verify", path)
	if r.code != 1 || !strings.Contains(r.stdout, "BAD (corrupt) at position ") || !strings.Contains(r.stderr, "1 of 1 files bad") {
		t.Fatalf("verify corrupt: %+v", r)
	}
	r = thorctl(t, "", nil, "segment", "dump", path)
	if r.code != 1 || !strings.Contains(r.stdout, "BAD") || !strings.Contains(r.stderr, "1 valid batches") {
		t.Fatalf("dump corrupt: %+v", r)
	}
	if r = thorctl(t, "", nil, "segment", "verify", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "no .log files") {
		t.Fatalf("verify empty dir: %+v", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
