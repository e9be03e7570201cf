package tests

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// abuseLong reports whether the long versions of the hostile-client tests were asked for
// (`make abuse`).
func abuseLong() bool { return os.Getenv("THORSTREAM_ABUSE_LONG") == "1" }

// procStatusKiB reads a kB field (VmRSS, VmHWM) of a process's /proc status.
func procStatusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// produceAcked writes n records of sizes from 0 bytes to about 20 KB to topic (one partition,
// created here) with franz-go's defaults (idempotent, acks=all, batches up to 1 MB) before an
// attack, and returns a check, to run after it, that every acknowledged record is still there at
// its offset with its value.
func produceAcked(t *testing.T, kafkaAddr, topic string, n int) (verify func()) {
	t.Helper()
	cl := newKafkaClient(t, kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	records := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte{byte(i)}, (i*7919)%20000)
		if i%3 == 0 {
			v = append(v, fmt.Sprint(i)...) // not all alike
		}
		r := &kgo.Record{Value: v}
		cl.Produce(ctx(t, time.Minute), r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("record before the attack not acknowledged: %v", err)
			}
		})
		records = append(records, r)
	}
	if err := cl.Flush(ctx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	values := make(map[int64][]byte, n)
	for _, r := range records {
		values[r.Offset] = r.Value
	}
	return func() {
		t.Helper()
		got := consume(t, kafkaAddr, n, topic)
		if len(got) != n {
			t.Fatalf("after the attack %d of %d acknowledged records are left", len(got), n)
		}
		for _, r := range got {
			if want, ok := values[r.Offset]; !ok || !bytes.Equal(r.Value, want) {
				t.Fatalf("after the attack offset %d holds a different record", r.Offset)
			}
		}
	}
}
