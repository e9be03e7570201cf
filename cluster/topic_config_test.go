package cluster

import (
	"time"

	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

func TestBuildTopicConfig(t *testing.T) {
	d := DefaultDefaults
	cases := []struct {
		name      string
		overrides map[string]string
		code      errcode.Code
		check     func(*TopicConfig) bool
	}{
		{"defaults", nil, errcode.None, func(c *TopicConfig) bool {
			return c.RetentionMs == d.RetentionMs && c.RetentionBytes == -1 && c.SegmentBytes == d.SegmentBytes &&
				c.MaxMessageBytes == d.MaxMessageBytes && c.TimestampType == TimestampTypeCreateTime &&
				c.MaxTimestampDifferenceMs == -1 && c.MinInsyncReplicas == 1 && !c.LogAppendTime() && c.Overrides != nil
		}},
		{"retention.ms -1", map[string]string{ConfigRetentionMs: "-1"}, errcode.None, func(c *TopicConfig) bool { return c.RetentionMs == -1 }},
		{"retention.ms -2", map[string]string{ConfigRetentionMs: "-2"}, errcode.InvalidConfig, nil},
		{"retention.bytes", map[string]string{ConfigRetentionBytes: "1048576"}, errcode.None, func(c *TopicConfig) bool { return c.RetentionBytes == 1<<20 }},
		{"segment.bytes", map[string]string{ConfigSegmentBytes: "1048576"}, errcode.None, func(c *TopicConfig) bool { return c.SegmentBytes == 1<<20 }},
		{"segment.bytes too small", map[string]string{ConfigSegmentBytes: "1048575"}, errcode.InvalidConfig, nil},
		{"segment.bytes 14", map[string]string{ConfigSegmentBytes: "14"}, errcode.InvalidConfig, nil},
		{"segment.bytes too large", map[string]string{ConfigSegmentBytes: "2147483648"}, errcode.InvalidConfig, nil},
		{"segment.ms", map[string]string{ConfigSegmentMs: "60000"}, errcode.None, func(c *TopicConfig) bool { return c.SegmentMs == 60000 }},
		{"segment.ms below a minute", map[string]string{ConfigSegmentMs: "59999"}, errcode.InvalidConfig, nil},
		{"segment.ms 1", map[string]string{ConfigSegmentMs: "1"}, errcode.InvalidConfig, nil},
		{"segment.ms 0", map[string]string{ConfigSegmentMs: "0"}, errcode.InvalidConfig, nil},
		{"max.message.bytes", map[string]string{ConfigMaxMessageBytes: "100"}, errcode.None, func(c *TopicConfig) bool { return c.MaxMessageBytes == 100 }},
		{"max.message.bytes too large", map[string]string{ConfigMaxMessageBytes: "1073741825"}, errcode.InvalidConfig, nil},
		{"max.message.bytes negative", map[string]string{ConfigMaxMessageBytes: "-1"}, errcode.InvalidConfig, nil},
		{"LogAppendTime", map[string]string{ConfigTimestampType: TimestampTypeLogAppendTime}, errcode.None, func(c *TopicConfig) bool { return c.LogAppendTime() }},
		{"timestamp type bad", map[string]string{ConfigTimestampType: "logappendtime"}, errcode.InvalidConfig, nil},
		{"timestamp difference", map[string]string{ConfigTimestampDifference: "5000"}, errcode.None, func(c *TopicConfig) bool { return c.MaxTimestampDifferenceMs == 5000 }},
		{"timestamp difference negative", map[string]string{ConfigTimestampDifference: "-1"}, errcode.InvalidConfig, nil},
		{"cleanup.policy delete", map[string]string{ConfigCleanupPolicy: "delete"}, errcode.None, nil},
		{"cleanup.policy compact", map[string]string{ConfigCleanupPolicy: "compact"}, errcode.None, func(c *TopicConfig) bool { return c.Compact() && !c.Delete() }},
		{"cleanup.policy delete,compact", map[string]string{ConfigCleanupPolicy: "delete, compact"}, errcode.None, func(c *TopicConfig) bool { return c.CleanupPolicy == PolicyCompactDelete }},
		{"cleanup.policy unknown", map[string]string{ConfigCleanupPolicy: "shred"}, errcode.InvalidConfig, nil},
		{"cleanup.policy empty", map[string]string{ConfigCleanupPolicy: ""}, errcode.InvalidConfig, nil},
		{"dirty ratio", map[string]string{ConfigMinCleanableRatio: "0.01"}, errcode.None, func(c *TopicConfig) bool { return c.MinCleanableDirtyRatio == 0.01 }},
		{"dirty ratio above 1", map[string]string{ConfigMinCleanableRatio: "1.5"}, errcode.InvalidConfig, nil},
		{"delete.retention.ms", map[string]string{ConfigDeleteRetentionMs: "1000"}, errcode.None, func(c *TopicConfig) bool { return c.DeleteRetentionMs == 1000 }},
		{"max lag below min lag", map[string]string{ConfigCleanupPolicy: "compact", ConfigMinCompactionLagMs: "5000", ConfigMaxCompactionLagMs: "1000"}, errcode.InvalidConfig, nil},
		{"compaction lags", map[string]string{ConfigCleanupPolicy: "compact", ConfigMinCompactionLagMs: "1000", ConfigMaxCompactionLagMs: "120000"}, errcode.None, func(c *TopicConfig) bool {
			return c.MinCompactionLagMs == 1000 && c.LogLimits().SegmentAge == 2*time.Minute && c.LogLimits().RetentionBytes == -1
		}},
		{"min.insync.replicas", map[string]string{ConfigMinInsyncReplicas: "2"}, errcode.None, func(c *TopicConfig) bool { return c.MinInsyncReplicas == 2 }},
		{"min.insync.replicas 0", map[string]string{ConfigMinInsyncReplicas: "0"}, errcode.InvalidConfig, nil},
		{"not a number", map[string]string{ConfigRetentionBytes: "1k"}, errcode.InvalidConfig, nil},
		{"unknown key", map[string]string{"compression.type": "zstd"}, errcode.InvalidConfig, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := BuildTopicConfig(tc.overrides, d)
			if codeOf(err) != tc.code {
				t.Fatalf("err %v, want code %v", err, tc.code)
			}
			if err != nil {
				if c != nil {
					t.Fatal("config returned with an error")
				}
				return
			}
			if tc.check != nil && !tc.check(c) {
				t.Fatalf("config %+v", c)
			}
			for k, v := range tc.overrides {
				if c.Overrides[k] != v {
					t.Fatalf("override %s not kept", k)
				}
			}
		})
	}
	// Overrides are copied, not aliased.
	in := map[string]string{ConfigRetentionMs: "5"}
	c, _ := BuildTopicConfig(in, d)
	in[ConfigRetentionMs] = "6"
	if c.Overrides[ConfigRetentionMs] != "5" {
		t.Fatal("Overrides aliases the caller's map")
	}
	eff := c.Effective()
	for i := 1; i < len(eff); i++ {
		if eff[i-1][0] >= eff[i][0] {
			t.Fatalf("Effective not sorted: %v", eff)
		}
	}
	found := false
	for _, kv := range eff {
		if kv[0] == ConfigRetentionMs {
			found = kv[1] == "5"
		}
	}
	if !found {
		t.Fatalf("Effective misses retention.ms=5: %v", eff)
	}
}
