package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/thorstream/thorstream/cluster"
)

// Peer is one other node of a static cluster.
type Peer struct {
	ID   int32
	Addr string
}

// Config is the broker's whole configuration, read from THORSTREAM_* environment variables and
// the matching command-line flags (a flag wins over its variable).
type Config struct {
	Addr              string
	AdvertisedAddr    string
	KafkaAddr         string
	KafkaAdvertised   string
	NodeID            int32
	Peers             []Peer
	DataDir           string
	Fsync             cluster.FsyncPolicy
	SegmentBytes      int64
	SegmentMs         int64
	RetentionBytes    int64
	RetentionMs       int64
	EventLoops        int
	LogLevel          zapcore.Level
	AutoCreateTopics  bool
	DefaultPartitions int32
	MaxFrameBytes     int64
	PprofAddr         string
	HTTPAddr          string // admin listener: metrics, health, readiness, profiles (admin.go)
	// How long an idempotent producer's state outlives its last batch (producer.id.expiration.ms).
	ProducerIDExpirationMs int64
	// Limits of topic creation.
	MaxPartitions           int
	MaxPartitionsPerRequest int
	MaxOpenSegments         int
	MaxAutoCreateTopics     int
	// Memory and time limits of connections.
	MaxInflightBytes     int64 // broker-wide budget of bytes in flight
	FrameReadTimeoutMs   int64 // a frame begun must arrive within this
	ConnectionsMaxIdleMs int64 // a connection sending nothing is closed after this (-1: never)
	// Log compaction: topic defaults (Kafka's log.cleanup.policy and log.cleaner.*) and the
	// cleaner threads.
	CleanupPolicy        string
	MinCleanableRatio    float64
	DeleteRetentionMs    int64
	MinCompactionLagMs   int64
	MaxCompactionLagMs   int64 // 0: none
	CleanerEnable        bool
	CleanerThreads       int
	CleanerDedupeBytes   int64
	CleanerIOBytesPerSec int64 // -1: unlimited
	CleanerBackoffMs     int64
	// The group coordinator (Kafka's group.* and offsets.retention.minutes).
	GroupInitialRebalanceDelayMs int64
	GroupMinSessionTimeoutMs     int64
	GroupMaxSessionTimeoutMs     int64
	GroupMaxSize                 int
	OffsetsRetentionMinutes      int64
	// The controller's liveness: heartbeats to the active controller, and the silence after
	// which a node is fenced.
	ClusterHeartbeatMs      int64
	ClusterSessionTimeoutMs int64
	// Replication (0: the cluster's defaults, see cluster.Options).
	DefaultReplicationFactor int16
	MinInsyncReplicas        int32
	ReplicaLagTimeMaxMs      int64
	// ClusterSecret proves the peer connections between the nodes (empty: by address only).
	ClusterSecret string
}

// setting is one configuration item: its variable, flag, default and parser.
type setting struct {
	env, flag, def, help string
	parse                func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{"THORSTREAM_ADDR", "addr", "0.0.0.0:9092", "binary protocol listener host:port", func(c *Config, v string) (err error) {
			c.Addr, err = parseAddr(v)
			return err
		}},
		{"THORSTREAM_ADVERTISED_ADDR", "advertised-addr", "", "host:port clients are told to use for the binary protocol (default: the listener's, with 0.0.0.0 replaced by a reachable address)", func(c *Config, v string) (err error) {
			if v != "" {
				c.AdvertisedAddr, err = parseAddr(v)
			}
			return err
		}},
		{"THORSTREAM_KAFKA_ADDR", "kafka-addr", "", "Kafka protocol listener host:port (empty: off on a single node; on a node of a cluster, THORSTREAM_ADDR's host with its port + 100)", func(c *Config, v string) (err error) {
			if v != "" {
				c.KafkaAddr, err = parseAddr(v)
			}
			return err
		}},
		{"THORSTREAM_KAFKA_ADVERTISED_ADDR", "kafka-advertised-addr", "", "host:port Kafka clients are told to use", func(c *Config, v string) (err error) {
			if v != "" {
				c.KafkaAdvertised, err = parseAddr(v)
			}
			return err
		}},
		{"THORSTREAM_NODE_ID", "node-id", "0", "this node's id (0 or more)", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a node id (a whole number, 0 or more)", v)
			}
			c.NodeID = int32(n)
			return nil
		}},
		{"THORSTREAM_CLUSTER_PEERS", "cluster-peers", "", "the other nodes, id=host:port,id=host:port", func(c *Config, v string) (err error) {
			c.Peers, err = parsePeers(v)
			return err
		}},
		{"THORSTREAM_DATA_DIR", "data-dir", "", "data directory (default ./data; ./data/node-<id> with cluster peers)", func(c *Config, v string) error {
			c.DataDir = v
			return nil
		}},
		{"THORSTREAM_FSYNC", "fsync", "always", "when to fdatasync: always, interval:<ms> or never", func(c *Config, v string) (err error) {
			c.Fsync, err = parseFsync(v)
			return err
		}},
		{"THORSTREAM_SEGMENT_BYTES", "segment-bytes", "1GiB", "roll a segment at this size (bytes, or KiB/MiB/GiB; 1MiB to 2GiB-1)", func(c *Config, v string) (err error) {
			c.SegmentBytes, err = parseSize(v, cluster.MinSegmentBytes, false)
			if err == nil && c.SegmentBytes > 1<<31-1 {
				err = fmt.Errorf("%q is larger than 2147483647 bytes", v)
			}
			return err
		}},
		{"THORSTREAM_INTERNAL_SEGMENT_BYTES", "internal-segment-bytes", "", "for tests only: a segment size below THORSTREAM_SEGMENT_BYTES' 1MiB minimum (at least 4KiB), which it replaces (empty: off)", func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			n, err := parseSize(v, 4096, false)
			if err == nil && n > 1<<31-1 {
				err = fmt.Errorf("%q is larger than 2147483647 bytes", v)
			}
			if err == nil {
				c.SegmentBytes = n
			}
			return err
		}},
		{"THORSTREAM_SEGMENT_MS", "segment-ms", "604800000", "roll a segment after this many milliseconds (at least 60000)", func(c *Config, v string) (err error) {
			c.SegmentMs, err = parseMillis(v, false)
			if err == nil && c.SegmentMs < cluster.MinSegmentMs {
				err = fmt.Errorf("%q is below the minimum of %d milliseconds", v, cluster.MinSegmentMs)
			}
			return err
		}},
		{"THORSTREAM_RETENTION_BYTES", "retention-bytes", "-1", "per-partition size limit (bytes, or KiB/MiB/GiB; -1: none)", func(c *Config, v string) (err error) {
			c.RetentionBytes, err = parseSize(v, 0, true)
			return err
		}},
		{"THORSTREAM_RETENTION_MS", "retention-ms", "604800000", "delete segments older than this many milliseconds (-1: keep forever)", func(c *Config, v string) (err error) {
			c.RetentionMs, err = parseMillis(v, true)
			return err
		}},
		{"THORSTREAM_LOG_CLEANUP_POLICY", "log-cleanup-policy", "delete", "cleanup.policy of topics that set none: delete, compact or compact,delete", func(c *Config, v string) (err error) {
			c.CleanupPolicy, err = cluster.ParseCleanupPolicy(v)
			return err
		}},
		{"THORSTREAM_LOG_CLEANER_ENABLE", "log-cleaner-enable", "true", "run the log cleaner, which compacts topics whose cleanup.policy includes compact", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			c.CleanerEnable = b
			return nil
		}},
		{"THORSTREAM_LOG_CLEANER_THREADS", "log-cleaner-threads", "1", "cleaner goroutines (each cleans one partition at a time)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				return fmt.Errorf("%q is not a number of cleaner threads (1 to 64)", v)
			}
			c.CleanerThreads = n
			return nil
		}},
		{"THORSTREAM_LOG_CLEANER_DEDUPE_BUFFER_BYTES", "log-cleaner-dedupe-buffer-bytes", "128MiB", "memory of the cleaners' key maps, all threads together (24 bytes per key; a log with more keys is cleaned in several passes)", func(c *Config, v string) (err error) {
			c.CleanerDedupeBytes, err = parseSize(v, 1<<20, false)
			return err
		}},
		{"THORSTREAM_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND", "log-cleaner-io-max-bytes-per-second", "-1", "I/O rate limit of the cleaners, reads and writes together (bytes, or KiB/MiB/GiB; -1: none)", func(c *Config, v string) (err error) {
			c.CleanerIOBytesPerSec, err = parseSize(v, 1<<10, true)
			return err
		}},
		{"THORSTREAM_LOG_CLEANER_BACKOFF_MS", "log-cleaner-backoff-ms", "15000", "how long an idle cleaner waits before looking for a dirty log again", func(c *Config, v string) (err error) {
			c.CleanerBackoffMs, err = parseMillis(v, false)
			return err
		}},
		{"THORSTREAM_LOG_CLEANER_MIN_CLEANABLE_RATIO", "log-cleaner-min-cleanable-ratio", "0.5", "min.cleanable.dirty.ratio of topics that set none: clean a log once this share of it is dirty", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return fmt.Errorf("%q is not a ratio between 0 and 1", v)
			}
			c.MinCleanableRatio = f
			return nil
		}},
		{"THORSTREAM_LOG_CLEANER_DELETE_RETENTION_MS", "log-cleaner-delete-retention-ms", "86400000", "delete.retention.ms of topics that set none: how long tombstones stay after they were first cleaned", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a number of milliseconds (0 or more)", v)
			}
			c.DeleteRetentionMs = n
			return nil
		}},
		{"THORSTREAM_LOG_CLEANER_MIN_COMPACTION_LAG_MS", "log-cleaner-min-compaction-lag-ms", "0", "min.compaction.lag.ms of topics that set none: records younger than this are not compacted", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a number of milliseconds (0 or more)", v)
			}
			c.MinCompactionLagMs = n
			return nil
		}},
		{"THORSTREAM_LOG_CLEANER_MAX_COMPACTION_LAG_MS", "log-cleaner-max-compaction-lag-ms", "", "max.compaction.lag.ms of topics that set none: records older than this are compacted whatever the dirty ratio (empty: no limit)", func(c *Config, v string) (err error) {
			if v == "" {
				c.MaxCompactionLagMs = 0
				return nil
			}
			c.MaxCompactionLagMs, err = parseMillis(v, false)
			return err
		}},
		{"THORSTREAM_PRODUCER_ID_EXPIRATION_MS", "producer-id-expiration-ms", "86400000", "drop an idempotent producer's state after this many milliseconds without a batch from it (Kafka's producer.id.expiration.ms)", func(c *Config, v string) (err error) {
			c.ProducerIDExpirationMs, err = parseMillis(v, false)
			return err
		}},
		{"THORSTREAM_CLUSTER_HEARTBEAT_INTERVAL_MS", "cluster-heartbeat-interval-ms", "500", "how often a node of a cluster heartbeats the active controller", func(c *Config, v string) (err error) {
			c.ClusterHeartbeatMs, err = parseDurationMillis(v, 1)
			return err
		}},
		{"THORSTREAM_CLUSTER_SESSION_TIMEOUT_MS", "cluster-session-timeout-ms", "2000", "a node of a cluster silent this long is fenced: the partitions it leads get other leaders, or none", func(c *Config, v string) (err error) {
			c.ClusterSessionTimeoutMs, err = parseDurationMillis(v, 1)
			return err
		}},
		{"THORSTREAM_DEFAULT_REPLICATION_FACTOR", "default-replication-factor", "", "replicas of topics created without a replication factor, auto-created ones included (Kafka's default.replication.factor); empty: 3 on a cluster of three or more nodes, 1 on a single node", func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			n, err := strconv.ParseInt(v, 10, 16)
			if err != nil || n < 1 || n > 100 {
				return fmt.Errorf("%q is not a replication factor (1 to 100)", v)
			}
			c.DefaultReplicationFactor = int16(n)
			return nil
		}},
		{"THORSTREAM_MIN_INSYNC_REPLICAS", "min-insync-replicas", "", "min.insync.replicas of topics that do not set it: an acks=all write needs this many in-sync replicas; empty: 2 on a cluster of three or more nodes, else 1", func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 || n > 100 {
				return fmt.Errorf("%q is not a replica count (1 to 100)", v)
			}
			c.MinInsyncReplicas = int32(n)
			return nil
		}},
		{"THORSTREAM_REPLICA_LAG_TIME_MAX_MS", "replica-lag-time-max-ms", "10000", "a follower that has not caught up with its leader for this long leaves the in-sync replicas (Kafka's replica.lag.time.max.ms)", func(c *Config, v string) (err error) {
			c.ReplicaLagTimeMaxMs, err = parseDurationMillis(v, 1)
			return err
		}},
		{"THORSTREAM_CLUSTER_SECRET", "cluster-secret", "", "the secret every node of a cluster shares, proving the peer connections (empty: peers are trusted by their addresses); at least 16 bytes, the same on every node", func(c *Config, v string) error {
			if v != "" && len(v) < minClusterSecret {
				return fmt.Errorf("a secret of %d bytes is too short: use at least %d (for example: openssl rand -hex 32)", len(v), minClusterSecret)
			}
			c.ClusterSecret = v
			return nil
		}},
		{"THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS", "group-initial-rebalance-delay-ms", "3000", "how long a new consumer group waits for more members before its first rebalance (Kafka's group.initial.rebalance.delay.ms; 0: none)", func(c *Config, v string) (err error) {
			c.GroupInitialRebalanceDelayMs, err = parseDurationMillis(v, 0)
			return err
		}},
		{"THORSTREAM_GROUP_MIN_SESSION_TIMEOUT_MS", "group-min-session-timeout-ms", "6000", "the shortest session timeout a group member may ask for (group.min.session.timeout.ms)", func(c *Config, v string) (err error) {
			c.GroupMinSessionTimeoutMs, err = parseDurationMillis(v, 0)
			return err
		}},
		{"THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS", "group-max-session-timeout-ms", "1800000", "the longest session timeout a group member may ask for (group.max.session.timeout.ms)", func(c *Config, v string) (err error) {
			c.GroupMaxSessionTimeoutMs, err = parseDurationMillis(v, 1)
			return err
		}},
		{"THORSTREAM_GROUP_MAX_SIZE", "group-max-size", "2147483647", "most members one consumer group may have (group.max.size)", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 {
				return fmt.Errorf("%q is not a number of members (1 to 2147483647)", v)
			}
			c.GroupMaxSize = int(n)
			return nil
		}},
		{"THORSTREAM_OFFSETS_RETENTION_MINUTES", "offsets-retention-minutes", "10080", "how long the committed offsets of a group without members are kept (offsets.retention.minutes; 7 days)", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > math.MaxInt64/int64(time.Minute) {
				return fmt.Errorf("%q is not a number of minutes (1 or more)", v)
			}
			c.OffsetsRetentionMinutes = n
			return nil
		}},
		{"THORSTREAM_EVENT_LOOPS", "event-loops", strconv.Itoa(min(runtime.NumCPU(), 4)), "number of network event loops", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 256 {
				return fmt.Errorf("%q is not a number of event loops (1 to 256)", v)
			}
			c.EventLoops = n
			return nil
		}},
		{"THORSTREAM_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
			l, err := zapcore.ParseLevel(v)
			if err != nil || l > zapcore.ErrorLevel {
				return fmt.Errorf("%q is not a log level (debug, info, warn, error)", v)
			}
			c.LogLevel = l
			return nil
		}},
		{"THORSTREAM_AUTO_CREATE_TOPICS", "auto-create-topics", "true", "create unknown topics on first produce or metadata request", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			c.AutoCreateTopics = b
			return nil
		}},
		{"THORSTREAM_DEFAULT_PARTITIONS", "default-partitions", "1", "partitions of auto-created topics", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 || n > 100000 {
				return fmt.Errorf("%q is not a partition count (1 to 100000)", v)
			}
			c.DefaultPartitions = int32(n)
			return nil
		}},
		{"THORSTREAM_MAX_FRAME_BYTES", "max-frame-bytes", "64MiB", "largest request frame accepted", func(c *Config, v string) (err error) {
			c.MaxFrameBytes, err = parseSize(v, 1024, false)
			if err == nil && c.MaxFrameBytes > 1<<30 {
				err = fmt.Errorf("%q is larger than 1GiB", v)
			}
			return err
		}},
		{"THORSTREAM_MAX_PARTITIONS", "max-partitions", "auto", "most partitions this broker hosts, all topics together (auto: 10000, fewer when the open-files limit leaves less than 3 descriptors a partition in three quarters of it)", func(c *Config, v string) error {
			if v == "auto" {
				c.MaxPartitions = autoMaxPartitions()
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				return fmt.Errorf("%q is not a partition count (1 to 1000000, or auto)", v)
			}
			c.MaxPartitions = n
			return nil
		}},
		{"THORSTREAM_MAX_PARTITIONS_PER_REQUEST", "max-partitions-per-request", "10000", "most partitions one CreateTopics request creates, summed over its topics", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				return fmt.Errorf("%q is not a partition count (1 to 1000000)", v)
			}
			c.MaxPartitionsPerRequest = n
			return nil
		}},
		{"THORSTREAM_MAX_OPEN_SEGMENTS", "max-open-segments", "auto", "most .log files of sealed segments open at once, every partition together: they are opened to be read and closed when idle; active segments hold 3 descriptors each besides (auto: 1024, fewer when the open-files limit is under 8192)", func(c *Config, v string) error {
			if v == "auto" {
				c.MaxOpenSegments = autoMaxOpenSegments()
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				return fmt.Errorf("%q is not a number of files (1 to 1000000)", v)
			}
			c.MaxOpenSegments = n
			return nil
		}},
		{"THORSTREAM_MAX_AUTO_CREATE_TOPICS", "max-auto-create-topics", "100", "most topics one Metadata or Produce request auto-creates (the others are refused with THROTTLING_QUOTA_EXCEEDED, which clients retry)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100_000 {
				return fmt.Errorf("%q is not a number of topics (1 to 100000)", v)
			}
			c.MaxAutoCreateTopics = n
			return nil
		}},
		{"THORSTREAM_MAX_INFLIGHT_BYTES", "max-inflight-bytes", "512MiB", "broker-wide budget of bytes in flight on connections: request frames being read or served, fetch responses, unsent output (at least the max frame size)", func(c *Config, v string) (err error) {
			c.MaxInflightBytes, err = parseSize(v, 1<<20, false)
			return err
		}},
		{"THORSTREAM_FRAME_READ_TIMEOUT_MS", "frame-read-timeout-ms", "30000", "close a connection that began a request frame and has not sent all of it within this many milliseconds", func(c *Config, v string) (err error) {
			c.FrameReadTimeoutMs, err = parseMillis(v, false)
			return err
		}},
		{"THORSTREAM_CONNECTIONS_MAX_IDLE_MS", "connections-max-idle-ms", "600000", "close a connection that sent nothing and waits for nothing for this many milliseconds (-1: never)", func(c *Config, v string) (err error) {
			c.ConnectionsMaxIdleMs, err = parseMillis(v, true)
			return err
		}},
		{"THORSTREAM_HTTP_ADDR", "http-addr", defaultHTTPAddr, "HTTP admin listener host:port: /metrics (Prometheus), /healthz, /readyz, /debug/pprof/ (off or empty: none; keep it on loopback)", func(c *Config, v string) (err error) {
			if v != "" && v != "off" {
				c.HTTPAddr, err = parseAddr(v)
			}
			return err
		}},
		{"THORSTREAM_PPROF_ADDR", "pprof-addr", "", "also serve the HTTP admin endpoints (Go's pprof profiles among them) on this host:port (empty: off; keep it on loopback)", func(c *Config, v string) (err error) {
			if v != "" {
				c.PprofAddr, err = parseAddr(v)
			}
			return err
		}},
	}
}

// ConfigError names the variable or flag whose value is wrong.
type ConfigError struct {
	Env, Flag string
	Err       error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s (--%s): %v", e.Env, e.Flag, e.Err)
}

// LoadConfig reads args and the environment (getenv) into a Config.
func LoadConfig(args []string, getenv func(string) string, usageOut io.Writer) (*Config, error) {
	all := settings()
	fs := flag.NewFlagSet("thorstream", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	values := make([]*string, len(all))
	for i, s := range all {
		values[i] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def))
	}
	fs.Usage = func() {
		fmt.Fprintln(usageOut, "Usage: thorstream [flags]\n\nEvery flag can also be set with its environment variable; a flag wins.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c := &Config{}
	for i, s := range all {
		v, ok := *values[i], set[s.flag]
		if !ok {
			v = getenv(s.env)
			if v == "" {
				v = s.def
			}
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			return nil, &ConfigError{Env: s.env, Flag: s.flag, Err: err}
		}
	}
	for _, p := range c.Peers {
		if p.ID == c.NodeID {
			return nil, &ConfigError{Env: "THORSTREAM_CLUSTER_PEERS", Flag: "cluster-peers",
				Err: fmt.Errorf("lists node %d, which is this node (THORSTREAM_NODE_ID); list only the other nodes", p.ID)}
		}
	}
	if c.DataDir == "" {
		c.DataDir = "data"
		if len(c.Peers) > 0 {
			c.DataDir = filepath.Join("data", "node-"+strconv.Itoa(int(c.NodeID)))
		}
	}
	if len(c.Peers) > 0 && c.KafkaAddr == "" {
		// Three nodes started from one checkout each get their own Kafka port.
		host, port, _ := net.SplitHostPort(c.Addr)
		p, _ := strconv.Atoi(port)
		if p+100 > 65535 {
			return nil, &ConfigError{Env: "THORSTREAM_KAFKA_ADDR", Flag: "kafka-addr", Err: fmt.Errorf("THORSTREAM_ADDR's port %d + 100 is not a port: set the Kafka listener", p)}
		}
		c.KafkaAddr = net.JoinHostPort(host, strconv.Itoa(p+100))
	}
	if c.ClusterHeartbeatMs >= c.ClusterSessionTimeoutMs {
		return nil, &ConfigError{Env: "THORSTREAM_CLUSTER_HEARTBEAT_INTERVAL_MS", Flag: "cluster-heartbeat-interval-ms",
			Err: fmt.Errorf("%d ms is not less than THORSTREAM_CLUSTER_SESSION_TIMEOUT_MS (%d): every node would be fenced", c.ClusterHeartbeatMs, c.ClusterSessionTimeoutMs)}
	}
	if c.MaxInflightBytes < c.MaxFrameBytes {
		return nil, &ConfigError{Env: "THORSTREAM_MAX_INFLIGHT_BYTES", Flag: "max-inflight-bytes",
			Err: fmt.Errorf("%d bytes is less than THORSTREAM_MAX_FRAME_BYTES (%d): a frame of the largest size could never be read", c.MaxInflightBytes, c.MaxFrameBytes)}
	}
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		return nil, &ConfigError{Env: "THORSTREAM_GROUP_MIN_SESSION_TIMEOUT_MS", Flag: "group-min-session-timeout-ms",
			Err: fmt.Errorf("%d ms is more than THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS (%d)", c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)}
	}
	if c.KafkaAddr != "" && c.KafkaAddr == c.Addr {
		return nil, &ConfigError{Env: "THORSTREAM_KAFKA_ADDR", Flag: "kafka-addr", Err: fmt.Errorf("%s is also THORSTREAM_ADDR", c.KafkaAddr)}
	}
	return c, nil
}

// minClusterSecret is the shortest THORSTREAM_CLUSTER_SECRET taken: a shorter one is guessed.
const minClusterSecret = 16

// autoMaxPartitions is THORSTREAM_MAX_PARTITIONS=auto: cluster.DefaultMaxPartitions, or fewer
// when three descriptors a partition (one segment's .log, .index and .timeindex) would take more
// than three quarters of the open-files limit (the rest is for connections and further segments).
// The hard limit counts: the broker raises the soft one to it at start.
func autoMaxPartitions() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return cluster.DefaultMaxPartitions
	}
	return int(max(1, min(uint64(cluster.DefaultMaxPartitions), lim.Max/4)))
}

// autoMaxOpenSegments is THORSTREAM_MAX_OPEN_SEGMENTS=auto: cluster.DefaultMaxOpenSegments, or an
// eighth of the open-files limit when that is less, so that with the partitions' quarter-limit
// share (autoMaxPartitions, three descriptors each) an eighth is left for connections.
func autoMaxOpenSegments() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return cluster.DefaultMaxOpenSegments
	}
	return int(max(16, min(uint64(cluster.DefaultMaxOpenSegments), lim.Max/8)))
}

func parseAddr(v string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%q has a bad port", v)
	}
	if strings.ContainsAny(host, " /") {
		return "", fmt.Errorf("%q has a bad host", v)
	}
	return v, nil
}

func parsePeers(v string) ([]Peer, error) {
	if v == "" {
		return nil, nil
	}
	var peers []Peer
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("%q is not id=host:port", item)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: %q is not a node id", item, id)
		}
		if _, err := parseAddr(addr); err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		if slices.ContainsFunc(peers, func(p Peer) bool { return p.ID == int32(n) }) {
			return nil, fmt.Errorf("node id %d appears twice", n)
		}
		peers = append(peers, Peer{ID: int32(n), Addr: addr})
	}
	return peers, nil
}

func parseFsync(v string) (cluster.FsyncPolicy, error) {
	switch {
	case v == "always":
		return cluster.FsyncPolicy{Mode: cluster.FsyncAlways}, nil
	case v == "never":
		return cluster.FsyncPolicy{Mode: cluster.FsyncNever}, nil
	case strings.HasPrefix(v, "interval:"):
		ms, err := strconv.ParseInt(strings.TrimPrefix(v, "interval:"), 10, 64)
		if err != nil || ms < 1 || ms > 3_600_000 {
			return cluster.FsyncPolicy{}, fmt.Errorf("%q: the interval must be 1 to 3600000 milliseconds", v)
		}
		return cluster.FsyncPolicy{Mode: cluster.FsyncInterval, Interval: time.Duration(ms) * time.Millisecond}, nil
	}
	return cluster.FsyncPolicy{}, fmt.Errorf("%q is not always, interval:<ms> or never", v)
}

// parseSize reads a byte count: digits, optionally followed by KiB, MiB or GiB (or K, M, G).
func parseSize(v string, minimum int64, allowUnlimited bool) (int64, error) {
	if allowUnlimited && v == "-1" {
		return -1, nil
	}
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		if allowUnlimited {
			return 0, fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB or GiB; -1 for no limit)", v)
		}
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB or GiB)", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	if n*mult < minimum {
		return 0, fmt.Errorf("%q is smaller than the minimum of %d bytes", v, minimum)
	}
	return n * mult, nil
}

// parseDurationMillis reads milliseconds, minimum or more, that a time.Duration can hold.
func parseDurationMillis(v string, minimum int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < minimum || n > math.MaxInt64/int64(time.Millisecond) {
		return 0, fmt.Errorf("%q is not a number of milliseconds (%d or more)", v, minimum)
	}
	return n, nil
}

func parseMillis(v string, allowForever bool) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if allowForever && err == nil && n == -1 {
		return -1, nil
	}
	if err != nil || n < 1 {
		if allowForever {
			return 0, fmt.Errorf("%q is not a number of milliseconds (1 or more, or -1 for forever)", v)
		}
		return 0, fmt.Errorf("%q is not a number of milliseconds (1 or more)", v)
	}
	return n, nil
}
