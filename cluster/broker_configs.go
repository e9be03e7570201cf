package cluster

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/vfs"
)

// BrokerConfig is one broker-wide setting under Kafka's broker config name (DescribeConfigs).
type BrokerConfig struct {
	Name  string
	Value string
	// Default reports that Value is the broker's built-in default (Kafka's DEFAULT_CONFIG); when
	// false it was configured at start-up (STATIC_BROKER_CONFIG). Every setting is static: it
	// changes with a restart, never while the broker runs.
	Default bool
	// TopicConfig is the topic config this setting is the default of, "" when none: a topic
	// without an override of its own takes this value.
	TopicConfig string
}

// Built-in defaults of the settings BrokerConfigs reports besides Defaults (which are
// DefaultDefaults): what the broker runs with when nothing is configured.
const (
	defaultNodeID               = 0
	defaultNumPartitions        = 1
	defaultRetentionCheck       = 30 * time.Second
	defaultIndexIntervalBytes   = 4096
	defaultProducerIDExpiration = DefaultProducerIDExpiration
)

// BrokerConfigs lists the broker's settings with Kafka's broker config names, their values and
// whether each is the built-in default, in a fixed order.
func (b *Broker) BrokerConfigs() []BrokerConfig {
	o := b.opts
	d, dd := o.Defaults, DefaultDefaults
	d.fillCompaction()
	retentionCheck := o.RetentionCheck
	if retentionCheck <= 0 {
		retentionCheck = defaultRetentionCheck
	}
	indexInterval := o.IndexIntervalBytes
	if indexInterval <= 0 {
		indexInterval = defaultIndexIntervalBytes
	}
	expiration := o.ProducerIDExpiration
	if expiration <= 0 {
		expiration = defaultProducerIDExpiration
	}
	cleanerThreads, cleanerBuffer, cleanerBackoff := o.Cleaner.Threads, o.Cleaner.DedupeBufferBytes, o.Cleaner.Backoff
	if cleanerThreads <= 0 {
		cleanerThreads = cleaner.DefaultThreads
	}
	if cleanerBuffer <= 0 {
		cleanerBuffer = cleaner.DefaultDedupeBufferBytes
	}
	if cleanerBackoff <= 0 {
		cleanerBackoff = cleaner.DefaultBackoff
	}
	cleanerIO := "-1" // unlimited
	if o.Cleaner.IOBytesPerSecond > 0 {
		cleanerIO = strconv.FormatFloat(o.Cleaner.IOBytesPerSecond, 'f', -1, 64)
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []BrokerConfig{
		{Name: "broker.id", Value: i64(int64(o.NodeID)), Default: o.NodeID == defaultNodeID},
		{Name: "node.id", Value: i64(int64(o.NodeID)), Default: o.NodeID == defaultNodeID},
		{Name: "log.dirs", Value: o.DataDir},
		{Name: "log.retention.ms", Value: i64(d.RetentionMs), Default: d.RetentionMs == dd.RetentionMs, TopicConfig: ConfigRetentionMs},
		{Name: "log.retention.bytes", Value: i64(d.RetentionBytes), Default: d.RetentionBytes == dd.RetentionBytes, TopicConfig: ConfigRetentionBytes},
		{Name: "log.segment.bytes", Value: i64(d.SegmentBytes), Default: d.SegmentBytes == dd.SegmentBytes, TopicConfig: ConfigSegmentBytes},
		{Name: "log.roll.ms", Value: i64(d.SegmentMs), Default: d.SegmentMs == dd.SegmentMs, TopicConfig: ConfigSegmentMs},
		{Name: "message.max.bytes", Value: i64(int64(d.MaxMessageBytes)), Default: d.MaxMessageBytes == dd.MaxMessageBytes, TopicConfig: ConfigMaxMessageBytes},
		{Name: "log.message.timestamp.type", Value: TimestampTypeCreateTime, Default: true, TopicConfig: ConfigTimestampType},
		{Name: "log.cleanup.policy", Value: d.CleanupPolicy, Default: d.CleanupPolicy == dd.CleanupPolicy, TopicConfig: ConfigCleanupPolicy},
		{Name: "log.cleaner.min.cleanable.ratio", Value: strconv.FormatFloat(d.MinCleanableDirtyRatio, 'g', -1, 64),
			Default: d.MinCleanableDirtyRatio == dd.MinCleanableDirtyRatio, TopicConfig: ConfigMinCleanableRatio},
		{Name: "log.cleaner.min.compaction.lag.ms", Value: i64(d.MinCompactionLagMs), Default: d.MinCompactionLagMs == dd.MinCompactionLagMs, TopicConfig: ConfigMinCompactionLagMs},
		{Name: "log.cleaner.max.compaction.lag.ms", Value: i64(d.MaxCompactionLagMs), Default: d.MaxCompactionLagMs == dd.MaxCompactionLagMs, TopicConfig: ConfigMaxCompactionLagMs},
		{Name: "log.cleaner.delete.retention.ms", Value: i64(d.DeleteRetentionMs), Default: d.DeleteRetentionMs == dd.DeleteRetentionMs, TopicConfig: ConfigDeleteRetentionMs},
		{Name: "log.cleaner.enable", Value: strconv.FormatBool(!o.CleanerDisabled), Default: !o.CleanerDisabled},
		{Name: "log.cleaner.threads", Value: i64(int64(cleanerThreads)), Default: cleanerThreads == cleaner.DefaultThreads},
		{Name: "log.cleaner.dedupe.buffer.size", Value: i64(cleanerBuffer), Default: cleanerBuffer == cleaner.DefaultDedupeBufferBytes},
		{Name: "log.cleaner.io.max.bytes.per.second", Value: cleanerIO, Default: o.Cleaner.IOBytesPerSecond <= 0},
		{Name: "log.cleaner.backoff.ms", Value: i64(cleanerBackoff.Milliseconds()), Default: cleanerBackoff == cleaner.DefaultBackoff},
		{Name: "min.insync.replicas", Value: i64(int64(max(1, d.MinInsyncReplicas))), Default: d.MinInsyncReplicas <= 1, TopicConfig: ConfigMinInsyncReplicas},
		{Name: "num.partitions", Value: i64(int64(o.DefaultPartitions)), Default: o.DefaultPartitions == defaultNumPartitions},
		{Name: "default.replication.factor", Value: i64(int64(b.defaultReplicationFactor())), Default: b.defaultReplicationFactor() == 1},
		{Name: "auto.create.topics.enable", Value: strconv.FormatBool(o.AutoCreateTopics), Default: o.AutoCreateTopics}, // on by default
		{Name: "log.retention.check.interval.ms", Value: i64(retentionCheck.Milliseconds()), Default: retentionCheck == defaultRetentionCheck},
		{Name: "log.index.interval.bytes", Value: i64(int64(indexInterval)), Default: indexInterval == defaultIndexIntervalBytes},
		{Name: "producer.id.expiration.ms", Value: i64(expiration.Milliseconds()), Default: expiration == defaultProducerIDExpiration},
		{Name: "log.flush.policy", Value: o.Fsync.String(), Default: o.Fsync == FsyncPolicy{}},
	}
}

// DataDir is the directory that holds every partition's log (Kafka's log.dirs, one directory).
func (b *Broker) DataDir() string { return b.opts.DataDir }

// DiskSpace returns the size of the filesystem holding the data directory and the bytes of it
// the broker may still use (statfs: blocks free to unprivileged users), or -1, -1 when they are
// unknown (a filesystem other than the operating system's, or statfs failing).
func (b *Broker) DiskSpace() (total, usable int64) {
	if b.opts.FS != vfs.Default {
		return -1, -1
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.opts.DataDir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize)
}

// DefaultTopicConfig is the config of a topic without overrides: every value from the broker's
// defaults.
func (b *Broker) DefaultTopicConfig() *TopicConfig {
	cfg, err := BuildTopicConfig(nil, b.opts.Defaults)
	if err != nil { // no overrides: nothing to refuse
		return &TopicConfig{}
	}
	return cfg
}
