package cluster

import (
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
)

// ConfigOpType is how one ConfigOp changes a key, numbered as Kafka's IncrementalAlterConfigs
// numbers its operations.
type ConfigOpType int8

// Config operations.
const (
	ConfigSet      ConfigOpType = 0 // set the key to Value
	ConfigDelete   ConfigOpType = 1 // drop the override: the topic takes the broker's default again
	ConfigAppend   ConfigOpType = 2 // add Value's items to a list config (those not in it already)
	ConfigSubtract ConfigOpType = 3 // remove Value's items from a list config
)

// ConfigOp is one change to a topic's config overrides. ConfigDelete ignores Value; for
// ConfigAppend and ConfigSubtract, Value is a comma-separated list of items.
type ConfigOp struct {
	Op    ConfigOpType
	Key   string
	Value string
}

// listConfigs are the topic configs whose values are comma-separated lists, the ones
// ConfigAppend and ConfigSubtract apply to.
var listConfigs = map[string]bool{ConfigCleanupPolicy: true}

// AlterTopicConfig changes a topic's config overrides (or, with validateOnly, only checks that it
// could). With replace, the overrides are cleared first, so ops (all ConfigSet) state the whole
// set, as Kafka's AlterConfigs does; without it ops are applied in order to the current
// overrides, as IncrementalAlterConfigs does. A key named twice, or ConfigAppend and
// ConfigSubtract on a config that is not a list, give INVALID_REQUEST; the result is checked as
// creation checks configs (BuildTopicConfig: INVALID_CONFIG naming the key).
//
// The new config is written to meta.json, then every partition of the topic takes it on its
// replica goroutine (Replica.SetConfig) before AlterTopicConfig returns: appends are validated
// against it from the next group on, and the logs roll and retain by it.
func (b *Broker) AlterTopicConfig(topic string, ops []ConfigOp, replace, validateOnly bool) error {
	if b.cs != nil {
		t := b.snapshot.Load().Topics[topic]
		if t == nil {
			return errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", topic)
		}
		overrides, err := applyConfigOps(t.Config, ops, replace)
		if err != nil {
			return err
		}
		if _, err := BuildTopicConfig(overrides, b.opts.Defaults); err != nil || validateOnly {
			return err
		}
		return b.alterConfigClustered(t, overrides)
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed {
		return errcode.New(errcode.UnknownServerError, "broker is shutting down")
	}
	old := b.snapshot.Load()
	t := old.Topics[topic]
	if t == nil {
		return errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", topic)
	}
	overrides, err := applyConfigOps(t.Config, ops, replace)
	if err != nil {
		return err
	}
	cfg, err := BuildTopicConfig(overrides, b.opts.Defaults)
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	altered := *t
	altered.Config = cfg
	next := old.withAll([]*Topic{&altered})
	if err := b.writeMeta(b.metaOf(next)); err != nil {
		return errcode.New(errcode.KafkaStorageError, "changing the config of topic %q: %v", topic, err)
	}
	b.snapshot.Store(next)
	for _, r := range altered.Replicas {
		if r == nil {
			continue
		}
		// Every replica of a published topic is open: deletion and Close wait for adminMu.
		if err := r.SetConfig(cfg); err != nil {
			b.logger.Warn("a partition did not take the new topic config", zap.String("topic", topic),
				zap.Int32("partition", r.Partition()), zap.Error(err))
		}
	}
	b.logger.Info("topic config changed", zap.String("topic", topic), zap.Any("overrides", cfg.Overrides))
	return nil
}

// applyConfigOps returns the overrides of cur after ops (or, with replace, ops alone).
func applyConfigOps(cur *TopicConfig, ops []ConfigOp, replace bool) (map[string]string, error) {
	overrides := map[string]string{}
	if !replace {
		overrides = maps.Clone(cur.Overrides)
		if overrides == nil {
			overrides = map[string]string{}
		}
	}
	effective := map[string]string{}
	for _, kv := range cur.Effective() {
		effective[kv[0]] = kv[1]
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Key] {
			return nil, errcode.New(errcode.InvalidRequest, "config %s appears twice in the request", op.Key)
		}
		seen[op.Key] = true
		switch op.Op {
		case ConfigSet:
			overrides[op.Key] = op.Value
		case ConfigDelete:
			if _, ok := effective[op.Key]; !ok {
				return nil, errcode.New(errcode.InvalidConfig, "config %s: unknown topic config", op.Key)
			}
			delete(overrides, op.Key)
		case ConfigAppend, ConfigSubtract:
			if !listConfigs[op.Key] {
				if _, ok := effective[op.Key]; !ok {
					return nil, errcode.New(errcode.InvalidConfig, "config %s: unknown topic config", op.Key)
				}
				return nil, errcode.New(errcode.InvalidRequest, "config %s is not a list: APPEND and SUBTRACT apply to list configs (%s)",
					op.Key, strings.Join(slices.Sorted(maps.Keys(listConfigs)), ", "))
			}
			current, ok := overrides[op.Key]
			if !ok {
				current = effective[op.Key]
			}
			items := splitList(current)
			for _, item := range splitList(op.Value) {
				has := slices.Contains(items, item)
				switch {
				case op.Op == ConfigAppend && !has:
					items = append(items, item)
				case op.Op == ConfigSubtract && has:
					items = slices.DeleteFunc(items, func(s string) bool { return s == item })
				}
			}
			overrides[op.Key] = strings.Join(items, ",")
		default:
			return nil, errcode.New(errcode.InvalidRequest, "config %s: unknown operation %d", op.Key, op.Op)
		}
	}
	return overrides, nil
}

// splitList splits a list config's value at its commas, without blanks.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
