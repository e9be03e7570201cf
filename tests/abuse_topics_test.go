package tests

// Hostile topic administration: requests that would create topics or partitions without bound,
// configs that would roll a segment on every produce, and mutations of the internal offsets
// topic. Each is refused with Kafka's error code, over a connection that stays open, and leaves
// nothing on disk. THORSTREAM_ABUSE_LONG=1 runs the longer variants (make abuse).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/client"
)

// Kafka error codes these tests expect.
const (
	codeInvalidTopic      = 17
	codeInvalidConfig     = 40
	codePolicyViolation   = 44
	codeThrottlingQuota   = 89
	codeInvalidPartitions = 37
)

// topicDirs lists the partition directories in a data directory (not the internal topic's).
func topicDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "__") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

func metadataNaming(names []string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.AllowAutoTopicCreation = true
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// TestAbuseMetadataNamingThousandsOfNewTopics: one Metadata request naming 7,000 new topics
// creates at most THORSTREAM_MAX_AUTO_CREATE_TOPICS of them, quickly, and answers the rest with
// THROTTLING_QUOTA_EXCEEDED (retriable); retries stop at the broker's partition limit with
// POLICY_VIOLATION.
func TestAbuseMetadataNamingThousandsOfNewTopics(t *testing.T) {
	const limit = 100
	maxPartitions := 600
	if abuseLong() {
		maxPartitions = 3000
	}
	b := startKafkaBroker(t, fmt.Sprintf("THORSTREAM_MAX_PARTITIONS=%d", maxPartitions))
	names := make([]string, 7000)
	for i := range names {
		names[i] = fmt.Sprintf("flood-%05d", i)
	}
	k := dialKafka(t, b.kafkaAddr)
	started := time.Now()
	resp := k.do(metadataNaming(names)).(*kmsg.MetadataResponse)
	took := time.Since(started)
	if len(resp.Topics) != len(names) {
		t.Fatalf("%d topics answered, want %d", len(resp.Topics), len(names))
	}
	created, throttled := 0, 0
	for _, rt := range resp.Topics {
		switch rt.ErrorCode {
		case 0:
			created++
		case codeThrottlingQuota:
			throttled++
		default:
			t.Fatalf("topic %s: error %d", *rt.Topic, rt.ErrorCode)
		}
	}
	if created != limit || throttled != len(names)-limit {
		t.Fatalf("%d created, %d throttled; want %d and %d", created, throttled, limit, len(names)-limit)
	}
	if took > 30*time.Second {
		t.Fatalf("the request took %v", took)
	}
	t.Logf("one Metadata naming %d new topics: %d created in %v", len(names), created, took)
	if n := len(topicDirs(t, b.dataDir)); n != limit {
		t.Fatalf("%d partition directories, want %d", n, limit)
	}
	// A client retrying creates more, up to the broker's limit, and then is refused for good.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp := k.do(metadataNaming(names)).(*kmsg.MetadataResponse)
		ok, policy := 0, 0
		for _, rt := range resp.Topics {
			switch rt.ErrorCode {
			case 0:
				ok++
			case codePolicyViolation:
				policy++
			}
		}
		if ok > maxPartitions {
			t.Fatalf("%d topics exist, the limit is %d partitions", ok, maxPartitions)
		}
		if ok == maxPartitions-offsetsPartitions && policy > 0 { // the offsets topic holds some
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retries did not reach the partition limit: %d topics, %d refused", ok, policy)
		}
	}
	if n := len(topicDirs(t, b.dataDir)); n != maxPartitions-offsetsPartitions {
		t.Fatalf("%d partition directories, want %d", n, maxPartitions-offsetsPartitions)
	}
	// The broker serves as before.
	cl := newKafkaClient(t, b.kafkaAddr)
	produceSync(t, cl, &kgo.Record{Topic: "flood-00000", Value: []byte("still served")})
}

// TestAbuseProduceNamingManyNewTopics: a produce naming more new topics than one request may
// create fails the partitions of the rest with THROTTLING_QUOTA_EXCEEDED, and writes the others.
func TestAbuseProduceNamingManyNewTopics(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_MAX_AUTO_CREATE_TOPICS=10")
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 30000
	for i := 0; i < 25; i++ {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = fmt.Sprintf("spray-%02d", i)
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = kafkaBatch(1, 0, -1, -1, -1)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := dialKafka(t, b.kafkaAddr).do(req).(*kmsg.ProduceResponse)
	written, throttled := 0, 0
	for _, rt := range resp.Topics {
		switch code := rt.Partitions[0].ErrorCode; code {
		case 0:
			written++
		case codeThrottlingQuota:
			throttled++
		default:
			t.Fatalf("%s: error %d", rt.Topic, code)
		}
	}
	if written != 10 || throttled != 15 {
		t.Fatalf("%d written, %d throttled; want 10 and 15", written, throttled)
	}
}

// TestAbuseCreateTopicsHundredThousandPartitions: requests for far more partitions than the
// broker can hold are refused before anything is created.
func TestAbuseCreateTopicsHundredThousandPartitions(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_MAX_PARTITIONS=200")
	cl := newKafkaClient(t, b.kafkaAddr)
	k := dialKafka(t, b.kafkaAddr)
	expect := func(what string, code int16, msg string, topics ...kmsg.CreateTopicsRequestTopic) {
		t.Helper()
		req := createTopicsRequest(false, topics...)
		req.Version = 7
		resp := k.do(req).(*kmsg.CreateTopicsResponse)
		for _, rt := range resp.Topics {
			if rt.ErrorCode != code || rt.ErrorMessage == nil || !strings.Contains(*rt.ErrorMessage, msg) {
				t.Fatalf("%s: topic %s answered %d %v, want %d with %q", what, rt.Topic, rt.ErrorCode, rt.ErrorMessage, code, msg)
			}
		}
		if dirs := topicDirs(t, b.dataDir); len(dirs) != 0 {
			t.Fatalf("%s: %d directories left, e.g. %s", what, len(dirs), dirs[0])
		}
	}
	expect("one topic of 100,000 partitions", codePolicyViolation, "THORSTREAM_MAX_PARTITIONS_PER_REQUEST",
		topicSpec("huge", 100000, nil))
	var many []kmsg.CreateTopicsRequestTopic
	for i := 0; i < 20; i++ {
		many = append(many, topicSpec(fmt.Sprintf("wide-%d", i), 5000, nil))
	}
	expect("20 topics of 5,000 partitions", codePolicyViolation, "THORSTREAM_MAX_PARTITIONS_PER_REQUEST", many...)
	expect("one topic past the broker's limit", codePolicyViolation, "THORSTREAM_MAX_PARTITIONS", topicSpec("big", 500, nil))
	expect("100,001 partitions", codeInvalidPartitions, "between 1 and 100000", topicSpec("over", 100001, nil))
	// Within the limits, creation works and the broker answers as before.
	createTopic(t, cl, "fits", 150, nil)
	if n := len(topicDirs(t, b.dataDir)); n != 150 {
		t.Fatalf("%d directories, want 150", n)
	}
	if abuseLong() {
		// A topic exactly filling the limit, then one partition more.
		createTopic(t, cl, "rest", 49, nil)
		expect2 := createTopicsRequest(false, topicSpec("one-more", 1, nil))
		expect2.Version = 7
		if rt := k.do(expect2).(*kmsg.CreateTopicsResponse).Topics[0]; rt.ErrorCode != codePolicyViolation {
			t.Fatalf("one partition past the limit: %d", rt.ErrorCode)
		}
	}
}

// TestAbuseTinySegments: segment.bytes=14 and segment.ms=1 would roll a segment (three file
// descriptors) on nearly every produce; both are refused with INVALID_CONFIG.
func TestAbuseTinySegments(t *testing.T) {
	b := startKafkaBroker(t)
	k := dialKafka(t, b.kafkaAddr)
	for _, tc := range []struct{ key, value, msg string }{
		{"segment.bytes", "14", "at least 1048576"},
		{"segment.bytes", "1048575", "at least 1048576"},
		{"segment.ms", "1", "at least 60000"},
	} {
		req := createTopicsRequest(false, topicSpec("tiny", 1, map[string]string{tc.key: tc.value}))
		req.Version = 7
		rt := k.do(req).(*kmsg.CreateTopicsResponse).Topics[0]
		if rt.ErrorCode != codeInvalidConfig || rt.ErrorMessage == nil || !strings.Contains(*rt.ErrorMessage, tc.msg) {
			t.Fatalf("%s=%s: %d %v, want INVALID_CONFIG with %q", tc.key, tc.value, rt.ErrorCode, rt.ErrorMessage, tc.msg)
		}
	}
	if dirs := topicDirs(t, b.dataDir); len(dirs) != 0 {
		t.Fatalf("directories left: %v", dirs)
	}
	cl := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, cl, "smallest", 1, map[string]string{"segment.bytes": "1048576", "segment.ms": "60000"})
}

// TestAbuseDeleteRecordsOnOffsetsTopic: DeleteRecords on the internal offsets topic is refused
// with INVALID_TOPIC_EXCEPTION, as Kafka refuses it, and a committed offset survives a restart.
func TestAbuseDeleteRecordsOnOffsetsTopic(t *testing.T) {
	addr := freeAddr(t)
	b := startBroker(t, t.TempDir(), "THORSTREAM_KAFKA_ADDR="+addr)
	c := newClient(t, b.addr)
	if err := c.CreateTopic(ctx(t, 30*time.Second), "orders", 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	tp := client.TopicPartition{Topic: "orders", Partition: 0}
	if err := c.CommitOffsets(ctx(t, 30*time.Second), "billing", map[client.TopicPartition]int64{tp: 42}); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version, req.TimeoutMillis = 2, 30000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "__consumer_offsets"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialKafka(t, addr).do(req).(*kmsg.DeleteRecordsResponse)
	if got := resp.Topics[0].Partitions[0]; got.ErrorCode != codeInvalidTopic || got.LowWatermark != -1 {
		t.Fatalf("DeleteRecords on the offsets topic: error %d, low watermark %d; want INVALID_TOPIC_EXCEPTION", got.ErrorCode, got.LowWatermark)
	}
	// Deleting the topic itself is refused too.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TimeoutMillis, del.TopicNames = 4, 30000, []string{"__consumer_offsets"}
	if got := dialKafka(t, addr).do(del).(*kmsg.DeleteTopicsResponse).Topics[0]; got.ErrorCode != codeInvalidTopic {
		t.Fatalf("DeleteTopics on the offsets topic: error %d", got.ErrorCode)
	}
	b.stop()
	b.restart()
	c2 := newClient(t, b.addr)
	got, err := c2.FetchCommitted(ctx(t, 30*time.Second), "billing", []client.TopicPartition{tp})
	if err != nil {
		t.Fatal(err)
	}
	if got[tp] != 42 {
		t.Fatalf("committed offset after a restart: %d, want 42", got[tp])
	}
}

// TestAbuseDeleteTopicWithLongestName: a topic named with Kafka's 249-character limit is deleted
// for real: re-created under the same name, it is empty, and no file name is over 255 bytes.
func TestAbuseDeleteTopicWithLongestName(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr)
	name := strings.Repeat("n", 249)
	createTopic(t, cl, name, 3, nil)
	for p := int32(0); p < 3; p++ {
		produceSync(t, cl, &kgo.Record{Topic: name, Partition: p, Value: []byte("old")})
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TimeoutMillis, del.TopicNames = 4, 30000, []string{name}
	if got := dialKafka(t, b.kafkaAddr).do(del).(*kmsg.DeleteTopicsResponse).Topics[0]; got.ErrorCode != 0 {
		t.Fatalf("delete: error %d %v", got.ErrorCode, got.ErrorMessage)
	}
	createTopic(t, cl, name, 3, nil)
	for p := int32(0); p < 3; p++ {
		if got := listOffset(t, b.kafkaAddr, name, p, -1); got.Offset != 0 {
			t.Fatalf("re-created partition %d ends at %d, want an empty log", p, got.Offset)
		}
	}
	_ = filepath.WalkDir(b.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && len(d.Name()) > 255 {
			t.Errorf("file name of %d bytes: %s", len(d.Name()), path)
		}
		return nil
	})
}
