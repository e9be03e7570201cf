package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/thorstream/thorstream/cluster"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9092" || c.KafkaAddr != "" || c.DataDir != "data" || c.NodeID != 0 {
		t.Errorf("listeners and data: %+v", c)
	}
	if c.Fsync != (cluster.FsyncPolicy{Mode: cluster.FsyncAlways}) {
		t.Errorf("fsync %v, want always", c.Fsync)
	}
	if c.SegmentBytes != 1<<30 || c.RetentionBytes != -1 || c.RetentionMs != 604800000 || c.SegmentMs != 604800000 {
		t.Errorf("segments and retention: %+v", c)
	}
	if !c.AutoCreateTopics || c.DefaultPartitions != 1 || c.MaxFrameBytes != 64<<20 || c.LogLevel != zapcore.InfoLevel {
		t.Errorf("other defaults: %+v", c)
	}
	if c.MaxPartitions != autoMaxPartitions() || c.MaxPartitions < 1 || c.MaxPartitions > cluster.DefaultMaxPartitions ||
		c.MaxPartitionsPerRequest != 10000 || c.MaxAutoCreateTopics != 100 || c.MaxOpenSegments != autoMaxOpenSegments() {
		t.Errorf("creation limits: %+v", c)
	}
}

func TestLoadConfigLimitsAndTestSegments(t *testing.T) {
	env := map[string]string{
		"THORSTREAM_SEGMENT_BYTES":              "1MiB",
		"THORSTREAM_INTERNAL_SEGMENT_BYTES":     "16KiB",
		"THORSTREAM_SEGMENT_MS":                 "60000",
		"THORSTREAM_MAX_PARTITIONS":             "500",
		"THORSTREAM_MAX_PARTITIONS_PER_REQUEST": "50",
		"THORSTREAM_MAX_AUTO_CREATE_TOPICS":     "7",
	}
	c, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SegmentBytes != 16<<10 || c.SegmentMs != 60000 {
		t.Errorf("segments: %d bytes, %d ms; want the test size 16KiB and 60000 ms", c.SegmentBytes, c.SegmentMs)
	}
	if c.MaxPartitions != 500 || c.MaxPartitionsPerRequest != 50 || c.MaxAutoCreateTopics != 7 {
		t.Errorf("limits: %+v", c)
	}
}

func TestLoadConfigValues(t *testing.T) {
	env := map[string]string{
		"THORSTREAM_ADDR":                  "127.0.0.1:9100",
		"THORSTREAM_KAFKA_ADDR":            "127.0.0.1:9200",
		"THORSTREAM_NODE_ID":               "1",
		"THORSTREAM_CLUSTER_PEERS":         "0=127.0.0.1:9101, 2=127.0.0.1:9102",
		"THORSTREAM_FSYNC":                 "interval:5",
		"THORSTREAM_SEGMENT_BYTES":         "256MiB",
		"THORSTREAM_RETENTION_BYTES":       "10G",
		"THORSTREAM_RETENTION_MS":          "-1",
		"THORSTREAM_EVENT_LOOPS":           "3",
		"THORSTREAM_LOG_LEVEL":             "debug",
		"THORSTREAM_AUTO_CREATE_TOPICS":    "false",
		"THORSTREAM_DEFAULT_PARTITIONS":    "6",
		"THORSTREAM_KAFKA_ADVERTISED_ADDR": "broker.example:9200",
	}
	// A flag wins over its variable.
	c, err := LoadConfig([]string{"--event-loops", "4"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9100" || c.KafkaAddr != "127.0.0.1:9200" || c.KafkaAdvertised != "broker.example:9200" || c.NodeID != 1 {
		t.Errorf("addresses: %+v", c)
	}
	if len(c.Peers) != 2 || c.Peers[0] != (Peer{0, "127.0.0.1:9101"}) || c.Peers[1] != (Peer{2, "127.0.0.1:9102"}) {
		t.Errorf("peers: %+v", c.Peers)
	}
	if c.DataDir != filepath.Join("data", "node-1") {
		t.Errorf("cluster mode data dir %q, want data/node-1", c.DataDir)
	}
	if c.Fsync != (cluster.FsyncPolicy{Mode: cluster.FsyncInterval, Interval: 5 * time.Millisecond}) {
		t.Errorf("fsync %v", c.Fsync)
	}
	if c.SegmentBytes != 256<<20 || c.RetentionBytes != 10<<30 || c.RetentionMs != -1 {
		t.Errorf("sizes: %+v", c)
	}
	if c.EventLoops != 4 || c.LogLevel != zapcore.DebugLevel || c.AutoCreateTopics || c.DefaultPartitions != 6 {
		t.Errorf("others: %+v", c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	f := func(env, value, wantVar, wantText string) {
		t.Helper()
		_, err := LoadConfig(nil, func(k string) string {
			if k == env {
				return value
			}
			if k == "THORSTREAM_NODE_ID" && env == "THORSTREAM_CLUSTER_PEERS" {
				return "1"
			}
			return ""
		}, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s=%q: err %v, want a ConfigError", env, value, err)
			return
		}
		if ce.Env != wantVar || !strings.Contains(err.Error(), wantText) {
			t.Errorf("%s=%q: %v, want %s and %q", env, value, err, wantVar, wantText)
		}
	}
	f("THORSTREAM_ADDR", "nope", "THORSTREAM_ADDR", "not host:port")
	f("THORSTREAM_ADDR", "127.0.0.1:70000", "THORSTREAM_ADDR", "bad port")
	f("THORSTREAM_KAFKA_ADDR", "0.0.0.0:9092", "THORSTREAM_KAFKA_ADDR", "is also THORSTREAM_ADDR")
	f("THORSTREAM_CLUSTER_PEERS", "2=", "THORSTREAM_CLUSTER_PEERS", "not id=host:port")
	f("THORSTREAM_CLUSTER_PEERS", "=127.0.0.1:1", "THORSTREAM_CLUSTER_PEERS", "not id=host:port")
	f("THORSTREAM_CLUSTER_PEERS", "x=127.0.0.1:1", "THORSTREAM_CLUSTER_PEERS", "not a node id")
	f("THORSTREAM_CLUSTER_PEERS", "2=127.0.0.1:1,2=127.0.0.1:2", "THORSTREAM_CLUSTER_PEERS", "appears twice")
	f("THORSTREAM_CLUSTER_PEERS", "1=127.0.0.1:1", "THORSTREAM_CLUSTER_PEERS", "which is this node")
	f("THORSTREAM_SEGMENT_BYTES", "-5", "THORSTREAM_SEGMENT_BYTES", "not a size")
	f("THORSTREAM_SEGMENT_BYTES", "1", "THORSTREAM_SEGMENT_BYTES", "smaller than the minimum")
	f("THORSTREAM_SEGMENT_BYTES", "1048575", "THORSTREAM_SEGMENT_BYTES", "smaller than the minimum of 1048576")
	f("THORSTREAM_SEGMENT_BYTES", "256KiB", "THORSTREAM_SEGMENT_BYTES", "smaller than the minimum")
	f("THORSTREAM_SEGMENT_BYTES", "2GiB", "THORSTREAM_SEGMENT_BYTES", "larger than 2147483647")
	f("THORSTREAM_INTERNAL_SEGMENT_BYTES", "1KiB", "THORSTREAM_INTERNAL_SEGMENT_BYTES", "smaller than the minimum of 4096")
	f("THORSTREAM_SEGMENT_MS", "1", "THORSTREAM_SEGMENT_MS", "below the minimum of 60000")
	f("THORSTREAM_MAX_PARTITIONS", "0", "THORSTREAM_MAX_PARTITIONS", "or auto")
	f("THORSTREAM_MAX_PARTITIONS", "many", "THORSTREAM_MAX_PARTITIONS", "or auto")
	f("THORSTREAM_MAX_PARTITIONS_PER_REQUEST", "0", "THORSTREAM_MAX_PARTITIONS_PER_REQUEST", "1 to 1000000")
	f("THORSTREAM_MAX_AUTO_CREATE_TOPICS", "-3", "THORSTREAM_MAX_AUTO_CREATE_TOPICS", "1 to 100000")
	f("THORSTREAM_RETENTION_BYTES", "-2", "THORSTREAM_RETENTION_BYTES", "not a size")
	f("THORSTREAM_RETENTION_MS", "0", "THORSTREAM_RETENTION_MS", "not a number of milliseconds")
	f("THORSTREAM_FSYNC", "interval:0", "THORSTREAM_FSYNC", "1 to 3600000")
	f("THORSTREAM_FSYNC", "sometimes", "THORSTREAM_FSYNC", "not always")
	f("THORSTREAM_NODE_ID", "-1", "THORSTREAM_NODE_ID", "not a node id")
	f("THORSTREAM_EVENT_LOOPS", "0", "THORSTREAM_EVENT_LOOPS", "1 to 256")
	f("THORSTREAM_LOG_LEVEL", "fatal", "THORSTREAM_LOG_LEVEL", "not a log level")
	f("THORSTREAM_AUTO_CREATE_TOPICS", "maybe", "THORSTREAM_AUTO_CREATE_TOPICS", "not true or false")
	f("THORSTREAM_DEFAULT_PARTITIONS", "0", "THORSTREAM_DEFAULT_PARTITIONS", "1 to 100000")
	f("THORSTREAM_MAX_FRAME_BYTES", "2GiB", "THORSTREAM_MAX_FRAME_BYTES", "larger than 1GiB")
}

func TestLoadConfigRejectsArguments(t *testing.T) {
	if _, err := LoadConfig([]string{"extra"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a stray argument was accepted")
	}
}
