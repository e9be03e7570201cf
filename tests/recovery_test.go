package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
)

// TestTornTailRepairedAtStartup cuts bytes off the end of a partition's active segment while the
// broker is down, as a crash in the middle of a write would, and checks that the broker starts,
// says in its log how much it dropped, and serves every whole batch before the cut.
func TestTornTailRepairedAtStartup(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	c := newClient(t, b.addr)
	if err := c.CreateTopic(ctx(t, 30*time.Second), "torn", 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	p := client.NewProducer(c, client.ProducerOptions{Linger: -1})
	const batches = 20
	for i := 0; i < batches; i++ {
		// One record per request, sent synchronously: one batch each.
		if err := p.ProduceSync(ctx(t, 30*time.Second), &client.Record{Topic: "torn", Partition: 0, Value: fmt.Appendf(nil, "value-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	b.stop()

	segment := filepath.Join(dir, "torn-0", "00000000000000000000.log")
	info, err := os.Stat(segment)
	if err != nil {
		t.Fatal(err)
	}
	const cut = 7 // inside the last batch
	if err := os.Truncate(segment, info.Size()-cut); err != nil {
		t.Fatal(err)
	}

	b.restart()
	logs := b.output.String()
	if !strings.Contains(logs, "truncated torn tail") || !strings.Contains(logs, "torn-0") {
		t.Fatalf("the broker's log does not report the repair:\n%s", logs)
	}
	c2 := newClient(t, b.addr)
	end, err := c2.ListOffsets(ctx(t, 30*time.Second), "torn", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if end != batches-1 {
		t.Fatalf("after the repair the log ends at %d, want %d (the last batch dropped)", end, batches-1)
	}
	got := readPartition(t, c2, client.TopicPartition{Topic: "torn", Partition: 0}, end)
	for i, r := range got {
		if want := fmt.Sprintf("value-%02d", i); r.value != want {
			t.Fatalf("offset %d holds %q, want %q", i, r.value, want)
		}
	}
	// The partition takes writes again, at the next offset.
	p2 := client.NewProducer(c2, client.ProducerOptions{})
	defer p2.Close()
	rec := &client.Record{Topic: "torn", Partition: 0, Value: []byte("after-repair")}
	if err := p2.ProduceSync(ctx(t, 30*time.Second), rec); err != nil {
		t.Fatal(err)
	}
	if rec.Offset != batches-1 {
		t.Fatalf("first record after the repair got offset %d, want %d", rec.Offset, batches-1)
	}
}

// TestMalformedConfigurationExits2 checks that each kind of bad setting stops the broker before
// it starts, with status 2 and a message naming the variable.
func TestMalformedConfigurationExits2(t *testing.T) {
	cases := []struct {
		env, want string
	}{
		{"THORSTREAM_ADDR=not-an-address", "THORSTREAM_ADDR"},
		{"THORSTREAM_ADDR=127.0.0.1:99999", "THORSTREAM_ADDR"},
		{"THORSTREAM_CLUSTER_PEERS=2=", "THORSTREAM_CLUSTER_PEERS"},
		{"THORSTREAM_CLUSTER_PEERS=1=127.0.0.1:9101,1=127.0.0.1:9102", "THORSTREAM_CLUSTER_PEERS"},
		{"THORSTREAM_SEGMENT_BYTES=-5", "THORSTREAM_SEGMENT_BYTES"},
		{"THORSTREAM_RETENTION_BYTES=lots", "THORSTREAM_RETENTION_BYTES"},
		{"THORSTREAM_FSYNC=sometimes", "THORSTREAM_FSYNC"},
		{"THORSTREAM_NODE_ID=-1", "THORSTREAM_NODE_ID"},
		{"THORSTREAM_EVENT_LOOPS=0", "THORSTREAM_EVENT_LOOPS"},
		{"THORSTREAM_LOG_LEVEL=loud", "THORSTREAM_LOG_LEVEL"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(filepath.Join(binDir, "thorstream"))
			cmd.Env = append(cleanEnv(), "THORSTREAM_DATA_DIR="+dir, tc.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			exitErr, ok := err.(*exec.ExitError)
			if !ok || exitErr.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not name %s:\n%s", tc.want, stderr.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("the broker wrote %d entries in its data directory before failing", len(entries))
			}
		})
	}
}

// TestGracefulShutdownKeepsEverything stops the broker with SIGTERM under fsync=never and checks
// that a restart serves every acknowledged record: shutdown syncs what was written.
func TestGracefulShutdownKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, "THORSTREAM_FSYNC=never")
	c := newClient(t, b.addr)
	p := client.NewProducer(c, client.ProducerOptions{})
	const n = 5000
	recs := make([]*client.Record, n)
	for i := range recs {
		recs[i] = &client.Record{Topic: "graceful", Partition: -1, Key: fmt.Appendf(nil, "k%d", i%17), Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := p.ProduceSync(ctx(t, time.Minute), recs...); err != nil {
		t.Fatalf("produce: %v\nbroker log:\n%s", err, b.output.String())
	}
	p.Close()
	b.stop()
	if !strings.Contains(b.output.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop line in the log:\n%s", b.output.String())
	}
	b.restart()
	c2 := newClient(t, b.addr)
	info, err := c2.DescribeTopic(ctx(t, 30*time.Second), "graceful")
	if err != nil {
		t.Fatal(err)
	}
	count := int64(0)
	for part := range info.Partitions {
		end, err := c2.ListOffsets(ctx(t, 30*time.Second), "graceful", int32(part), -1)
		if err != nil {
			t.Fatal(err)
		}
		count += int64(len(readPartition(t, c2, client.TopicPartition{Topic: "graceful", Partition: int32(part)}, end)))
	}
	if count != n {
		t.Fatalf("after restart the topic holds %d records, want %d", count, n)
	}
}
