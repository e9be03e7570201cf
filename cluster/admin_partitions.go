package cluster

import (
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
)

// PartitionsSpec asks for a topic to have Count partitions (Kafka's CreatePartitions).
type PartitionsSpec struct {
	Topic string
	Count int32
}

// CreatePartitions grows topics to the partition counts asked for (or, with validateOnly, only
// checks that it could) and returns one error per spec, nil for each grown. A count below the
// topic's gives INVALID_PARTITIONS (partitions are never removed: records would be lost and keys
// would move), and so does the topic's own count; internal topics keep theirs
// (INVALID_TOPIC_EXCEPTION). The creation limits apply as they do to CreateTopics, to the
// partitions added: more than MaxPartitionsPerRequest over the request refuses every spec with
// POLICY_VIOLATION, and a topic that would take the broker past MaxPartitions is refused with
// POLICY_VIOLATION. New partitions get their logs and replicas as a new topic's do, and
// meta.json is rewritten once; a spec that fails leaves nothing on disk.
func (b *Broker) CreatePartitions(specs []PartitionsSpec, validateOnly bool) []error {
	errs := make([]error, len(specs))
	if b.cs != nil {
		old := b.snapshot.Load()
		errs = b.checkPartitionSpecs(old, specs, errs)
		for i, s := range specs {
			if errs[i] == nil && !validateOnly {
				errs[i] = b.createPartitionsClustered(old.Topics[s.Topic], s.Count)
			}
		}
		return errs
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed {
		for i := range errs {
			errs[i] = errcode.New(errcode.UnknownServerError, "broker is shutting down")
		}
		return errs
	}
	old := b.snapshot.Load()
	errs = b.checkPartitionSpecs(old, specs, errs)

	hosted := old.partitions()
	var grown []*Topic
	var added [][]*Replica // per grown topic, the replicas opened for it
	var slots []int
	for i, s := range specs {
		if errs[i] != nil {
			continue
		}
		t := old.Topics[s.Topic]
		more := int(s.Count) - len(t.Replicas)
		if hosted+more > b.opts.MaxPartitions {
			errs[i] = errcode.New(errcode.PolicyViolation,
				"adding %d partitions to topic %q would take this broker to %d partitions; the limit is %d (THORSTREAM_MAX_PARTITIONS): delete topics or raise the limit",
				more, s.Topic, hosted+more, b.opts.MaxPartitions)
			continue
		}
		if validateOnly {
			continue
		}
		replicas, err := b.openAddedPartitions(t, s.Count)
		if err != nil {
			errs[i] = errcode.New(errcode.KafkaStorageError, "adding partitions to topic %q: %v", s.Topic, err)
			continue
		}
		hosted += more
		g := *t
		g.Replicas = append(append(make([]*Replica, 0, s.Count), t.Replicas...), replicas...)
		g.Partitions = append(append(make([]meta.Partition, 0, s.Count), t.Partitions...), b.localPartitions(len(replicas))...)
		grown = append(grown, &g)
		added = append(added, replicas)
		slots = append(slots, i)
	}
	if len(grown) == 0 {
		return errs
	}
	next := old.withAll(grown)
	if err := b.writeMeta(b.metaOf(next)); err != nil {
		for k, t := range grown {
			b.discardReplicas(t.Name, added[k])
			errs[slots[k]] = errcode.New(errcode.KafkaStorageError, "adding partitions to topic %q: %v", t.Name, err)
		}
		return errs
	}
	b.snapshot.Store(next)
	for k, t := range grown {
		b.logger.Info("partitions added", zap.String("topic", t.Name),
			zap.Int("added", len(added[k])), zap.Int("partitions", len(t.Replicas)))
	}
	return errs
}

// openAddedPartitions opens the partitions of t from its current count up to count, with t's
// config. A directory left under one of their names (by a deleted topic of the same name whose
// files could not be moved, or by an addition interrupted by a crash before meta.json named the
// partitions) is moved aside first, so every new partition starts empty. On failure nothing of
// them is left open or on disk. Called with adminMu held.
func (b *Broker) openAddedPartitions(t *Topic, count int32) ([]*Replica, error) {
	first := int32(len(t.Replicas))
	for p := first; p < count; p++ {
		dir := b.partitionDir(t.Name, p)
		if _, err := b.opts.FS.Stat(dir); err == nil {
			b.logger.Warn("moving aside files left under the name of a new partition", zap.String("dir", dir))
			if err := b.moveAside(t.Name, p); err != nil {
				return nil, err
			}
		}
	}
	var replicas []*Replica
	for p := first; p < count; p++ {
		r, err := b.openReplica(t.Name, p, t.Config, t.Internal)
		if err != nil {
			b.discardReplicas(t.Name, replicas)
			if rerr := removeAll(b.opts.FS, b.partitionDir(t.Name, p)); rerr != nil {
				b.logger.Warn("could not remove the directory of a partition that failed to be added",
					zap.String("dir", b.partitionDir(t.Name, p)), zap.Error(rerr))
			}
			return nil, err
		}
		replicas = append(replicas, r)
	}
	return replicas, nil
}

// discardReplicas closes partitions that were opened but never published and removes their files.
func (b *Broker) discardReplicas(topic string, replicas []*Replica) {
	closeReplicas(replicas)
	for _, r := range replicas {
		dir := b.partitionDir(topic, r.Partition())
		if err := removeAll(b.opts.FS, dir); err != nil {
			b.logger.Warn("could not remove the directory of a partition that failed to be added", zap.String("dir", dir), zap.Error(err))
		}
	}
}

// checkPartitionSpecs checks specs against the snapshot and the per-request limit, filling errs.
func (b *Broker) checkPartitionSpecs(old *Snapshot, specs []PartitionsSpec, errs []error) []error {
	seen := map[string]bool{}
	var total int64
	for i, s := range specs {
		t := old.Topics[s.Topic]
		switch {
		case seen[s.Topic]:
			errs[i] = errcode.New(errcode.InvalidRequest, "topic %q appears twice in the request", s.Topic)
		case t == nil:
			errs[i] = errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", s.Topic)
		case t.Internal:
			errs[i] = errcode.New(errcode.InvalidTopic, "topic %q is internal: its partition count is fixed", s.Topic)
		case int(s.Count) < len(t.Replicas):
			errs[i] = errcode.New(errcode.InvalidPartitions,
				"topic %q has %d partitions, more than the %d asked for: partitions cannot be removed", s.Topic, len(t.Replicas), s.Count)
		case int(s.Count) == len(t.Replicas):
			errs[i] = errcode.New(errcode.InvalidPartitions, "topic %q already has %d partitions", s.Topic, s.Count)
		case s.Count > maxTopicPartitions:
			errs[i] = errcode.New(errcode.InvalidPartitions, "number of partitions must be between 1 and %d, got %d", maxTopicPartitions, s.Count)
		default:
			total += int64(s.Count) - int64(len(t.Replicas))
		}
		seen[s.Topic] = true
	}
	if total > int64(b.opts.MaxPartitionsPerRequest) {
		err := errcode.New(errcode.PolicyViolation,
			"the request adds %d partitions; the limit is %d a request (THORSTREAM_MAX_PARTITIONS_PER_REQUEST)", total, b.opts.MaxPartitionsPerRequest)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}
