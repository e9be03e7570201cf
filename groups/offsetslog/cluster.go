package offsetslog

// The offsets topic on a node of a cluster. The topic is created through the controller once one
// is elected — the node starts whether or not there is one, and keeps asking in the background,
// backing off, until the topic exists (whichever node created it). The coordinator hosts the
// shard of an offsets partition while this node leads it: every published metadata snapshot
// hosts the partitions this node gained and unhosts those it lost.

import (
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
)

// Backoff of the creation of the offsets topic while it fails (no controller yet).
const (
	createRetryMin = 100 * time.Millisecond
	createRetryMax = 5 * time.Second
)

// follower keeps a coordinator's hosted partitions those this node leads.
type follower struct {
	b          *cluster.Broker
	c          *groups.Coordinator
	logger     *zap.Logger
	partitions int32         // of a new offsets topic
	want       chan struct{} // a client asked for the topic: try now (room for one)
	created    chan struct{} // closed once the creation loop has ended
	// mismatch is set once a partition count the coordinator could not take was logged (owned
	// by the reconciling goroutine).
	mismatch bool
}

func startClustered(b *cluster.Broker, cfg groups.Config, o Options) *follower {
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	logger := o.Logger
	if logger == nil {
		logger = b.Logger()
	}
	f := &follower{b: b, logger: logger, partitions: o.Partitions, want: make(chan struct{}, 1), created: make(chan struct{})}
	n := o.Partitions
	if t := b.Snapshot().Topics[groups.OffsetsTopic]; t != nil {
		n = int32(len(t.Partitions))
	}
	f.c = groups.NewCoordinator(groups.CoordinatorOptions{Partitions: n, Config: cfg, Log: &Log{broker: b, partitions: n},
		Logger: logger.With(zap.String("component", "groups")), Unhosted: true, WantLog: f.wanted})
	b.OnTopicDeleted(f.c.DeleteTopic)
	b.OnMetadata(f.follow)
	go f.ensureTopic()
	return f
}

// wanted asks the creation loop to try at once. It never blocks.
func (f *follower) wanted() {
	select {
	case f.want <- struct{}{}:
	default:
	}
}

// follow hosts the offsets partitions this node leads in s and unhosts the others. It runs on
// the broker's reconciling goroutine, under its admin lock: it only reads s and tells the
// coordinator, which never blocks.
func (f *follower) follow(s *cluster.Snapshot) {
	t := s.Topics[groups.OffsetsTopic]
	if t == nil {
		for p := range f.c.Partitions() {
			f.c.SetHosted(p, false)
		}
		return
	}
	if n := int32(len(t.Partitions)); n != f.c.Partitions() {
		for p := range f.c.Partitions() {
			f.c.SetHosted(p, false)
		}
		if err := f.c.SetPartitions(n); err != nil {
			if !f.mismatch {
				f.logger.Error("the offsets topic's partition count changed while this node coordinated some of its groups: they are served again once it takes the new count",
					zap.Int32("partitions", n), zap.Int32("coordinator_partitions", f.c.Partitions()), zap.Error(err))
			}
			f.mismatch = true
			return
		}
		f.mismatch = false
	}
	self := f.b.NodeID()
	for p := range t.Partitions {
		f.c.SetHosted(int32(p), t.Partitions[p].Leader == self && t.Replicas[p] != nil)
	}
}

// placementWait is how long the offsets topic waits for every node of the cluster to register
// before it is created over those that have.
const placementWait = 30 * time.Second

// ensureTopic creates the offsets topic through the controller, retrying with backoff (and at
// once when a client asks for it) until it exists (the controller answers TOPIC_ALREADY_EXISTS
// when another node created it first: this node's metadata has it soon) or the coordinator
// closes; an existing topic that is not compacted is made so.
func (f *follower) ensureTopic() {
	defer close(f.created)
	wait := createRetryMin
	last := time.Time{}
	started := time.Now()
	for attempt := 0; ; attempt++ {
		if t := f.b.Snapshot().Topics[groups.OffsetsTopic]; t != nil {
			f.compact(t)
			return
		}
		// Never faster than createRetryMin, however often clients ask.
		if d := createRetryMin - time.Since(last); d > 0 && !f.sleep(d) {
			return
		}
		if live := len(f.b.Snapshot().LiveNodes()); live < f.b.ClusterSize() && time.Since(started) < placementWait {
			// Its partitions are placed over the nodes registered now: wait a while for all of
			// them, so that every node coordinates its share of the groups.
			select {
			case <-f.c.Closing():
				return
			case <-time.After(createRetryMin):
			}
			continue
		}
		last = time.Now()
		err := f.b.CreateTopic(topicSpec(f.partitions), false)
		switch {
		case err == nil:
			f.logger.Info("offsets topic created", zap.String("topic", groups.OffsetsTopic), zap.Int32("partitions", f.partitions))
			continue
		case errcode.Of(err) == errcode.TopicAlreadyExists:
			f.logger.Debug("the offsets topic was created by another node")
			return
		case attempt == 0:
			f.logger.Info("the offsets topic cannot be created yet: retrying in the background", zap.Error(err))
		default:
			f.logger.Debug("the offsets topic cannot be created yet", zap.Duration("retry_in", wait), zap.Error(err))
		}
		select {
		case <-f.c.Closing():
			return
		case <-f.want:
		case <-time.After(wait):
			wait = min(wait*2, createRetryMax)
		}
	}
}

// sleep waits d, false when the coordinator closes first.
func (f *follower) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.c.Closing():
		return false
	case <-t.C:
		return true
	}
}

// compact makes an offsets topic that is not compacted compacted (without compaction the log
// grows forever: every commit is a record).
func (f *follower) compact(t *cluster.Topic) {
	if t.Config.Compact() {
		return
	}
	err := f.b.AlterTopicConfig(groups.OffsetsTopic, []cluster.ConfigOp{{Op: cluster.ConfigSet, Key: cluster.ConfigCleanupPolicy, Value: cluster.PolicyCompact}}, false, false)
	if err != nil {
		f.logger.Warn("the offsets topic is not compacted and could not be made so", zap.Error(err))
		return
	}
	f.logger.Info("the offsets topic is compacted from now on", zap.String("topic", groups.OffsetsTopic),
		zap.String("cleanup_policy_was", t.Config.CleanupPolicy))
}
