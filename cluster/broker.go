// Package cluster owns replicas and nodes: the topic registry and its metadata snapshots, the
// per-partition replica goroutines that are the single writers of their logs, and (for several
// nodes) replication and leader election.
//
// Metadata is published as immutable snapshots through an atomic pointer: request handlers on
// the event loops look topics and partitions up without locks or allocations. Admin operations
// (create and delete topics) are serialised by one mutex that is never taken on the data path.
package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// Options configures a Broker. Zero values take the documented defaults.
type Options struct {
	NodeID             int32
	DataDir            string // required
	FS                 vfs.FS // default vfs.Default
	Fsync              FsyncPolicy
	Defaults           Defaults // default DefaultDefaults
	DefaultPartitions  int32    // partitions of auto-created topics and of CreateTopics with -1; default 1
	AutoCreateTopics   bool
	InboxSize          int           // per-partition inbox; default 1024
	RetentionCheck     time.Duration // default 30 s
	IndexIntervalBytes int           // default 4096
	Logger             *zap.Logger
	Now                func() time.Time
}

// Topic is one topic in a metadata snapshot. It is immutable; its replicas are shared.
type Topic struct {
	Name              string
	ID                [16]byte
	Config            *TopicConfig
	ReplicationFactor int16
	Internal          bool
	Replicas          []*Replica
}

// Snapshot is an immutable view of the topics.
type Snapshot struct {
	Topics map[string]*Topic
	Names  []string // sorted
}

// Broker is one node's view of the cluster: its topics and the replicas it hosts.
type Broker struct {
	opts      Options
	logger    *zap.Logger
	clusterID string

	snapshot atomic.Pointer[Snapshot]

	// adminMu serialises topic creation and deletion, producer id allocation and writes of the
	// metadata file. It is never taken on the produce or fetch path.
	adminMu         sync.Mutex
	closed          bool
	nextProducerID  int64
	producerIDBlock int64 // end (exclusive) of the block persisted in meta.json
	// onDeleted are called after a topic is deleted, whichever protocol asked (state kept beside
	// the logs, such as committed offsets, forgets the topic). Guarded by adminMu.
	onDeleted []func(topic string)
}

// OnTopicDeleted registers fn to run (under the admin lock, so it must not call back into the
// Broker's admin methods) after every topic deletion.
func (b *Broker) OnTopicDeleted(fn func(topic string)) {
	b.adminMu.Lock()
	b.onDeleted = append(b.onDeleted, fn)
	b.adminMu.Unlock()
}

// producerIDBlockSize is how many producer ids one meta.json write reserves.
const producerIDBlockSize = 1000

// metaFile is the broker's persisted metadata: cluster id and topics.
const metaFile = "meta.json"

type metaJSON struct {
	Version   int         `json:"version"`
	ClusterID string      `json:"cluster_id"`
	NodeID    int32       `json:"node_id"`
	Topics    []topicJSON `json:"topics"`
	// ProducerIDBlockEnd is the end of the last block of producer ids handed out: ids below it
	// may be in use, so a restart starts the next block there.
	ProducerIDBlockEnd int64 `json:"producer_id_block_end,omitempty"`
}

type topicJSON struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Internal          bool              `json:"internal,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
}

// Open loads the metadata under DataDir, opens (and recovers) every partition log and starts
// its replica goroutine.
func Open(o Options) (*Broker, error) {
	if o.DataDir == "" {
		return nil, errors.New("cluster: no data directory")
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Defaults == (Defaults{}) {
		o.Defaults = DefaultDefaults
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.FS.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: data directory: %w", err)
	}
	b := &Broker{opts: o, logger: o.Logger}
	meta, err := b.readMeta()
	if err != nil {
		return nil, err
	}
	if meta.ClusterID == "" {
		meta.ClusterID = newClusterID()
		meta.NodeID = o.NodeID
		meta.Version = 1
		if err := b.writeMeta(meta); err != nil {
			return nil, err
		}
	}
	b.clusterID = meta.ClusterID
	b.nextProducerID = meta.ProducerIDBlockEnd
	b.producerIDBlock = meta.ProducerIDBlockEnd
	b.removeDeletedDirs()

	snap := &Snapshot{Topics: map[string]*Topic{}}
	for _, tj := range meta.Topics {
		t, err := b.openTopic(tj)
		if err != nil {
			for _, t := range snap.Topics {
				closeReplicas(t.Replicas)
			}
			return nil, err
		}
		snap.Topics[t.Name] = t
	}
	snap.Names = sortedNames(snap.Topics)
	b.snapshot.Store(snap)
	return b, nil
}

// Settings lists the broker-wide settings with Kafka's broker config names, for DescribeConfigs.
func (b *Broker) Settings() [][2]string {
	d := b.opts.Defaults
	return [][2]string{
		{"broker.id", strconv.Itoa(int(b.opts.NodeID))},
		{"log.retention.ms", strconv.FormatInt(d.RetentionMs, 10)},
		{"log.retention.bytes", strconv.FormatInt(d.RetentionBytes, 10)},
		{"log.segment.bytes", strconv.FormatInt(d.SegmentBytes, 10)},
		{"log.roll.ms", strconv.FormatInt(d.SegmentMs, 10)},
		{"message.max.bytes", strconv.FormatInt(int64(d.MaxMessageBytes), 10)},
		{"num.partitions", strconv.Itoa(int(b.opts.DefaultPartitions))},
		{"auto.create.topics.enable", strconv.FormatBool(b.opts.AutoCreateTopics)},
		{"log.flush.policy", b.opts.Fsync.String()},
	}
}

// Logger is the broker's logger.
func (b *Broker) Logger() *zap.Logger { return b.logger }

// ClusterID is the cluster's id, created with the data directory.
func (b *Broker) ClusterID() string { return b.clusterID }

// NodeID is this node's id.
func (b *Broker) NodeID() int32 { return b.opts.NodeID }

// AutoCreateTopics reports whether unknown topics are created on first use.
func (b *Broker) AutoCreateTopics() bool { return b.opts.AutoCreateTopics }

// Snapshot returns the current metadata snapshot. Callers must not modify it.
func (b *Broker) Snapshot() *Snapshot { return b.snapshot.Load() }

// Replica looks up a partition's replica; nil if the topic or partition does not exist.
func (b *Broker) Replica(topic string, partition int32) *Replica {
	t := b.snapshot.Load().Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Replicas) {
		return nil
	}
	return t.Replicas[partition]
}

// ReplicaBytes is Replica with the topic name as bytes (no allocation for the lookup).
func (b *Broker) ReplicaBytes(topic []byte, partition int32) *Replica {
	t := b.snapshot.Load().Topics[string(topic)]
	if t == nil || partition < 0 || int(partition) >= len(t.Replicas) {
		return nil
	}
	return t.Replicas[partition]
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32 // -1: DefaultPartitions
	ReplicationFactor int16 // -1: 1
	Configs           map[string]string
	Internal          bool
}

// ValidTopicName checks a topic name with Kafka's rules.
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errcode.New(errcode.InvalidTopic, "topic name is empty")
	case name == "." || name == "..":
		return errcode.New(errcode.InvalidTopic, "topic name %q is not allowed", name)
	case len(name) > 249:
		return errcode.New(errcode.InvalidTopic, "topic name is %d characters long, the limit is 249", len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errcode.New(errcode.InvalidTopic, "topic name %q has %q: only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return nil
}

// CreateTopic creates a topic (or, with validateOnly, only checks that it could).
func (b *Broker) CreateTopic(spec TopicSpec, validateOnly bool) error {
	if err := ValidTopicName(spec.Name); err != nil {
		return err
	}
	if strings.HasPrefix(spec.Name, "__") && !spec.Internal {
		return errcode.New(errcode.InvalidTopic, "topic names starting with \"__\" are reserved for internal topics")
	}
	if spec.Partitions == -1 {
		spec.Partitions = b.opts.DefaultPartitions
	}
	if spec.Partitions <= 0 || spec.Partitions > 100000 {
		return errcode.New(errcode.InvalidPartitions, "number of partitions must be between 1 and 100000, got %d", spec.Partitions)
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = 1
	}
	if spec.ReplicationFactor != 1 {
		return errcode.New(errcode.InvalidReplicationFactor, "replication factor %d is larger than the 1 available node", spec.ReplicationFactor)
	}
	if _, err := BuildTopicConfig(spec.Configs, b.opts.Defaults); err != nil {
		return err
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed {
		return errcode.New(errcode.UnknownServerError, "broker is shutting down")
	}
	old := b.snapshot.Load()
	if _, ok := old.Topics[spec.Name]; ok {
		return errcode.New(errcode.TopicAlreadyExists, "topic %q already exists", spec.Name)
	}
	if validateOnly {
		return nil
	}
	var id [16]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	tj := topicJSON{
		Name:              spec.Name,
		ID:                base64.RawURLEncoding.EncodeToString(id[:]),
		Partitions:        spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor,
		Internal:          spec.Internal,
		Configs:           spec.Configs,
	}
	t, err := b.openTopic(tj)
	if err != nil {
		return errcode.New(errcode.KafkaStorageError, "creating topic %q: %v", spec.Name, err)
	}
	next := old.with(t)
	if err := b.writeMeta(b.metaOf(next)); err != nil {
		closeReplicas(t.Replicas)
		return errcode.New(errcode.KafkaStorageError, "creating topic %q: %v", spec.Name, err)
	}
	b.snapshot.Store(next)
	b.logger.Info("topic created", zap.String("topic", spec.Name), zap.Int32("partitions", spec.Partitions))
	return nil
}

// EnsureTopic returns the topic, creating it with the defaults when it is missing and
// auto-creation is on. ok is false when the topic does not exist and was not created.
func (b *Broker) EnsureTopic(name string) (t *Topic, err error) {
	if t := b.snapshot.Load().Topics[name]; t != nil {
		return t, nil
	}
	if !b.opts.AutoCreateTopics {
		return nil, errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	err = b.CreateTopic(TopicSpec{Name: name, Partitions: -1, ReplicationFactor: -1}, false)
	if err != nil && errcode.Of(err) != errcode.TopicAlreadyExists {
		return nil, err
	}
	if t := b.snapshot.Load().Topics[name]; t != nil {
		return t, nil
	}
	return nil, errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
}

// DeleteTopic removes a topic: it disappears from metadata at once, its replicas finish what
// they accepted, and its files are removed in the background.
func (b *Broker) DeleteTopic(name string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed {
		return errcode.New(errcode.UnknownServerError, "broker is shutting down")
	}
	old := b.snapshot.Load()
	t, ok := old.Topics[name]
	if !ok {
		return errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if t.Internal {
		return errcode.New(errcode.InvalidTopic, "topic %q is internal", name)
	}
	next := old.without(name)
	if err := b.writeMeta(b.metaOf(next)); err != nil {
		return errcode.New(errcode.KafkaStorageError, "deleting topic %q: %v", name, err)
	}
	b.snapshot.Store(next)
	closeReplicas(t.Replicas)
	for p := range t.Replicas {
		dir := b.partitionDir(name, int32(p))
		_ = b.opts.FS.Rename(dir, dir+"."+strconv.FormatInt(b.opts.Now().UnixNano(), 36)+".deleted")
	}
	_ = b.opts.FS.SyncDir(b.opts.DataDir)
	go b.removeDeletedDirs()
	for _, fn := range b.onDeleted {
		fn(name)
	}
	b.logger.Info("topic deleted", zap.String("topic", name))
	return nil
}

// Close stops every replica after it has appended and synced what it accepted.
func (b *Broker) Close() error {
	b.adminMu.Lock()
	b.closed = true
	b.adminMu.Unlock()
	var errs []error
	for _, t := range b.snapshot.Load().Topics {
		for _, r := range t.Replicas {
			if err := r.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.opts.DataDir, topic+"-"+strconv.Itoa(int(p)))
}

func (b *Broker) openTopic(tj topicJSON) (*Topic, error) {
	cfg, err := BuildTopicConfig(tj.Configs, b.opts.Defaults)
	if err != nil {
		return nil, fmt.Errorf("cluster: topic %q: %w", tj.Name, err)
	}
	t := &Topic{Name: tj.Name, Config: cfg, ReplicationFactor: tj.ReplicationFactor, Internal: tj.Internal}
	if raw, err := base64.RawURLEncoding.DecodeString(tj.ID); err == nil && len(raw) == 16 {
		copy(t.ID[:], raw)
	}
	for p := int32(0); p < tj.Partitions; p++ {
		l, err := partition.Open(partition.Options{
			FS:                 b.opts.FS,
			Dir:                b.partitionDir(tj.Name, p),
			SegmentBytes:       cfg.SegmentBytes,
			SegmentAge:         time.Duration(cfg.SegmentMs) * time.Millisecond,
			RetentionBytes:     cfg.RetentionBytes,
			RetentionAge:       time.Duration(cfg.RetentionMs) * time.Millisecond,
			IndexIntervalBytes: b.opts.IndexIntervalBytes,
			Logger:             b.logger,
			Now:                b.opts.Now,
		})
		if err != nil {
			closeReplicas(t.Replicas)
			return nil, fmt.Errorf("cluster: opening %s-%d: %w", tj.Name, p, err)
		}
		t.Replicas = append(t.Replicas, NewReplica(ReplicaOptions{
			Topic:          tj.Name,
			Partition:      p,
			Log:            l,
			Config:         cfg,
			Fsync:          b.opts.Fsync,
			InboxSize:      b.opts.InboxSize,
			LeaderEpoch:    0,
			RetentionCheck: b.opts.RetentionCheck,
			Internal:       tj.Internal,
			Logger:         b.logger,
			Now:            b.opts.Now,
		}))
	}
	return t, nil
}

func closeReplicas(rs []*Replica) {
	for _, r := range rs {
		_ = r.Close()
	}
}

// NewProducerID hands out a producer id never given before, on this cluster, even across
// restarts: ids are reserved in blocks persisted in meta.json. It may write the disk.
func (b *Broker) NewProducerID() (int64, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.nextProducerID >= b.producerIDBlock {
		end := b.producerIDBlock + producerIDBlockSize
		old := b.producerIDBlock
		b.producerIDBlock = end
		if err := b.writeMeta(b.metaOf(b.snapshot.Load())); err != nil {
			b.producerIDBlock = old
			return -1, errcode.New(errcode.KafkaStorageError, "reserving producer ids: %v", err)
		}
	}
	id := b.nextProducerID
	b.nextProducerID++
	return id, nil
}

func (b *Broker) metaOf(s *Snapshot) metaJSON {
	m := metaJSON{Version: 1, ClusterID: b.clusterID, NodeID: b.opts.NodeID, ProducerIDBlockEnd: b.producerIDBlock}
	for _, name := range s.Names {
		t := s.Topics[name]
		m.Topics = append(m.Topics, topicJSON{
			Name:              t.Name,
			ID:                base64.RawURLEncoding.EncodeToString(t.ID[:]),
			Partitions:        int32(len(t.Replicas)),
			ReplicationFactor: t.ReplicationFactor,
			Internal:          t.Internal,
			Configs:           t.Config.Overrides,
		})
	}
	return m
}

func (b *Broker) readMeta() (metaJSON, error) {
	var m metaJSON
	path := filepath.Join(b.opts.DataDir, metaFile)
	f, err := b.opts.FS.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return m, fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return m, fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	if err := json.Unmarshal(buf, &m); err != nil {
		return m, fmt.Errorf("cluster: %s is damaged (%v); restore it from a backup or move it away to start an empty broker", path, err)
	}
	return m, nil
}

// writeMeta replaces the metadata file atomically: write a temporary file, sync it, rename it
// over the old one and sync the directory.
func (b *Broker) writeMeta(m metaJSON) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.opts.DataDir, metaFile)
	tmp := path + ".tmp"
	f, err := b.opts.FS.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := b.opts.FS.Rename(tmp, path); err != nil {
		return err
	}
	return b.opts.FS.SyncDir(b.opts.DataDir)
}

// removeDeletedDirs removes the files of deleted topics (directories renamed to *.deleted).
func (b *Broker) removeDeletedDirs() {
	names, err := b.opts.FS.ReadDir(b.opts.DataDir)
	if err != nil {
		return
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".deleted") {
			continue
		}
		dir := filepath.Join(b.opts.DataDir, n)
		files, _ := b.opts.FS.ReadDir(dir)
		for _, f := range files {
			_ = b.opts.FS.Remove(filepath.Join(dir, f))
		}
		if err := b.opts.FS.Remove(dir); err != nil {
			b.logger.Warn("could not remove a deleted topic's directory", zap.String("dir", dir), zap.Error(err))
		}
	}
}

func (s *Snapshot) with(t *Topic) *Snapshot {
	next := &Snapshot{Topics: make(map[string]*Topic, len(s.Topics)+1)}
	for k, v := range s.Topics {
		next.Topics[k] = v
	}
	next.Topics[t.Name] = t
	next.Names = sortedNames(next.Topics)
	return next
}

func (s *Snapshot) without(name string) *Snapshot {
	next := &Snapshot{Topics: make(map[string]*Topic, len(s.Topics))}
	for k, v := range s.Topics {
		if k != name {
			next.Topics[k] = v
		}
	}
	next.Names = sortedNames(next.Topics)
	return next
}

func sortedNames(m map[string]*Topic) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func newClusterID() string {
	var id [16]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}
