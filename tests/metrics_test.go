package tests

// End-to-end test of the HTTP admin listener: the real broker binary with THORSTREAM_HTTP_ADDR
// set, franz-go producing and consuming through the Kafka listener, and /metrics, /healthz and
// /readyz read over HTTP as Prometheus and a supervisor would.

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads addr's /metrics and parses every sample.
func scrape(t *testing.T, addr string) []sample {
	t.Helper()
	code, body := httpGet(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("/metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				k, val, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(val, `"`)
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// sum adds up the samples named name whose labels include every one of labels ("k=v").
func sum(samples []sample, name string, labels ...string) (total float64, found int) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			total += s.value
			found++
		}
	}
	return total, found
}

func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsEndToEnd(t *testing.T) {
	httpAddr := freeAddr(t)
	b := startKafkaBroker(t, "THORSTREAM_HTTP_ADDR="+httpAddr)

	// Listeners up (startBroker waited for a Ping): ready follows at once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpGet(t, httpAddr, "/readyz")
		if code == http.StatusOK && strings.TrimSpace(body) == "ready" {
			break
		}
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: ") {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q 30 s after the listeners came up", code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
	if code, body := httpGet(t, httpAddr, "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	before := scrape(t, httpAddr)

	const topic, partitions, records = "metered", 2, 300
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, topic, partitions, nil)
	for i := range records {
		// Partition 1 only, a batch at a time: several Produce requests.
		r := &kgo.Record{Partition: 1, Value: []byte(fmt.Sprintf("record %d", i))}
		if i%100 == 99 {
			if err := cl.ProduceSync(ctx(t, 30*time.Second), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cl.Produce(ctx(t, 30*time.Second), r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	consumer := newKafkaClient(t, b.kafkaAddr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {1: kgo.NewOffset().AtStart()}}))
	for read := 0; read < records; {
		fetches := consumer.PollFetches(ctx(t, 30*time.Second))
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		read += fetches.NumRecords()
	}

	after := scrape(t, httpAddr)
	delta := func(name string, labels ...string) float64 {
		t.Helper()
		a, found := sum(after, name, labels...)
		if found == 0 {
			t.Fatalf("%s %v: no sample", name, labels)
		}
		was, _ := sum(before, name, labels...)
		return a - was
	}

	// Requests: Produce, Fetch, CreateTopics, and none of them failed.
	produces := delta("thorstream_requests_total", "protocol=kafka", "api=Produce")
	t.Logf("%v Produce requests, %v latency observations", produces, delta("thorstream_request_duration_seconds_count", "protocol=kafka", "api=Produce"))
	if produces < 3 {
		t.Errorf("%v Produce requests counted, want at least 3", produces)
	}
	if n := delta("thorstream_requests_total", "protocol=kafka", "api=Fetch"); n < 1 {
		t.Errorf("%v Fetch requests counted", n)
	}
	if n := delta("thorstream_requests_total", "protocol=kafka", "api=CreateTopics"); n != 1 {
		t.Errorf("%v CreateTopics requests counted, want 1", n)
	}
	if n := delta("thorstream_request_errors_total", "protocol=kafka", "api=Produce"); n != 0 {
		t.Errorf("%v Produce errors counted, want 0", n)
	}

	// The Produce latency histogram: one observation per request, in cumulative buckets.
	count := delta("thorstream_request_duration_seconds_count", "protocol=kafka", "api=Produce")
	if count != produces {
		t.Errorf("%v Produce latencies for %v requests", count, produces)
	}
	var buckets []sample
	for _, s := range after {
		if s.name == "thorstream_request_duration_seconds_bucket" && s.labels["protocol"] == "kafka" && s.labels["api"] == "Produce" {
			buckets = append(buckets, s)
		}
	}
	if len(buckets) < 10 || buckets[len(buckets)-1].labels["le"] != "+Inf" {
		t.Fatalf("Produce latency buckets: %v", buckets)
	}
	for i := 1; i < len(buckets); i++ {
		if buckets[i].value < buckets[i-1].value {
			t.Errorf("buckets not cumulative: le=%s %v after le=%s %v", buckets[i].labels["le"], buckets[i].value, buckets[i-1].labels["le"], buckets[i-1].value)
		}
	}
	if inf, _ := sum(after, "thorstream_request_duration_seconds_count", "protocol=kafka", "api=Produce"); buckets[len(buckets)-1].value != inf {
		t.Errorf("+Inf bucket %v, count %v", buckets[len(buckets)-1].value, inf)
	}
	if finite := buckets[len(buckets)-2].value; finite < count {
		t.Errorf("%v of %v produces took over %s s", count-finite, count, buckets[len(buckets)-2].labels["le"])
	}

	// Storage: the records went to partition 1, were synced (fsync=always), and came back out.
	if n := delta("thorstream_topic_records_in_total", "topic="+topic); n != records {
		t.Errorf("%v records in, want %d", n, records)
	}
	if n := delta("thorstream_topic_records_out_total", "topic="+topic); n < records {
		t.Errorf("%v records out, want at least %d", n, records)
	}
	if n := delta("thorstream_log_fsyncs_total"); n < 1 {
		t.Errorf("%v syncs counted", n)
	}
	if n := delta("thorstream_produce_fsync_wait_seconds_count"); n < produces {
		t.Errorf("%v fsync waits for %v produces", n, produces)
	}
	for p, want := range []float64{0, records} {
		end, found := sum(after, "thorstream_partition_log_end_offset", "topic="+topic, "partition="+strconv.Itoa(p))
		if found != 1 || end != want {
			t.Errorf("partition %d log end offset %v (%d samples), want %v", p, end, found, want)
		}
	}
	if size, _ := sum(after, "thorstream_partition_size_bytes", "topic="+topic, "partition=1"); size <= 0 {
		t.Errorf("partition 1 size %v", size)
	}

	// Connections: the two clients are open on the Kafka listener.
	if open, _ := sum(after, "thorstream_connections_open", "listener=kafka"); open < 2 {
		t.Errorf("%v connections open on the Kafka listener, want at least 2", open)
	}
}
