package cluster

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
)

// Topic configuration keys honoured, with Apache Kafka's names and meanings.
const (
	ConfigRetentionMs          = "retention.ms"
	ConfigRetentionBytes       = "retention.bytes"
	ConfigSegmentBytes         = "segment.bytes"
	ConfigSegmentMs            = "segment.ms"
	ConfigMaxMessageBytes      = "max.message.bytes"
	ConfigTimestampType        = "message.timestamp.type"
	ConfigTimestampDifference  = "message.timestamp.difference.max.ms"
	ConfigCleanupPolicy        = "cleanup.policy"
	ConfigMinInsyncReplicas    = "min.insync.replicas"
	ConfigMinCleanableRatio    = "min.cleanable.dirty.ratio"
	ConfigMinCompactionLagMs   = "min.compaction.lag.ms"
	ConfigMaxCompactionLagMs   = "max.compaction.lag.ms"
	ConfigDeleteRetentionMs    = "delete.retention.ms"
	PolicyDelete               = "delete"
	PolicyCompact              = "compact"
	PolicyCompactDelete        = "compact,delete"
	TimestampTypeCreateTime    = "CreateTime"
	TimestampTypeLogAppendTime = "LogAppendTime"
)

// Minimums of the segment configs. MinSegmentBytes is Apache Kafka 4's minimum of segment.bytes
// and log.segment.bytes. MinSegmentMs is stricter than Kafka's 1 ms: every segment holds three
// file descriptors until retention removes it, and a topic rolling a segment on nearly every
// produce would exhaust them; one minute bounds a partition to 1,440 rolls a day.
const (
	MinSegmentBytes = 1 << 20
	MinSegmentMs    = 60_000
)

// Defaults are the broker-wide values a topic gets for configs it does not set.
type Defaults struct {
	RetentionMs     int64 // -1: keep forever
	RetentionBytes  int64 // -1: no size limit
	SegmentBytes    int64
	SegmentMs       int64 // 0: roll by size only
	MaxMessageBytes int32
	// Compaction (log.cleanup.policy and log.cleaner.* in Kafka); zero values mean Kafka's
	// defaults (DefaultDefaults).
	CleanupPolicy          string
	MinCleanableDirtyRatio float64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	DeleteRetentionMs      int64
	// MinInsyncReplicas is min.insync.replicas of topics that do not set it; 0: 1.
	MinInsyncReplicas int32
}

// Kafka's compaction defaults.
const (
	DefaultMinCleanableDirtyRatio = 0.5
	DefaultDeleteRetentionMs      = 24 * 60 * 60 * 1000
	DefaultMaxCompactionLagMs     = math.MaxInt64
)

func (d *Defaults) fillCompaction() {
	if d.CleanupPolicy == "" {
		d.CleanupPolicy = PolicyDelete
	}
	if d.MinCleanableDirtyRatio == 0 {
		d.MinCleanableDirtyRatio = DefaultMinCleanableDirtyRatio
	}
	if d.MaxCompactionLagMs == 0 {
		d.MaxCompactionLagMs = DefaultMaxCompactionLagMs
	}
	if d.DeleteRetentionMs == 0 {
		d.DeleteRetentionMs = DefaultDeleteRetentionMs
	}
}

// DefaultDefaults are Apache Kafka's defaults.
var DefaultDefaults = Defaults{
	RetentionMs:     7 * 24 * time.Hour.Milliseconds(),
	RetentionBytes:  -1,
	SegmentBytes:    1 << 30,
	SegmentMs:       7 * 24 * time.Hour.Milliseconds(),
	MaxMessageBytes: 1048588,

	CleanupPolicy:          PolicyDelete,
	MinCleanableDirtyRatio: DefaultMinCleanableDirtyRatio,
	MaxCompactionLagMs:     DefaultMaxCompactionLagMs,
	DeleteRetentionMs:      DefaultDeleteRetentionMs,
}

// TopicConfig is a topic's effective configuration. It is immutable once built.
type TopicConfig struct {
	RetentionMs              int64
	RetentionBytes           int64
	SegmentBytes             int64
	SegmentMs                int64
	MaxMessageBytes          int32
	TimestampType            string
	MaxTimestampDifferenceMs int64 // -1: unchecked
	MinInsyncReplicas        int32
	CleanupPolicy            string // PolicyDelete, PolicyCompact or PolicyCompactDelete
	MinCleanableDirtyRatio   float64
	MinCompactionLagMs       int64
	MaxCompactionLagMs       int64
	DeleteRetentionMs        int64
	// Overrides holds the configs set on the topic, as given.
	Overrides map[string]string
}

// Compact reports whether the log cleaner compacts the topic (cleanup.policy has compact).
func (c *TopicConfig) Compact() bool {
	return c.CleanupPolicy == PolicyCompact || c.CleanupPolicy == PolicyCompactDelete
}

// Delete reports whether retention deletes old segments (cleanup.policy has delete).
func (c *TopicConfig) Delete() bool {
	return c.CleanupPolicy == PolicyDelete || c.CleanupPolicy == PolicyCompactDelete
}

// LogLimits are the roll and retention limits of the topic's logs. A topic without the delete
// policy keeps its segments whatever their age or size (only the cleaner shrinks it); with
// compaction the active segment also rolls by max.compaction.lag.ms, so no record waits longer
// than that to become cleanable.
func (c *TopicConfig) LogLimits() partition.Limits {
	lim := partition.Limits{
		SegmentBytes:   c.SegmentBytes,
		SegmentAge:     time.Duration(c.SegmentMs) * time.Millisecond,
		RetentionBytes: c.RetentionBytes,
		RetentionAge:   time.Duration(c.RetentionMs) * time.Millisecond,
	}
	if !c.Delete() {
		lim.RetentionBytes, lim.RetentionAge = -1, 0
	}
	if c.Compact() && c.MaxCompactionLagMs > 0 && c.MaxCompactionLagMs < math.MaxInt64/int64(time.Millisecond) {
		lag := time.Duration(c.MaxCompactionLagMs) * time.Millisecond
		if lim.SegmentAge <= 0 || lag < lim.SegmentAge {
			lim.SegmentAge = lag
		}
	}
	return lim
}

// LogAppendTime reports whether the broker stamps record timestamps.
func (c *TopicConfig) LogAppendTime() bool { return c.TimestampType == TimestampTypeLogAppendTime }

// Effective lists every honoured config with its value, overrides and defaults alike, sorted by key.
func (c *TopicConfig) Effective() [][2]string {
	m := map[string]string{
		ConfigRetentionMs:         strconv.FormatInt(c.RetentionMs, 10),
		ConfigRetentionBytes:      strconv.FormatInt(c.RetentionBytes, 10),
		ConfigSegmentBytes:        strconv.FormatInt(c.SegmentBytes, 10),
		ConfigSegmentMs:           strconv.FormatInt(c.SegmentMs, 10),
		ConfigMaxMessageBytes:     strconv.FormatInt(int64(c.MaxMessageBytes), 10),
		ConfigTimestampType:       c.TimestampType,
		ConfigTimestampDifference: strconv.FormatInt(c.MaxTimestampDifferenceMs, 10),
		ConfigCleanupPolicy:       c.CleanupPolicy,
		ConfigMinInsyncReplicas:   strconv.FormatInt(int64(c.MinInsyncReplicas), 10),
		ConfigMinCleanableRatio:   strconv.FormatFloat(c.MinCleanableDirtyRatio, 'g', -1, 64),
		ConfigMinCompactionLagMs:  strconv.FormatInt(c.MinCompactionLagMs, 10),
		ConfigMaxCompactionLagMs:  strconv.FormatInt(c.MaxCompactionLagMs, 10),
		ConfigDeleteRetentionMs:   strconv.FormatInt(c.DeleteRetentionMs, 10),
	}
	out := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// BuildTopicConfig checks a topic's config overrides and fills in the rest from d. An unknown key
// or a bad value gives INVALID_CONFIG naming it.
func BuildTopicConfig(overrides map[string]string, d Defaults) (*TopicConfig, error) {
	d.fillCompaction()
	c := &TopicConfig{
		CleanupPolicy:            d.CleanupPolicy,
		MinCleanableDirtyRatio:   d.MinCleanableDirtyRatio,
		MinCompactionLagMs:       d.MinCompactionLagMs,
		MaxCompactionLagMs:       d.MaxCompactionLagMs,
		DeleteRetentionMs:        d.DeleteRetentionMs,
		RetentionMs:              d.RetentionMs,
		RetentionBytes:           d.RetentionBytes,
		SegmentBytes:             d.SegmentBytes,
		SegmentMs:                d.SegmentMs,
		MaxMessageBytes:          d.MaxMessageBytes,
		TimestampType:            TimestampTypeCreateTime,
		MaxTimestampDifferenceMs: -1,
		MinInsyncReplicas:        max(1, d.MinInsyncReplicas),
		Overrides:                maps.Clone(overrides),
	}
	if c.Overrides == nil {
		c.Overrides = map[string]string{}
	}
	for k, v := range overrides {
		bad := func(why string) error {
			return errcode.New(errcode.InvalidConfig, "config %s=%q: %s", k, v, why)
		}
		num := func(minimum int64) (int64, error) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, bad("not an integer")
			}
			if n < minimum {
				return 0, bad(fmt.Sprintf("must be at least %d", minimum))
			}
			return n, nil
		}
		var err error
		switch k {
		case ConfigRetentionMs:
			c.RetentionMs, err = num(-1)
		case ConfigRetentionBytes:
			c.RetentionBytes, err = num(-1)
		case ConfigSegmentBytes:
			c.SegmentBytes, err = num(MinSegmentBytes)
			if err == nil && c.SegmentBytes > 1<<31-1 {
				err = bad("must be at most 2147483647")
			}
		case ConfigSegmentMs:
			c.SegmentMs, err = num(MinSegmentMs)
		case ConfigMaxMessageBytes:
			var n int64
			n, err = num(0)
			if err == nil && n > 1<<30 {
				err = bad("must be at most 1073741824")
			}
			c.MaxMessageBytes = int32(n)
		case ConfigTimestampType:
			if v != TimestampTypeCreateTime && v != TimestampTypeLogAppendTime {
				err = bad("must be CreateTime or LogAppendTime")
			}
			c.TimestampType = v
		case ConfigTimestampDifference:
			c.MaxTimestampDifferenceMs, err = num(0)
		case ConfigCleanupPolicy:
			c.CleanupPolicy, err = ParseCleanupPolicy(v)
			if err != nil {
				err = bad(err.Error())
			}
		case ConfigMinCleanableRatio:
			f, perr := strconv.ParseFloat(v, 64)
			if perr != nil || f < 0 || f > 1 {
				err = bad("must be a number between 0 and 1")
			}
			c.MinCleanableDirtyRatio = f
		case ConfigMinCompactionLagMs:
			c.MinCompactionLagMs, err = num(0)
		case ConfigMaxCompactionLagMs:
			c.MaxCompactionLagMs, err = num(1)
		case ConfigDeleteRetentionMs:
			c.DeleteRetentionMs, err = num(0)
		case ConfigMinInsyncReplicas:
			var n int64
			n, err = num(1)
			c.MinInsyncReplicas = int32(n)
		default:
			err = bad("unknown topic config")
		}
		if err != nil {
			return nil, err
		}
	}
	if c.Compact() && c.MaxCompactionLagMs < c.MinCompactionLagMs {
		return nil, errcode.New(errcode.InvalidConfig, "config %s=%d is below %s=%d", ConfigMaxCompactionLagMs, c.MaxCompactionLagMs, ConfigMinCompactionLagMs, c.MinCompactionLagMs)
	}
	return c, nil
}

// ParseCleanupPolicy reads a cleanup.policy value: "delete", "compact", or both as a list in
// either order (Kafka's "compact,delete").
func ParseCleanupPolicy(v string) (string, error) {
	var compact, del bool
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case PolicyDelete:
			del = true
		case PolicyCompact:
			compact = true
		default:
			return "", fmt.Errorf("must be delete, compact or compact,delete")
		}
	}
	switch {
	case compact && del:
		return PolicyCompactDelete, nil
	case compact:
		return PolicyCompact, nil
	default:
		return PolicyDelete, nil
	}
}
