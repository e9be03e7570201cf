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
	"encoding/hex"
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

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// Options configures a Broker. Zero values take the documented defaults.
type Options struct {
	NodeID            int32
	DataDir           string // required
	FS                vfs.FS // default vfs.Default
	Fsync             FsyncPolicy
	Defaults          Defaults // default DefaultDefaults
	DefaultPartitions int32    // partitions of auto-created topics and of CreateTopics with -1; default 1
	// DefaultReplicationFactor is the replication factor of auto-created topics and of
	// CreateTopics with -1 (Kafka's default.replication.factor); 0: 3 on a node of a cluster of
	// three or more, its size on a smaller one, 1 on a single node.
	DefaultReplicationFactor int16
	// ReplicaLagMax is Kafka's replica.lag.time.max.ms: a follower that has not caught up with
	// its leader's log end for this long leaves the in-sync replicas; default 10 s.
	ReplicaLagMax time.Duration
	// SendPeer hands a message for another node of the cluster to the peer transport without
	// blocking (false: dropped). Replication travels on it; nil on a single node.
	SendPeer           func(to int32, kind uint8, payload []byte) bool
	AutoCreateTopics   bool
	InboxSize          int           // per-partition inbox; default 1024
	RetentionCheck     time.Duration // default 30 s
	IndexIntervalBytes int           // default 4096
	// ProducerIDExpiration is Kafka's producer.id.expiration.ms: an idempotent producer's state
	// is dropped after this long without a batch from it; default 1 day.
	ProducerIDExpiration time.Duration
	// MaxPartitions bounds the partitions this broker hosts, every topic together (each open
	// segment holds three file descriptors); default DefaultMaxPartitions. Internal topics are
	// counted but never refused.
	MaxPartitions int
	// MaxPartitionsPerRequest bounds the partitions one CreateTopics request creates, summed over
	// its topics; default DefaultMaxPartitionsPerRequest.
	MaxPartitionsPerRequest int
	// MaxOpenSegments bounds the .log files of sealed segments open at once, every partition
	// together (they are opened to be read and closed when idle); default DefaultMaxOpenSegments.
	// Active segments hold three descriptors each outside this bound.
	MaxOpenSegments int
	// MaxAutoCreateTopics bounds the topics one Metadata or Produce request auto-creates; default
	// DefaultMaxAutoCreateTopics.
	MaxAutoCreateTopics int
	// Cleaner configures log compaction (the cleaner threads, their memory and I/O rate); it
	// runs unless CleanerDisabled.
	Cleaner         cleaner.Options
	CleanerDisabled bool
	Logger          *zap.Logger
	Now             func() time.Time
	// Metrics are the storage metrics replicas count into (metrics.go); nil: none.
	Metrics *Metrics
	// Binary and Kafka are this node's advertised listener addresses, as Metadata lists them
	// (Port 0: no such listener).
	Binary, Kafka meta.Endpoint
	// OpenStore, when set, makes this node one of a cluster: it is called once the data
	// directory is locked and returns the cluster's metadata store (the controller), which the
	// Broker closes last. Nil: a single node, whose metadata is its data directory's meta.json.
	OpenStore func() (MetadataStore, error)
	// Store is the store OpenStore returned (set by Open).
	Store MetadataStore
}

// Defaults of the creation limits.
const (
	// DefaultMaxPartitions keeps a broker with one segment per partition at 30,000 descriptors
	// for its logs, well inside the usual hard limit of open files (524,288 or more).
	DefaultMaxPartitions = 10000
	// DefaultMaxPartitionsPerRequest is Apache Kafka's cap on the partitions one request creates.
	DefaultMaxPartitionsPerRequest = 10000
	// DefaultMaxOpenSegments is how many sealed segments' .log files stay open for readers.
	DefaultMaxOpenSegments = segment.DefaultOpenSegments
	// DefaultMaxAutoCreateTopics is how many unknown topics one request may create.
	DefaultMaxAutoCreateTopics = 100
)

// Topic is one topic in a metadata snapshot. It is immutable; its replicas are shared.
type Topic struct {
	Name              string
	ID                [16]byte
	Config            *TopicConfig
	ReplicationFactor int16
	Internal          bool
	// Replicas are this node's replicas of the partitions, by partition; nil where this node
	// hosts none (another node's partition in a cluster).
	Replicas []*Replica
	// Partitions are the partitions' assignments (replicas, ISR, leader, epochs), by partition.
	Partitions []meta.Partition

	src *meta.Topic // the metadata it was built from (a node of a cluster): unchanged, it is reused
}

// Snapshot is an immutable view of the cluster: its nodes and topics.
type Snapshot struct {
	Topics map[string]*Topic
	Names  []string // sorted
	// Nodes are the registered nodes, sorted by id (one node: this one).
	Nodes []meta.Node
	// Index is the metadata log index the snapshot reflects (0 on a single node).
	Index uint64
}

// Broker is one node's view of the cluster: its topics and the replicas it hosts.
type Broker struct {
	opts      Options
	logger    *zap.Logger
	clusterID string
	files     *segment.FileCache // bounds the open .log files of sealed segments, every partition together

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
	// watchers follow a cluster's metadata (broker_watch.go). Guarded by adminMu.
	watchers []func(*Snapshot)

	// Topic creations are group-committed: callers queue, and one of them (the leader) creates
	// everything queued with one write of meta.json. createMu guards the queue and the flag.
	createMu      sync.Mutex
	createQueue   []*createCall
	createLeading bool

	// purgeMu serialises the removal of deleted topics' directories.
	purgeMu sync.Mutex

	lock *dataDirLock // nil on a filesystem other than the operating system's

	cleaner *cleaner.Cleaner // nil when disabled

	cs *clusterState // nil on a single node (broker_cluster.go)
}

// Cleaner is the broker's log cleaner (nil when disabled).
func (b *Broker) Cleaner() *cleaner.Cleaner { return b.cleaner }

func (b *Broker) closeCleaner() {
	if b.cleaner != nil {
		b.cleaner.Close()
	}
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
	if o.MaxPartitions <= 0 {
		o.MaxPartitions = DefaultMaxPartitions
	}
	if o.MaxPartitionsPerRequest <= 0 {
		o.MaxPartitionsPerRequest = DefaultMaxPartitionsPerRequest
	}
	if o.MaxAutoCreateTopics <= 0 {
		o.MaxAutoCreateTopics = DefaultMaxAutoCreateTopics
	}
	if err := o.FS.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: data directory: %w", err)
	}
	if o.MaxOpenSegments <= 0 {
		o.MaxOpenSegments = DefaultMaxOpenSegments
	}
	b := &Broker{opts: o, logger: o.Logger, files: segment.NewFileCache(o.MaxOpenSegments)}
	if !o.CleanerDisabled {
		co := o.Cleaner
		if co.Logger == nil {
			co.Logger = o.Logger.Named("cleaner")
		}
		b.cleaner = cleaner.New(co)
	}
	if o.FS == vfs.Default {
		// One broker per data directory, before anything in it is read or written.
		lock, err := lockDataDir(o.DataDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
	}
	if o.OpenStore != nil {
		if err := b.checkNotSingleNode(); err != nil {
			b.closeCleaner()
			b.lock.release()
			return nil, err
		}
		store, err := o.OpenStore()
		if err != nil {
			b.closeCleaner()
			b.lock.release()
			return nil, err
		}
		b.opts.Store = store
		if err := b.openClustered(store); err != nil {
			_ = store.Close()
			b.closeCleaner()
			b.lock.release()
			return nil, err
		}
		return b, nil
	}
	if err := b.load(); err != nil {
		b.closeCleaner()
		b.lock.release()
		return nil, err
	}
	return b, nil
}

// load reads the metadata, removes deleted topics' files and opens every partition.
func (b *Broker) load() error {
	mj, err := b.readMeta()
	if err != nil {
		return err
	}
	if mj.ClusterID == "" {
		mj.ClusterID = newClusterID()
		mj.NodeID = b.opts.NodeID
		mj.Version = 1
		if err := b.writeMeta(mj); err != nil {
			return err
		}
	}
	b.clusterID = mj.ClusterID
	b.nextProducerID = mj.ProducerIDBlockEnd
	b.producerIDBlock = mj.ProducerIDBlockEnd
	b.removeDeletedDirs()

	snap := &Snapshot{Topics: map[string]*Topic{}}
	for _, tj := range mj.Topics {
		t, err := b.openTopic(tj)
		if err != nil {
			for _, t := range snap.Topics {
				closeReplicas(t.Replicas)
			}
			return err
		}
		snap.Topics[t.Name] = t
	}
	snap.Names = sortedNames(snap.Topics)
	snap.Nodes = []meta.Node{b.selfNode()}
	if n := snap.partitions(); n > b.opts.MaxPartitions {
		b.logger.Warn("the data directory holds more partitions than the limit: no topic can be created until some are deleted",
			zap.Int("partitions", n), zap.Int("max_partitions", b.opts.MaxPartitions))
	}
	b.snapshot.Store(snap)
	return nil
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
func (b *Broker) ClusterID() string {
	if b.cs != nil {
		return b.cs.store.Image().ClusterID // "" until the first controller names the cluster
	}
	return b.clusterID
}

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
	return b.CreateTopics([]TopicSpec{spec}, validateOnly)[0]
}

// CreateTopics creates topics (or, with validateOnly, only checks that they could) and returns
// one error per spec, nil for each created. Every limit is checked before anything is written:
// partitions summed over the specs above MaxPartitionsPerRequest refuse them all with
// POLICY_VIOLATION, as Apache Kafka's controller does; a topic that would take the broker past
// MaxPartitions is refused with POLICY_VIOLATION. Internal topics are exempt from both limits. Creations queued while another is being written
// are written together: meta.json is replaced once per batch, not once per topic. A topic that
// fails leaves no directory behind.
func (b *Broker) CreateTopics(specs []TopicSpec, validateOnly bool) []error {
	call := &createCall{specs: make([]TopicSpec, len(specs)), errs: make([]error, len(specs)), validateOnly: validateOnly}
	var total int64
	for i, s := range specs {
		call.specs[i], call.errs[i] = b.checkSpec(s)
		if call.errs[i] == nil && !s.Internal { // the broker's own topics are never refused
			total += int64(call.specs[i].Partitions)
		}
	}
	if total > int64(b.opts.MaxPartitionsPerRequest) {
		err := errcode.New(errcode.PolicyViolation,
			"the request creates %d partitions; the limit is %d a request (THORSTREAM_MAX_PARTITIONS_PER_REQUEST)", total, b.opts.MaxPartitionsPerRequest)
		for i := range call.errs {
			if call.errs[i] == nil {
				call.errs[i] = err
			}
		}
		return call.errs
	}
	if !slices.ContainsFunc(call.errs, func(err error) bool { return err == nil }) {
		return call.errs
	}
	b.commitCreate(call)
	return call.errs
}

// checkSpec validates what can be checked without the metadata and fills in the defaults.
func (b *Broker) checkSpec(spec TopicSpec) (TopicSpec, error) {
	if err := ValidTopicName(spec.Name); err != nil {
		return spec, err
	}
	if strings.HasPrefix(spec.Name, "__") && !spec.Internal {
		return spec, errcode.New(errcode.InvalidTopic, "topic names starting with \"__\" are reserved for internal topics")
	}
	if spec.Partitions == -1 {
		spec.Partitions = b.opts.DefaultPartitions
	}
	if spec.Partitions <= 0 || spec.Partitions > maxTopicPartitions {
		return spec, errcode.New(errcode.InvalidPartitions, "number of partitions must be between 1 and %d, got %d", maxTopicPartitions, spec.Partitions)
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = b.defaultReplicationFactor()
	}
	if b.cs != nil {
		// The controller checks it against the nodes available.
		if spec.ReplicationFactor < 1 {
			return spec, errcode.New(errcode.InvalidReplicationFactor, "replication factor must be at least 1, got %d", spec.ReplicationFactor)
		}
	} else if spec.ReplicationFactor != 1 {
		return spec, errcode.New(errcode.InvalidReplicationFactor, "replication factor %d is larger than the 1 available node", spec.ReplicationFactor)
	}
	if _, err := BuildTopicConfig(spec.Configs, b.opts.Defaults); err != nil {
		return spec, err
	}
	return spec, nil
}

// maxTopicPartitions bounds one topic's partitions. With it, a partition directory's name (topic
// of at most 249 characters, "-", partition number of at most 5 digits) fits in 255 bytes.
const maxTopicPartitions = 100000

// createCall is one CreateTopics call waiting in the creation queue. Specs with an error already
// set are skipped.
type createCall struct {
	specs        []TopicSpec
	errs         []error
	validateOnly bool
	done         chan struct{} // closed when errs are final
	promote      chan struct{} // closed when this call is to lead the next batch
}

// commitCreate queues call and returns once it is done. The first caller leads: it takes
// everything queued, creates it and writes meta.json once, then hands the lead to the oldest
// call that queued meanwhile (so no caller serves others for long).
func (b *Broker) commitCreate(call *createCall) {
	if b.cs != nil {
		// The controller orders and batches creations itself.
		b.createClustered(call)
		return
	}
	call.done, call.promote = make(chan struct{}), make(chan struct{})
	b.createMu.Lock()
	b.createQueue = append(b.createQueue, call)
	if b.createLeading {
		b.createMu.Unlock()
		select {
		case <-call.done:
			return
		case <-call.promote: // still queued: it leads the next batch
		}
		b.createMu.Lock()
	}
	b.createLeading = true
	batch := b.createQueue
	b.createQueue = nil
	b.createMu.Unlock()

	b.createBatch(batch)

	b.createMu.Lock()
	if len(b.createQueue) > 0 {
		close(b.createQueue[0].promote)
	} else {
		b.createLeading = false
	}
	b.createMu.Unlock()
}

// createBatch creates the topics of every call in batch with one metadata write, then completes
// every call.
func (b *Broker) createBatch(batch []*createCall) {
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed {
		for _, c := range batch {
			for i := range c.errs {
				if c.errs[i] == nil {
					c.errs[i] = errcode.New(errcode.UnknownServerError, "broker is shutting down")
				}
			}
		}
		return
	}
	old := b.snapshot.Load()
	hosted := old.partitions()
	type slot struct {
		call *createCall
		i    int
	}
	var created []*Topic
	var slots []slot
	inBatch := map[string]bool{}
	for _, c := range batch {
		for i, spec := range c.specs {
			if c.errs[i] != nil {
				continue
			}
			if _, ok := old.Topics[spec.Name]; ok || inBatch[spec.Name] {
				c.errs[i] = errcode.New(errcode.TopicAlreadyExists, "topic %q already exists", spec.Name)
				continue
			}
			if !spec.Internal && hosted+int(spec.Partitions) > b.opts.MaxPartitions {
				c.errs[i] = errcode.New(errcode.PolicyViolation,
					"topic %q would take this broker to %d partitions; the limit is %d (THORSTREAM_MAX_PARTITIONS): delete topics or raise the limit",
					spec.Name, hosted+int(spec.Partitions), b.opts.MaxPartitions)
				continue
			}
			if c.validateOnly {
				continue
			}
			t, err := b.createTopicFiles(spec)
			if err != nil {
				c.errs[i] = errcode.New(errcode.KafkaStorageError, "creating topic %q: %v", spec.Name, err)
				continue
			}
			hosted += int(spec.Partitions)
			inBatch[spec.Name] = true
			created = append(created, t)
			slots = append(slots, slot{c, i})
		}
	}
	if len(created) == 0 {
		return
	}
	next := old.withAll(created)
	if err := b.writeMeta(b.metaOf(next)); err != nil {
		for k, t := range created {
			b.discardTopic(t)
			slots[k].call.errs[slots[k].i] = errcode.New(errcode.KafkaStorageError, "creating topic %q: %v", t.Name, err)
		}
		return
	}
	b.snapshot.Store(next)
	for _, t := range created {
		b.logger.Info("topic created", zap.String("topic", t.Name), zap.Int("partitions", len(t.Replicas)))
	}
}

// createTopicFiles opens a new topic's partitions. A directory left by a topic of the same name
// that is no longer in the metadata (a deletion whose files could not be moved, or a creation
// interrupted by a crash) is moved aside first, so the new topic starts empty. On failure
// nothing of the topic is left on disk.
func (b *Broker) createTopicFiles(spec TopicSpec) (*Topic, error) {
	for p := int32(0); p < spec.Partitions; p++ {
		dir := b.partitionDir(spec.Name, p)
		if _, err := b.opts.FS.Stat(dir); err == nil {
			b.logger.Warn("moving aside the files of an earlier topic of the same name", zap.String("dir", dir))
			if err := b.moveAside(spec.Name, p); err != nil {
				return nil, err
			}
		}
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
		for p := int32(0); p < spec.Partitions; p++ {
			if rerr := removeAll(b.opts.FS, b.partitionDir(spec.Name, p)); rerr != nil {
				b.logger.Warn("could not remove a directory of a topic that failed to be created",
					zap.String("dir", b.partitionDir(spec.Name, p)), zap.Error(rerr))
			}
		}
		return nil, err
	}
	return t, nil
}

// discardTopic closes a topic that was opened but never published and removes its files.
func (b *Broker) discardTopic(t *Topic) {
	closeReplicas(t.Replicas)
	for p := range t.Replicas {
		dir := b.partitionDir(t.Name, int32(p))
		if err := removeAll(b.opts.FS, dir); err != nil {
			b.logger.Warn("could not remove a directory of a topic that failed to be created", zap.String("dir", dir), zap.Error(err))
		}
	}
}

// EnsureTopic returns the topic, creating it with the defaults when it is missing and
// auto-creation is on.
func (b *Broker) EnsureTopic(name string) (*Topic, error) {
	topics, errs := b.EnsureTopics([]string{name})
	return topics[0], errs[0]
}

// EnsureTopics is EnsureTopic for the topics one request names, created together (one metadata
// write). At most MaxAutoCreateTopics are created a call: the names past it get
// THROTTLING_QUOTA_EXCEEDED, which clients retry, so a client naming many new topics at once
// creates them over several requests (and MaxPartitions still bounds the total).
func (b *Broker) EnsureTopics(names []string) ([]*Topic, []error) {
	topics := make([]*Topic, len(names))
	errs := make([]error, len(names))
	snap := b.snapshot.Load()
	var specs []TopicSpec
	var idx []int
	queued := map[string]bool{}
	for i, name := range names {
		if t := snap.Topics[name]; t != nil {
			topics[i] = t
			continue
		}
		switch {
		case !b.opts.AutoCreateTopics:
			errs[i] = errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
		case queued[name]:
			// named twice: resolved below from the first
		case len(specs) >= b.opts.MaxAutoCreateTopics:
			errs[i] = errcode.New(errcode.ThrottlingQuotaExceeded,
				"the request names more than %d topics that do not exist (THORSTREAM_MAX_AUTO_CREATE_TOPICS); %q is not created by this request",
				b.opts.MaxAutoCreateTopics, name)
		default:
			if err := ValidTopicName(name); err != nil {
				errs[i] = err
				continue
			}
			queued[name] = true
			specs = append(specs, TopicSpec{Name: name, Partitions: -1, ReplicationFactor: -1})
			idx = append(idx, i)
		}
	}
	if len(specs) == 0 {
		return topics, errs
	}
	created := b.CreateTopics(specs, false)
	failed := map[string]error{}
	for k, err := range created {
		if err != nil && errcode.Of(err) != errcode.TopicAlreadyExists {
			errs[idx[k]] = err
			failed[specs[k].Name] = err
		}
	}
	snap = b.snapshot.Load()
	for i, name := range names {
		if topics[i] != nil || errs[i] != nil && !queued[name] {
			continue
		}
		if err := failed[name]; err != nil {
			errs[i] = err
			continue
		}
		if topics[i] = snap.Topics[name]; topics[i] == nil {
			errs[i] = errcode.New(errcode.UnknownTopicOrPartition, "topic %q does not exist", name)
		} else {
			errs[i] = nil
		}
	}
	return topics, errs
}

// DeleteRecords raises a partition's log start offset (offset -1: the high watermark), like
// Kafka's DeleteRecords. Internal topics refuse it with INVALID_TOPIC_EXCEPTION, as Kafka does.
// It blocks until the replica has done it, so it never runs on an event loop.
func (b *Broker) DeleteRecords(topic string, partition int32, offset int64) (int64, error) {
	t := b.snapshot.Load().Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Replicas) {
		return -1, errcode.New(errcode.UnknownTopicOrPartition, "this server does not host this topic-partition")
	}
	if t.Internal {
		return -1, errcode.New(errcode.InvalidTopic, "cannot delete records of internal topic %q", topic)
	}
	rt := b.Route(topic, partition)
	if rt.Replica == nil {
		return -1, errcode.New(rt.Code, "this node does not lead %s-%d", topic, partition)
	}
	return rt.Replica.DeleteRecords(offset)
}

// DeleteTopic removes a topic: it disappears from metadata at once, its replicas finish what
// they accepted, and its directories are moved aside (to names that fit the file-name limit
// whatever the topic's length) and removed in the background. A directory that can be neither
// moved nor removed is reported with KAFKA_STORAGE_ERROR; the topic is gone from the metadata
// all the same, and a topic created later under the name moves the leftovers aside first.
func (b *Broker) DeleteTopic(name string) error {
	if b.cs != nil {
		return b.deleteClustered(name)
	}
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
	var failed []error
	for p := range t.Replicas {
		if err := b.moveAside(name, int32(p)); err != nil {
			failed = append(failed, err)
		}
	}
	_ = b.opts.FS.SyncDir(b.opts.DataDir)
	go b.removeDeletedDirs()
	for _, fn := range b.onDeleted {
		fn(name)
	}
	if len(failed) > 0 {
		b.logger.Error("topic deleted, but some of its files could not be removed", zap.String("topic", name), zap.Error(errors.Join(failed...)))
		return errcode.New(errcode.KafkaStorageError, "topic %q is deleted, but its files could not be removed: %v", name, errors.Join(failed...))
	}
	b.logger.Info("topic deleted", zap.String("topic", name))
	return nil
}

// Close stops every replica after it has appended and synced what it accepted, then releases
// the data directory.
func (b *Broker) Close() error {
	b.adminMu.Lock()
	b.closed = true
	b.adminMu.Unlock()
	b.stopFollowing()
	var errs []error
	for _, t := range b.snapshot.Load().Topics {
		for _, r := range t.Replicas {
			if r == nil {
				continue
			}
			if err := r.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if b.opts.Store != nil {
		if err := b.opts.Store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	b.closeCleaner()
	b.purgeMu.Lock() // a background removal of deleted files finishes first
	b.lock.release()
	b.purgeMu.Unlock()
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
		r, err := b.openReplica(tj.Name, p, cfg, tj.Internal)
		if err != nil {
			closeReplicas(t.Replicas)
			return nil, err
		}
		t.Replicas = append(t.Replicas, r)
	}
	t.Partitions = b.localPartitions(int(tj.Partitions))
	return t, nil
}

// openReplica opens (and recovers) one partition's log and starts its replica goroutine. Topic
// creation, start-up and added partitions all open partitions here.
func (b *Broker) openReplica(topic string, p int32, cfg *TopicConfig, internal bool) (*Replica, error) {
	lim := cfg.LogLimits()
	l, err := partition.Open(partition.Options{
		FS:                 b.opts.FS,
		Dir:                b.partitionDir(topic, p),
		SegmentBytes:       lim.SegmentBytes,
		SegmentAge:         lim.SegmentAge,
		RetentionBytes:     lim.RetentionBytes,
		RetentionAge:       lim.RetentionAge,
		IndexIntervalBytes: b.opts.IndexIntervalBytes,
		Files:              b.files,
		Logger:             b.logger,
		Now:                b.opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening %s-%d: %w", topic, p, err)
	}
	return NewReplica(ReplicaOptions{
		Topic:          topic,
		Partition:      p,
		Log:            l,
		Config:         cfg,
		Fsync:          b.opts.Fsync,
		InboxSize:      b.opts.InboxSize,
		LeaderEpoch:    0,
		RetentionCheck: b.opts.RetentionCheck,
		Internal:       internal,
		Logger:         b.logger,
		Now:            b.opts.Now,

		ProducerIDExpiration: b.opts.ProducerIDExpiration,
		Metrics:              b.opts.Metrics,
		Cleaner:              b.cleaner,
	}), nil
}

func closeReplicas(rs []*Replica) {
	for _, r := range rs {
		if r != nil {
			_ = r.Close()
		}
	}
}

func encodeTopicID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// NewProducerID hands out a producer id never given before, on this cluster, even across
// restarts: ids are reserved in blocks persisted in meta.json. It may write the disk.
func (b *Broker) NewProducerID() (int64, error) {
	if b.cs != nil {
		return b.newProducerIDClustered()
	}
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

// writeMeta replaces the metadata file atomically (writeFileAtomic).
func (b *Broker) writeMeta(m metaJSON) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(b.opts.FS, b.opts.DataDir, metaFile, data)
}

// writeFileAtomic replaces dir/name: write a temporary file, sync it, rename it over the old one
// and sync the directory, so a crash leaves the old file or the new one, never a part.
func writeFileAtomic(fs vfs.FS, dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
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
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// Suffixes of the directories of deleted partitions, removed in the background and at start:
// deleteDirSuffix now, oldDeleteDirSuffix as older versions named them. A live partition's
// directory ends with "-<partition>", so neither can be mistaken for one.
const (
	deleteDirSuffix    = "-delete"
	oldDeleteDirSuffix = ".deleted"
	maxFileName        = 255 // bytes in one file name (ext4, xfs, btrfs)
)

// deleteDirName is the name a deleted partition's directory is moved to, as Apache Kafka names
// it: "<topic>-<partition>.<unique id>-delete", with the topic cut short so that the whole fits
// in one file name whatever the topic's length.
func deleteDirName(topic string, p int32) string {
	var id [16]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	suffix := "-" + strconv.Itoa(int(p)) + "." + hex.EncodeToString(id[:]) + deleteDirSuffix
	return topic[:min(len(topic), maxFileName-len(suffix))] + suffix
}

// moveAside moves a partition's directory out of the way (renamed to a deleteDirName, removed
// in the background). When the rename fails, the files are removed in place; the error says
// why when neither works.
func (b *Broker) moveAside(topic string, p int32) error {
	dir := b.partitionDir(topic, p)
	if _, err := b.opts.FS.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	renameErr := b.opts.FS.Rename(dir, filepath.Join(b.opts.DataDir, deleteDirName(topic, p)))
	if renameErr == nil {
		return nil
	}
	if err := removeAll(b.opts.FS, dir); err != nil {
		return fmt.Errorf("cluster: %s could not be moved aside (%v) nor removed: %w", dir, renameErr, err)
	}
	return nil
}

// removeAll removes dir and everything in it; a missing dir is no error.
func removeAll(fs vfs.FS, dir string) error {
	names, err := fs.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		path := filepath.Join(dir, n)
		if info, err := fs.Stat(path); err == nil && info.IsDir() {
			if err := removeAll(fs, path); err != nil {
				return err
			}
			continue
		}
		if err := fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := fs.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeDeletedDirs removes the directories of deleted partitions.
func (b *Broker) removeDeletedDirs() {
	b.purgeMu.Lock()
	defer b.purgeMu.Unlock()
	names, err := b.opts.FS.ReadDir(b.opts.DataDir)
	if err != nil {
		return
	}
	for _, n := range names {
		if !strings.HasSuffix(n, deleteDirSuffix) && !strings.HasSuffix(n, oldDeleteDirSuffix) {
			continue
		}
		dir := filepath.Join(b.opts.DataDir, n)
		if err := removeAll(b.opts.FS, dir); err != nil {
			b.logger.Warn("could not remove a deleted topic's directory", zap.String("dir", dir), zap.Error(err))
		}
	}
}

func (s *Snapshot) withAll(ts []*Topic) *Snapshot {
	next := &Snapshot{Topics: make(map[string]*Topic, len(s.Topics)+len(ts)), Nodes: s.Nodes, Index: s.Index}
	for k, v := range s.Topics {
		next.Topics[k] = v
	}
	for _, t := range ts {
		next.Topics[t.Name] = t
	}
	next.Names = sortedNames(next.Topics)
	return next
}

// partitions counts the partitions of every topic.
func (s *Snapshot) partitions() int {
	n := 0
	for _, t := range s.Topics {
		n += len(t.Replicas)
	}
	return n
}

func (s *Snapshot) without(name string) *Snapshot {
	next := &Snapshot{Topics: make(map[string]*Topic, len(s.Topics)), Nodes: s.Nodes, Index: s.Index}
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
