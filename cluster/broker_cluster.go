package cluster

// A node of a cluster: the metadata is the controller's (MetadataStore), and the Broker is the
// replica manager of this node. Every change of topics is proposed to the controller; the
// replicas this node hosts are opened, configured and closed as the applied images say, on one
// reconciling goroutine, so every node acts on the same metadata in the same order.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
)

// proposeTimeout bounds how long an admin request waits for the controller.
const proposeTimeout = 15 * time.Second

// topicIDFile names the topic id a partition directory belongs to, as Kafka's
// partition.metadata does: a directory left by a deleted topic of the same name is told apart.
const topicIDFile = "partition.metadata"

// clusterState is the Broker's part that only a node of a cluster has.
type clusterState struct {
	store      MetadataStore
	stop       chan struct{}
	done       chan struct{}
	reconciled atomic.Uint64
	reconMu    sync.Mutex
	reconCh    chan struct{} // closed and replaced after every reconciliation

	pidMu    sync.Mutex
	pidNext  int64
	pidEnd   int64
	stopOnce sync.Once

	repl *replication // broker_replication.go
}

// openClustered starts a node of a cluster on its data directory: the replicas the replayed
// metadata assigns to this node are opened, then a goroutine follows every later image.
func (b *Broker) openClustered(store MetadataStore) error {
	cs := &clusterState{store: store, stop: make(chan struct{}), done: make(chan struct{}), reconCh: make(chan struct{})}
	b.cs = cs
	b.removeDeletedDirs()
	b.snapshot.Store(&Snapshot{Topics: map[string]*Topic{}})
	b.startReplication()
	b.reconcile()
	go b.followMetadata()
	return nil
}

// checkNotSingleNode refuses a data directory that holds a single node's topics: a node joins a
// cluster with a directory of its own. Checked before the controller writes anything there.
func (b *Broker) checkNotSingleNode() error {
	mj, err := b.readMeta()
	if err != nil {
		return err
	}
	if len(mj.Topics) > 0 {
		return fmt.Errorf("cluster: %s holds the topics of a single node (%d topics in %s); a node joins a cluster with a data directory of its own: start this one without THORSTREAM_CLUSTER_PEERS, or give the node another THORSTREAM_DATA_DIR",
			b.opts.DataDir, len(mj.Topics), metaFile)
	}
	return nil
}

// followMetadata reconciles the hosted replicas with every new image until the Broker closes.
func (b *Broker) followMetadata() {
	defer close(b.cs.done)
	for {
		select {
		case <-b.cs.stop:
			return
		case <-b.cs.store.Changed():
			b.reconcile()
		}
	}
}

func (b *Broker) stopFollowing() {
	if b.cs == nil {
		return
	}
	b.cs.stopOnce.Do(func() {
		close(b.cs.stop)
		<-b.cs.done
		b.stopReplication()
	})
}

// reconcile makes the published snapshot and the hosted replicas those of the store's latest
// image.
func (b *Broker) reconcile() {
	b.adminMu.Lock()
	img := b.cs.store.Image()
	if !b.closed && (img.Index > b.snapshot.Load().Index || b.snapshot.Load().Index == 0) {
		b.applyImage(img)
	} else if snap := b.snapshot.Load(); !b.closed && b.registeredNow(snap) != b.cs.repl.registered {
		b.applyRoles(snap, nil) // this node's registration is known now: it may lead
	}
	b.adminMu.Unlock()
	b.cs.reconciled.Store(max(b.cs.reconciled.Load(), img.Index))
	b.cs.reconMu.Lock()
	close(b.cs.reconCh)
	b.cs.reconCh = make(chan struct{})
	b.cs.reconMu.Unlock()
}

// waitReconciled returns once this node acts on the metadata up to index.
func (b *Broker) waitReconciled(ctx context.Context, index uint64) error {
	for {
		b.cs.reconMu.Lock()
		ch := b.cs.reconCh
		b.cs.reconMu.Unlock()
		if b.cs.reconciled.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return errcode.New(errcode.RequestTimedOut, "the change is committed, but this node has not applied it yet")
		}
	}
}

// applyImage publishes img: topics gone (or replaced by a topic of the same name) close their
// replicas and move their directories aside; partitions assigned to this node are opened; the
// rest take the image's config and leader epoch. Called with adminMu held.
func (b *Broker) applyImage(img *meta.Image) {
	old := b.snapshot.Load()
	self := b.opts.NodeID
	for _, name := range old.Names {
		ot := old.Topics[name]
		if nt := img.Topics[name]; nt != nil && nt.ID == ot.ID {
			continue
		}
		b.dropHosted(ot)
	}
	next := &Snapshot{Topics: make(map[string]*Topic, len(img.Topics)), Names: slices.Clone(img.Names), Index: img.Index}
	changed := map[*Topic]bool{}
	for _, id := range img.NodeIDs {
		next.Nodes = append(next.Nodes, *img.Nodes[id])
	}
	for _, name := range img.Names {
		mt := img.Topics[name]
		ot := old.Topics[name]
		if ot != nil && ot.ID != mt.ID {
			ot = nil
		}
		if ot != nil && ot.src == mt {
			// Images share the topics a command did not change: so do snapshots.
			next.Topics[name] = ot
			continue
		}
		var cfg *TopicConfig
		if ot != nil && overridesEqual(ot.Config.Overrides, mt.Configs) {
			cfg = ot.Config
		} else {
			c, err := BuildTopicConfig(mt.Configs, b.opts.Defaults)
			if err != nil {
				b.logger.Error("a topic's config is not valid on this node: it takes the defaults", zap.String("topic", name), zap.Error(err))
				c, _ = BuildTopicConfig(nil, b.opts.Defaults)
			}
			cfg = c
		}
		t := &Topic{Name: name, ID: mt.ID, Config: cfg, ReplicationFactor: mt.ReplicationFactor, Internal: mt.Internal,
			Replicas: make([]*Replica, len(mt.Partitions)), Partitions: mt.Partitions, src: mt}
		for p := range mt.Partitions {
			mp := &mt.Partitions[p]
			var r *Replica
			if ot != nil && p < len(ot.Replicas) {
				r = ot.Replicas[p]
			}
			hosted := slices.Contains(mp.Replicas, self)
			switch {
			case hosted && r == nil:
				var err error
				if r, err = b.openHosted(mt, int32(p), cfg); err != nil {
					b.logger.Error("could not open a partition this node hosts", zap.String("topic", name), zap.Int("partition", p), zap.Error(err))
					r = nil
				} else if len(mp.Replicas) > 1 {
					// What the log holds may not all be committed: the leader, or the
					// followers when this node leads, say how much is.
					r.ResetHighWatermark(0)
				}
			case !hosted && r != nil:
				_ = r.Close()
				r = nil
			case r != nil && cfg != ot.Config:
				if err := r.SetConfig(cfg); err != nil {
					b.logger.Warn("a partition did not take the new topic config", zap.String("topic", name), zap.Int("partition", p), zap.Error(err))
				}
			}
			t.Replicas[p] = r
		}
		next.Topics[name] = t
		changed[t] = true
	}
	b.snapshot.Store(next)
	b.applyRoles(next, changed)
	b.publishedMetadata(next)
}

func overridesEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// dropHosted closes the replicas of a topic that is gone and moves its directories aside.
func (b *Broker) dropHosted(t *Topic) {
	var failed []error
	for p, r := range t.Replicas {
		if r == nil {
			continue
		}
		_ = r.Close()
		if err := b.moveAside(t.Name, int32(p)); err != nil {
			failed = append(failed, err)
		}
	}
	_ = b.opts.FS.SyncDir(b.opts.DataDir)
	go b.removeDeletedDirs()
	for _, fn := range b.onDeleted {
		fn(t.Name)
	}
	if len(failed) > 0 {
		b.logger.Error("topic deleted, but some of its files could not be removed", zap.String("topic", t.Name), zap.Error(errors.Join(failed...)))
		return
	}
	b.logger.Info("topic deleted", zap.String("topic", t.Name))
}

// openHosted opens this node's replica of a partition. A directory that belongs to another topic
// of the same name (its partition.metadata names another id) is moved aside first.
func (b *Broker) openHosted(t *meta.Topic, p int32, cfg *TopicConfig) (*Replica, error) {
	dir := b.partitionDir(t.Name, p)
	want := "version: 0\ntopic_id: " + encodeTopicID(t.ID) + "\n"
	if f, err := b.opts.FS.Open(filepath.Join(dir, topicIDFile)); err == nil {
		size, _ := f.Size()
		buf := make([]byte, min(size, 4096))
		_, _ = f.ReadAt(buf, 0)
		f.Close()
		if string(buf) != want {
			b.logger.Warn("moving aside the files of an earlier topic of the same name", zap.String("dir", dir))
			if err := b.moveAside(t.Name, p); err != nil {
				return nil, err
			}
		}
	}
	r, err := b.openReplica(t.Name, p, cfg, t.Internal)
	if err != nil {
		return nil, err
	}
	if err := b.writeTopicID(dir, want); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

func (b *Broker) writeTopicID(dir, content string) error {
	if f, err := b.opts.FS.Open(filepath.Join(dir, topicIDFile)); err == nil {
		f.Close()
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFileAtomic(b.opts.FS, dir, topicIDFile, []byte(content))
}

// proposeAttempt bounds one proposal: raft may lose a proposal on its way to the leader (a
// dropped message, an election), so one that is not committed by then is proposed again.
const proposeAttempt = 3 * time.Second

// propose has cmd applied by the controller and waits until this node acts on it. A proposal
// that is lost, or made while no controller is elected, is made again until proposeTimeout;
// retried says so, because the first one may have been applied after all (callers tell that
// outcome from the result: every command carries the ids it expects).
func (b *Broker) propose(cmd meta.Command) (res meta.Result, retried bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, proposeAttempt)
		var index uint64
		res, index, err = b.cs.store.Propose(actx, cmd)
		acancel()
		if err == nil {
			return res, retried, b.waitReconciled(ctx, index)
		}
		code := errcode.Of(err)
		if code != errcode.RequestTimedOut && code != errcode.NotController {
			return res, retried, err
		}
		select {
		case <-ctx.Done():
			if code == errcode.NotController {
				return res, retried, err
			}
			return res, retried, errcode.New(errcode.RequestTimedOut, "the controller did not commit the change within %s", proposeTimeout)
		case <-time.After(100 * time.Millisecond):
		}
		retried = true
	}
}

func resultErr(code int16, msg string) error {
	if code == 0 {
		return nil
	}
	if msg == "" {
		msg = errcode.Code(code).String()
	}
	return errcode.New(errcode.Code(code), "%s", msg)
}

// createClustered creates call's topics through the controller.
func (b *Broker) createClustered(call *createCall) {
	snap := b.snapshot.Load()
	live := len(snap.LiveNodes())
	total := 0
	for _, t := range snap.Topics {
		total += len(t.Partitions)
	}
	var cmd meta.CreateTopics
	var idx []int
	for i, spec := range call.specs {
		if call.errs[i] != nil {
			continue
		}
		if _, ok := snap.Topics[spec.Name]; ok {
			call.errs[i] = errcode.New(errcode.TopicAlreadyExists, "topic %q already exists", spec.Name)
			continue
		}
		if live == 0 {
			call.errs[i] = errcode.New(errcode.InvalidReplicationFactor, "no node of the cluster is available to host topic %q", spec.Name)
			continue
		}
		if !spec.Internal && total+int(spec.Partitions) > b.opts.MaxPartitions*live {
			call.errs[i] = errcode.New(errcode.PolicyViolation,
				"topic %q would take the cluster to %d partitions; the limit is %d a node (THORSTREAM_MAX_PARTITIONS) over %d nodes",
				spec.Name, total+int(spec.Partitions), b.opts.MaxPartitions, live)
			continue
		}
		total += int(spec.Partitions)
		if call.validateOnly {
			continue
		}
		var id [16]byte
		_, _ = io.ReadFull(rand.Reader, id[:])
		cmd.Topics = append(cmd.Topics, meta.NewTopic{Name: spec.Name, ID: id, Partitions: spec.Partitions,
			ReplicationFactor: spec.ReplicationFactor, Internal: spec.Internal, Configs: spec.Configs})
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return
	}
	res, retried, err := b.propose(meta.Command{CreateTopics: &cmd})
	snap = b.snapshot.Load()
	for k, i := range idx {
		switch {
		case err != nil:
			call.errs[i] = err
		case k < len(res.Codes):
			msg := ""
			if k < len(res.Messages) {
				msg = res.Messages[k]
			}
			call.errs[i] = resultErr(res.Codes[k], msg)
			if t := snap.Topics[cmd.Topics[k].Name]; retried && t != nil && t.ID == cmd.Topics[k].ID {
				call.errs[i] = nil // an earlier attempt created it
			}
		default:
			call.errs[i] = resultErr(res.Code, res.Message)
		}
		if call.errs[i] == nil {
			b.logger.Info("topic created", zap.String("topic", cmd.Topics[k].Name), zap.Int32("partitions", cmd.Topics[k].Partitions))
		}
	}
}

// deleteClustered deletes a topic through the controller.
func (b *Broker) deleteClustered(name string) error {
	t := b.snapshot.Load().Topics[name]
	if t == nil {
		return errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if t.Internal {
		return errcode.New(errcode.InvalidTopic, "topic %q is internal", name)
	}
	res, retried, err := b.propose(meta.Command{DeleteTopic: &meta.DeleteTopic{Name: name, ID: t.ID}})
	if err != nil {
		return err
	}
	if now := b.snapshot.Load().Topics[name]; retried && (now == nil || now.ID != t.ID) {
		return nil // an earlier attempt deleted it
	}
	return resultErr(res.Code, res.Message)
}

// alterConfigClustered replaces a topic's overrides through the controller.
func (b *Broker) alterConfigClustered(t *Topic, overrides map[string]string) error {
	res, _, err := b.propose(meta.Command{AlterConfigs: &meta.AlterConfigs{Name: t.Name, ID: t.ID, Configs: overrides}})
	if err != nil {
		return err
	}
	if err := resultErr(res.Code, res.Message); err != nil {
		return err
	}
	b.logger.Info("topic config changed", zap.String("topic", t.Name), zap.Any("overrides", overrides))
	return nil
}

// createPartitionsClustered grows a topic through the controller.
func (b *Broker) createPartitionsClustered(t *Topic, count int32) error {
	res, retried, err := b.propose(meta.Command{CreatePartitions: &meta.CreatePartitions{Name: t.Name, ID: t.ID, From: int32(len(t.Partitions)), Count: count}})
	if err != nil {
		return err
	}
	if now := b.snapshot.Load().Topics[t.Name]; retried && now != nil && now.ID == t.ID && len(now.Partitions) == int(count) {
		return nil // an earlier attempt added them
	}
	return resultErr(res.Code, res.Message)
}

// newProducerIDClustered hands out an id from this node's block, taking a new block from the
// controller when it is used up: ids are unique across the cluster.
func (b *Broker) newProducerIDClustered() (int64, error) {
	cs := b.cs
	cs.pidMu.Lock()
	defer cs.pidMu.Unlock()
	if cs.pidNext >= cs.pidEnd {
		res, _, err := b.propose(meta.Command{AllocProducerIDs: &meta.AllocProducerIDs{Node: b.opts.NodeID, Count: producerIDBlockSize}})
		if err != nil {
			return -1, err
		}
		if err := resultErr(res.Code, res.Message); err != nil {
			return -1, err
		}
		cs.pidNext, cs.pidEnd = res.ProducerIDStart, res.ProducerIDStart+producerIDBlockSize
	}
	id := cs.pidNext
	cs.pidNext++
	return id, nil
}
