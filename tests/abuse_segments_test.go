package tests

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openSegmentFiles counts the broker's open descriptors on segment files (.log, .index,
// .timeindex), read from /proc.
func openSegmentFiles(t *testing.T, b *brokerProc) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", b.cmd.Process.Pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if strings.HasSuffix(target, ".log") || strings.HasSuffix(target, ".index") || strings.HasSuffix(target, ".timeindex") {
			n++
		}
	}
	return n
}

// TestAbuseSegmentDescriptorsFollowActivity: a topic of many small segments costs the broker the
// active segments' descriptors plus at most THORSTREAM_MAX_OPEN_SEGMENTS, before and after a
// restart and while a consumer reads the whole history, instead of three descriptors a segment
// for as long as the segment exists.
func TestAbuseSegmentDescriptorsFollowActivity(t *testing.T) {
	const (
		topic       = "history"
		partitions  = 2
		maxOpen     = 6
		recordBytes = 100 << 10
	)
	records := 480 // about 48 MiB: 24 segments of 1 MiB a partition
	if abuseLong() {
		records = 4000
	}
	b := startKafkaBroker(t, "THORSTREAM_FSYNC=never", fmt.Sprintf("THORSTREAM_MAX_OPEN_SEGMENTS=%d", maxOpen))
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "segment.bytes", kmsg.StringPtr("1048576")
	rt.Configs = append(rt.Configs, cfg)
	req.Topics = append(req.Topics, rt)
	if resp := request[*kmsg.CreateTopicsResponse](t, cl, req); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: error %d", resp.Topics[0].ErrorCode)
	}
	// One record a request, so that every append is one batch and segments roll every 10 records.
	value := make([]byte, recordBytes) // incompressible: franz-go compresses with snappy by default
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	for i := 0; i < records; i++ {
		rec := &kgo.Record{Value: value, Partition: int32(i % partitions)}
		if err := cl.ProduceSync(ctx(t, time.Minute), rec).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	segments, _ := filepath.Glob(b.dataDir + "/" + topic + "-*/*.log")
	if len(segments) < records*recordBytes/(1<<20)*9/10 {
		t.Fatalf("%d segments on disk, want about %d: %v\n%s", len(segments), records*recordBytes/(1<<20), segments, b.output.String())
	}
	bound := 3*(partitions+offsetsPartitions) + maxOpen // active segments (the offsets topic's too) and the cache
	if n := openSegmentFiles(t, b.brokerProc); n > bound {
		t.Fatalf("%d segment files open after writing %d records, bound %d", n, records, bound)
	}

	b.stop()
	b.restart()
	if n := openSegmentFiles(t, b.brokerProc); n > bound {
		t.Fatalf("%d segment files open after a restart, bound %d", n, bound)
	}
	got := consume(t, b.kafkaAddr, records, topic)
	if len(got) != records {
		t.Fatalf("read %d records, want %d", len(got), records)
	}
	if n := openSegmentFiles(t, b.brokerProc); n > bound {
		t.Fatalf("%d segment files open after reading the whole history, bound %d", n, bound)
	}
}
