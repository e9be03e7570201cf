// Command thorstream is the Thorstream broker.
//
// Configuration comes from THORSTREAM_* environment variables and the matching flags (run
// `thorstream -h`); a malformed value exits with status 2 before anything starts. SIGINT or
// SIGTERM stops accepting connections, lets every partition writer finish and sync what it
// accepted, and closes the logs, so a restart finds everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/node"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := LoadConfig(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "thorstream: configuration error: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.LogLevel)
	defer func() { _ = logger.Sync() }()
	if err := serve(cfg, logger); err != nil {
		if errors.Is(err, cluster.ErrDataDirInUse) {
			// Another broker runs on this data directory: a setup error, like a bad setting.
			fmt.Fprintf(os.Stderr, "thorstream: %v\n", err)
			return 2
		}
		logger.Error("broker stopped with an error", zap.Error(err))
		return 1
	}
	return 0
}

// groupConfig is the group coordinator's configuration from cfg; the rest is Kafka's defaults.
func groupConfig(cfg *Config) groups.Config {
	g := groups.DefaultConfig()
	g.InitialRebalanceDelay = time.Duration(cfg.GroupInitialRebalanceDelayMs) * time.Millisecond
	g.MinSessionTimeout = time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond
	g.MaxSessionTimeout = time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond
	g.MaxGroupSize = cfg.GroupMaxSize
	g.OffsetsRetention = time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute
	return g
}

func newLogger(level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level)
	return zap.New(core, zap.AddCaller())
}

func serve(cfg *Config, logger *zap.Logger) error {
	raiseFileLimit(logger)
	// Metrics, health and readiness (admin.go): up before recovery, ready once all of it is.
	admin, err := startAdmin(cfg, logger)
	if err != nil {
		return err
	}
	defer admin.close()
	started := time.Now()
	peers := map[int32]string{}
	for _, p := range cfg.Peers {
		peers[p.ID] = p.Addr
	}
	n, err := node.Start(node.Config{
		NodeID:            cfg.NodeID,
		DataDir:           cfg.DataDir,
		Addr:              cfg.Addr,
		Advertised:        cfg.AdvertisedAddr,
		KafkaAddr:         cfg.KafkaAddr,
		KafkaAdvertised:   cfg.KafkaAdvertised,
		Peers:             peers,
		ClusterSecret:     cfg.ClusterSecret,
		HeartbeatInterval: time.Duration(cfg.ClusterHeartbeatMs) * time.Millisecond,
		SessionTimeout:    time.Duration(cfg.ClusterSessionTimeoutMs) * time.Millisecond,
		Broker: cluster.Options{
			Fsync: cfg.Fsync,
			Defaults: cluster.Defaults{
				RetentionMs:     cfg.RetentionMs,
				RetentionBytes:  cfg.RetentionBytes,
				SegmentBytes:    cfg.SegmentBytes,
				SegmentMs:       cfg.SegmentMs,
				MaxMessageBytes: cluster.DefaultDefaults.MaxMessageBytes,

				CleanupPolicy:          cfg.CleanupPolicy,
				MinCleanableDirtyRatio: cfg.MinCleanableRatio,
				DeleteRetentionMs:      cfg.DeleteRetentionMs,
				MinCompactionLagMs:     cfg.MinCompactionLagMs,
				MaxCompactionLagMs:     cfg.MaxCompactionLagMs,
				MinInsyncReplicas:      cfg.MinInsyncReplicas,
			},
			DefaultReplicationFactor: cfg.DefaultReplicationFactor,
			ReplicaLagMax:            time.Duration(cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
			CleanerDisabled:          !cfg.CleanerEnable,
			Cleaner: cleaner.Options{
				Threads:           cfg.CleanerThreads,
				DedupeBufferBytes: cfg.CleanerDedupeBytes,
				IOBytesPerSecond:  float64(cfg.CleanerIOBytesPerSec),
				Backoff:           time.Duration(cfg.CleanerBackoffMs) * time.Millisecond,
			},
			DefaultPartitions:       cfg.DefaultPartitions,
			AutoCreateTopics:        cfg.AutoCreateTopics,
			MaxPartitions:           cfg.MaxPartitions,
			MaxPartitionsPerRequest: cfg.MaxPartitionsPerRequest,
			MaxOpenSegments:         cfg.MaxOpenSegments,
			MaxAutoCreateTopics:     cfg.MaxAutoCreateTopics,
			ProducerIDExpiration:    time.Duration(cfg.ProducerIDExpirationMs) * time.Millisecond,
			Metrics:                 admin.storage,
		},
		Reactor: reactor.Options{
			Loops:         cfg.EventLoops,
			MaxFrameBytes: int(cfg.MaxFrameBytes),
			// The budget of bytes in flight, and how long a frame may take to arrive and a
			// connection may sit idle (docs/OPERATIONS.md, "Memory budget").
			MaxInflightBytes: int(cfg.MaxInflightBytes),
			FrameReadTimeout: time.Duration(cfg.FrameReadTimeoutMs) * time.Millisecond,
			IdleTimeout:      time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond,
			Metrics:          admin.network,
		},
		Groups:      groupConfig(cfg),
		Network:     admin.network,
		Logger:      logger,
		AfterBroker: admin.attach,
		// The group coordinator replays __consumer_offsets on its own goroutines; its groups
		// answer COORDINATOR_LOAD_IN_PROGRESS until then, and /readyz waits for it.
		AfterGroups: func(c *groups.Coordinator, b *cluster.Broker) {
			admin.waitForGroups(c.Ready)
			admin.collectGroups(c, b)
		},
	})
	if err != nil {
		return err
	}
	admin.setNotReady("") // recovered, and every listener accepts
	logger.Info("thorstream started",
		zap.String("addr", cfg.Addr),
		zap.String("advertised", n.Advertised),
		zap.String("kafka_addr", cfg.KafkaAddr),
		zap.String("kafka_advertised", n.KafkaAdvertised),
		zap.Int32("node_id", cfg.NodeID),
		zap.Int("peers", len(peers)),
		zap.String("data_dir", cfg.DataDir),
		zap.Stringer("fsync", cfg.Fsync),
		zap.Int("event_loops", cfg.EventLoops),
		zap.String("cluster_id", n.Broker.ClusterID()),
		zap.Int("topics", len(n.Broker.Snapshot().Names)),
		zap.Duration("startup", time.Since(started)))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig, engineErr := waitForShutdown(sigs, n.Done(), n.Engine.Err)
	signal.Stop(sigs)
	admin.setNotReady(notReadyStopping)
	if engineErr != nil {
		// Listening on nothing helps nobody: close the logs cleanly and exit non-zero, so a
		// supervisor starts the broker again.
		logger.Error("the network engine stopped serving: shutting down", zap.Error(engineErr))
	} else {
		logger.Info("shutting down", zap.Stringer("signal", sig))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Connections close first; the coordinator stops before the partitions it appends to.
	if err := n.Stop(ctx); err != nil {
		return errors.Join(engineErr, err)
	}
	if engineErr != nil {
		return engineErr
	}
	logger.Info("thorstream stopped cleanly")
	return nil
}
