// Package offsetslog is the group coordinator's offsets log over the broker's replicas of the
// internal topic __consumer_offsets: appends go through each partition's writer like a
// produce's (validated, group-committed, synced by the broker's fsync policy) and replay reads
// the partition as a fetch does. It sits apart from package groups so that groups stays free of
// the cluster.
package offsetslog

import (
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
)

// Defaults of a new offsets topic, as Kafka creates __consumer_offsets (its partition count is
// offsets.topic.num.partitions, 50 in Kafka; one node needs fewer shards).
const (
	DefaultPartitions   = 12
	DefaultSegmentBytes = 100 << 20 // offsets.topic.segment.bytes
)

// readBytes is how much one replay read asks for.
const readBytes = 1 << 20

// ErrOffsetsTopic wraps a failure to create or open the offsets topic.
var ErrOffsetsTopic = errors.New("offsetslog: offsets topic")

// Options configures Open.
type Options struct {
	// Partitions is the partition count of a new offsets topic; default DefaultPartitions. An
	// existing topic keeps its count: it places the groups.
	Partitions int32
	Logger     *zap.Logger
}

// Log is the offsets topic as groups.OffsetsLog.
type Log struct {
	broker     *cluster.Broker
	partitions int32
}

var _ groups.OffsetsLog = (*Log)(nil)

// Open creates the offsets topic if it is missing, as an internal compacted topic, and returns
// it. An existing topic keeps its partitions (a data directory from before the coordinator has
// one: every group then lives in partition 0) and its records, which the coordinator reads as
// they are; one that is not compacted is made so.
func Open(b *cluster.Broker, o Options) (*Log, error) {
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	logger := o.Logger
	if logger == nil {
		logger = b.Logger()
	}
	err := b.CreateTopic(topicSpec(o.Partitions), false)
	if err != nil && errcode.Of(err) != errcode.TopicAlreadyExists {
		return nil, fmt.Errorf("%w: creating it: %w", ErrOffsetsTopic, err)
	}
	t := b.Snapshot().Topics[groups.OffsetsTopic]
	if t == nil || len(t.Replicas) == 0 {
		return nil, fmt.Errorf("%w: it has no partitions", ErrOffsetsTopic)
	}
	if !t.Config.Compact() {
		// Without compaction the offsets log grows forever: every commit is a record.
		err := b.AlterTopicConfig(groups.OffsetsTopic, []cluster.ConfigOp{{Op: cluster.ConfigSet, Key: cluster.ConfigCleanupPolicy, Value: cluster.PolicyCompact}}, false, false)
		if err != nil {
			return nil, fmt.Errorf("%w: making it compacted: %w", ErrOffsetsTopic, err)
		}
		logger.Info("the offsets topic is compacted from now on", zap.String("topic", groups.OffsetsTopic),
			zap.String("cleanup_policy_was", t.Config.CleanupPolicy))
	}
	return &Log{broker: b, partitions: int32(len(t.Replicas))}, nil
}

// topicSpec is the offsets topic as it is created: internal, compacted, one replica.
func topicSpec(partitions int32) cluster.TopicSpec {
	return cluster.TopicSpec{
		Name: groups.OffsetsTopic, Partitions: partitions, ReplicationFactor: -1, Internal: true,
		Configs: map[string]string{
			cluster.ConfigCleanupPolicy: cluster.PolicyCompact,
			cluster.ConfigSegmentBytes:  strconv.Itoa(DefaultSegmentBytes),
		},
	}
}

// Partitions is the offsets topic's partition count.
func (l *Log) Partitions() int32 { return l.partitions }

// commitTimeoutMs bounds how long a commit waits for the in-sync replicas (Kafka's
// offsets.commit.timeout.ms).
const commitTimeoutMs = 5000

// appendCall adapts one Append to the replica's Completer.
type appendCall struct {
	req  cluster.AppendRequest
	done func(error)
}

func (a *appendCall) AppendDone(_ int, res cluster.AppendResult) { a.done(res.Err) }

// Append submits batch to the partition's writer without blocking; done runs on the writer's
// goroutine once the batch is durable (by the broker's fsync policy) or failed, or at once when
// the writer refuses it (busy: REQUEST_TIMED_OUT; fenced: KAFKA_STORAGE_ERROR; closing:
// NOT_LEADER_OR_FOLLOWER) or this node does not lead the partition (NOT_LEADER_OR_FOLLOWER).
func (l *Log) Append(partition int32, records []byte, done func(error)) {
	rt := l.broker.Route(groups.OffsetsTopic, partition)
	r := rt.Replica
	switch {
	case rt.Code == errcode.UnknownTopicOrPartition:
		done(errcode.New(errcode.UnknownTopicOrPartition, "offsets partition %d does not exist", partition))
		return
	case r == nil:
		// Another node leads it, or none does: this node coordinates its groups no longer.
		done(errcode.New(errcode.NotLeaderOrFollower, "this node does not lead offsets partition %d (%s)", partition, rt.Code))
		return
	}
	a := &appendCall{done: done}
	// As Kafka's offsets topic: a commit is answered once the in-sync replicas have it, so it
	// survives the loss of its leader's node (offsets.commit.timeout.ms).
	a.req = cluster.AppendRequest{Records: records, Owner: a, Acks: -1, TimeoutMs: commitTimeoutMs}
	if err := r.Submit(&a.req); err != nil {
		done(err)
	}
}

// Replay reads the partition from its log start to its high watermark and calls fn with each
// batch, which aliases a read buffer: fn must not keep it.
func (l *Log) Replay(partition int32, fn func(batch []byte) error) error {
	r := l.broker.Replica(groups.OffsetsTopic, partition)
	if r == nil {
		return fmt.Errorf("%w: partition %d does not exist", ErrOffsetsTopic, partition)
	}
	var buf []byte
	// Up to the log end, not the high watermark: a new leader has everything committed and
	// perhaps more, which it never truncates; its high watermark catches up once the
	// followers report.
	end := r.LogEndOffset()
	for next := r.LogStartOffset(); next < end; {
		var err error
		buf, err = r.ReadForFollower(buf[:0], next, readBytes)
		if err != nil {
			return fmt.Errorf("%w: reading partition %d at %d: %w", ErrOffsetsTopic, partition, next, err)
		}
		if len(buf) == 0 {
			return nil
		}
		last := next
		err = batch.Split(buf, func(one []byte) error {
			h, err := batch.ParseHeader(one)
			if err != nil {
				return err
			}
			if h.NextOffset() <= last {
				return nil // a batch read again: it ends where this read began
			}
			last = h.NextOffset()
			return fn(one)
		})
		if err != nil {
			return fmt.Errorf("%w: partition %d at %d: %w", ErrOffsetsTopic, partition, next, err)
		}
		if last <= next {
			return fmt.Errorf("%w: partition %d: a read at %d made no progress", ErrOffsetsTopic, partition, next)
		}
		next = last
	}
	return nil
}

// Start opens the offsets topic, starts a coordinator over it with cfg, and makes topic
// deletions reach it (whichever protocol deletes). The caller closes the coordinator before the
// broker.
//
// On a node of a cluster, Start never blocks on the cluster: the coordinator starts hosting
// nothing, the offsets topic is created through the controller in the background (retried until
// a controller takes it; its creation by another node counts), and the coordinator hosts each
// offsets partition while this node leads it (cluster.go).
func Start(b *cluster.Broker, cfg groups.Config, o Options) (*groups.Coordinator, error) {
	if b.Clustered() {
		return startClustered(b, cfg, o).c, nil
	}
	l, err := Open(b, o)
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = b.Logger()
	}
	c := groups.NewCoordinator(groups.CoordinatorOptions{Partitions: l.Partitions(), Config: cfg, Log: l, Logger: logger.With(zap.String("component", "groups"))})
	b.OnTopicDeleted(c.DeleteTopic)
	return c, nil
}
