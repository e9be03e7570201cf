// Package clustertest is a cluster's metadata without a controller, for tests: a
// cluster.MetadataStore whose images are built by hand (nodes, topics, partition leaders and
// epochs), so a test decides which node leads which partition and moves leaderships by
// publishing a new image, and a cluster.Broker opened on it hosts the partitions the image
// assigns to its node and routes the others away, as a node of a real cluster would.
//
// A store made by New applies the CreateTopics its broker proposes once SetController names a
// controller; one made by Fixed names a controller and refuses every proposal. Cluster is a
// ready-made five-node image for the request servers' tests.
//
// It imports cluster, so only external test packages (package cluster_test) of cluster itself
// may use it.
package clustertest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// ErrFixed answers every proposal to a store made by Fixed: its images are the test's.
var ErrFixed = errors.New("clustertest: the images are set by the test")

// Store is a MetadataStore whose images the test sets.
type Store struct {
	mu         sync.Mutex
	img        *meta.Image
	controller int32
	fixed      bool
	proposals  []meta.Command
	changed    chan struct{}
	closed     bool
}

// New returns a store holding img, with no controller (proposals fail with a retriable
// NOT_CONTROLLER until SetController).
func New(img *meta.Image) *Store {
	return &Store{img: img, controller: -1, changed: make(chan struct{}, 1)}
}

// Fixed returns a store holding img, with node controller as the active controller, that
// refuses every proposal with a retriable NOT_CONTROLLER (ErrFixed): nothing is replicated, the
// images change only by Set, Update, Prepare and Publish.
func Fixed(img *meta.Image, controller int32) *Store {
	return &Store{img: img, controller: controller, fixed: true, changed: make(chan struct{}, 1)}
}

// Image is the current image.
func (s *Store) Image() *meta.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img
}

// Changed is signalled after every Set, Update, Publish and applied proposal.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// ControllerID is the controller SetController (or Fixed) named; -1: none.
func (s *Store) ControllerID() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.controller
}

// SetController names the controller (-1: none).
func (s *Store) SetController(id int32) {
	s.mu.Lock()
	s.controller = id
	s.mu.Unlock()
}

// Set publishes img, whose Index must be above the current one's, and signals Changed.
func (s *Store) Set(img *meta.Image) {
	s.mu.Lock()
	s.img = img
	s.mu.Unlock()
	s.signal()
}

// Update publishes the image fn makes of a copy of the current one (its maps and the topics'
// partitions copied), at the next index.
func (s *Store) Update(fn func(img *meta.Image)) {
	s.Prepare(fn)
	s.signal()
}

// Prepare is Update without signalling Changed: the store holds the image (and answers
// proposals from it), the broker does not apply it until the next signal (Publish).
func (s *Store) Prepare(fn func(img *meta.Image)) {
	s.mu.Lock()
	next := Copy(s.img)
	next.Index++
	fn(next)
	sortImage(next)
	s.img = next
	s.mu.Unlock()
}

// Publish signals Changed: the broker applies the store's image.
func (s *Store) Publish() { s.signal() }

func (s *Store) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Proposals are the commands proposed so far, in order.
func (s *Store) Proposals() []meta.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.proposals)
}

// Propose applies CreateTopics (each partition placed on one live node, round robin, which leads
// it) and answers every other command INVALID_REQUEST. Without a controller, or on a store made
// by Fixed, it fails with a retriable NOT_CONTROLLER.
func (s *Store) Propose(ctx context.Context, cmd meta.Command) (meta.Result, uint64, error) {
	if s.fixed {
		s.mu.Lock()
		s.proposals = append(s.proposals, cmd)
		s.mu.Unlock()
		return meta.Result{}, 0, errcode.New(errcode.NotController, "%v", ErrFixed)
	}
	if err := ctx.Err(); err != nil {
		return meta.Result{}, 0, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return meta.Result{}, 0, errcode.New(errcode.NotController, "the store is closed")
	}
	s.proposals = append(s.proposals, cmd)
	if s.controller < 0 {
		s.mu.Unlock()
		return meta.Result{}, 0, errcode.New(errcode.NotController, "no controller is elected")
	}
	next := Copy(s.img)
	next.Index++
	var res meta.Result
	switch {
	case cmd.CreateTopics != nil:
		live := next.LiveNodes()
		for _, nt := range cmd.CreateTopics.Topics {
			if next.Topics[nt.Name] != nil {
				res.Codes = append(res.Codes, int16(errcode.TopicAlreadyExists))
				res.Messages = append(res.Messages, "topic "+nt.Name+" already exists")
				continue
			}
			if len(live) == 0 {
				res.Codes = append(res.Codes, int16(errcode.InvalidReplicationFactor))
				res.Messages = append(res.Messages, "no live node")
				continue
			}
			t := &meta.Topic{Name: nt.Name, ID: nt.ID, Internal: nt.Internal, ReplicationFactor: 1, Configs: nt.Configs}
			for p := range nt.Partitions {
				n := live[int(p)%len(live)].ID
				t.Partitions = append(t.Partitions, Led(n))
			}
			next.Topics[nt.Name] = t
			res.Codes = append(res.Codes, 0)
			res.Messages = append(res.Messages, "")
		}
	default:
		res.Code, res.Message = int16(errcode.InvalidRequest), "the fake store only creates topics"
	}
	sortImage(next)
	s.img = next
	s.mu.Unlock()
	s.signal()
	return res, next.Index, nil
}

// Close marks the store closed: later proposals fail with a retriable NOT_CONTROLLER.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Image builds an image at index with nodes and topics (NodeIDs and Names sorted). A topic with
// partitions and no replication factor gets its first partition's replica count.
func Image(index uint64, nodes []meta.Node, topics ...*meta.Topic) *meta.Image {
	img := meta.Empty()
	img.Index, img.ClusterID = index, "fake-cluster"
	for i := range nodes {
		n := nodes[i]
		img.Nodes[n.ID] = &n
	}
	for _, t := range topics {
		if t.ReplicationFactor == 0 && len(t.Partitions) > 0 {
			t.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
		}
		img.Topics[t.Name] = t
	}
	sortImage(img)
	return img
}

// Node is node id with a binary and a Kafka endpoint on host "node<id>".
func Node(id int32) meta.Node {
	host := "node" + string(rune('0'+id%10))
	return meta.Node{ID: id, Incarnation: 1, Binary: meta.Endpoint{Host: host, Port: 9000 + id}, Kafka: meta.Endpoint{Host: host, Port: 9100 + id}}
}

// Led is a partition whose one replica, node, leads it at leader epoch 0.
func Led(node int32) meta.Partition {
	return meta.Partition{Replicas: []int32{node}, ISR: []int32{node}, Leader: node}
}

// Topic is a topic whose partition p is parts[p].
func Topic(name string, id byte, internal bool, parts ...meta.Partition) *meta.Topic {
	t := &meta.Topic{Name: name, Internal: internal, ReplicationFactor: 1, Partitions: parts}
	t.ID[0] = id
	return t
}

// Copy copies img: its maps, its nodes and its topics with their partitions (a test changes the
// copy's without touching the published image).
func Copy(img *meta.Image) *meta.Image {
	next := *img
	next.Nodes = make(map[int32]*meta.Node, len(img.Nodes))
	for id, n := range img.Nodes {
		c := *n
		next.Nodes[id] = &c
	}
	next.Topics = make(map[string]*meta.Topic, len(img.Topics))
	for name, t := range img.Topics {
		c := *t
		c.Configs = maps.Clone(t.Configs)
		c.Partitions = slices.Clone(t.Partitions)
		next.Topics[name] = &c
	}
	return &next
}

func sortImage(img *meta.Image) {
	img.NodeIDs = slices.Sorted(maps.Keys(img.Nodes))
	img.Names = slices.Sorted(maps.Keys(img.Topics))
}

// Open opens a Broker for node self on an in-memory data directory, following store, and waits
// until it acts on the store's image. The Broker is closed when the test ends.
func Open(t testing.TB, self int32, store *Store) *cluster.Broker {
	t.Helper()
	b, err := cluster.Open(cluster.Options{
		NodeID:          self,
		DataDir:         "/data",
		FS:              vfs.NewMem(),
		CleanerDisabled: true,
		OpenStore:       func() (cluster.MetadataStore, error) { return store, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	WaitApplied(t, b, store.Image().Index)
	return b
}

// WaitApplied waits until b's snapshot reflects the image at index.
func WaitApplied(t testing.TB, b *cluster.Broker, index uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); b.Snapshot().Index < index; {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not apply the image at index %d (it is at %d)", index, b.Snapshot().Index)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}

// Self is the node a Broker opened on Cluster runs as.
const Self int32 = 1

// Controller is Cluster's active controller.
const Controller int32 = 2

// Routed is Cluster's topic with partitions on every node; Elsewhere has one partition, which
// node 2 hosts.
const (
	Routed    = "routed"
	Elsewhere = "elsewhere"
)

// Cluster is a five-node image: nodes 0, 1 (Self) and 2 live with both listeners, node 3 fenced,
// node 4 live with a binary listener only; Elsewhere; and Routed, whose partitions are
//
//	0: led here (Self), epoch 4
//	1: led by node 2, epoch 7, replicas 2 and 0, in sync 2
//	2: no leader (its one replica, node 3, is fenced), epoch 3
//	3: led by node 0, epoch 2
//
// Serve it from Fixed(Cluster(), Controller).
func Cluster() *meta.Image {
	nodes := []meta.Node{
		{ID: 0, Incarnation: 1, Binary: meta.Endpoint{Host: "n0.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n0.kafka", Port: 9092}},
		{ID: 1, Incarnation: 2, Binary: meta.Endpoint{Host: "n1.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n1.kafka", Port: 9092}},
		{ID: 2, Incarnation: 3, Binary: meta.Endpoint{Host: "n2.bin", Port: 9001}, Kafka: meta.Endpoint{Host: "n2.kafka", Port: 9093}},
		{ID: 3, Incarnation: 4, Binary: meta.Endpoint{Host: "n3.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n3.kafka", Port: 9092}, Fenced: true},
		{ID: 4, Incarnation: 5, Binary: meta.Endpoint{Host: "n4.bin", Port: 9000}},
	}
	routed := &meta.Topic{Name: Routed, ID: [16]byte{7, 7}, ReplicationFactor: 1, Partitions: []meta.Partition{
		{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 4},
		{Replicas: []int32{2, 0}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 7, PartitionEpoch: 9},
		{Replicas: []int32{3}, ISR: []int32{3}, Leader: meta.NoLeader, LeaderEpoch: 3, PartitionEpoch: 5},
		{Replicas: []int32{0}, ISR: []int32{0}, Leader: 0, LeaderEpoch: 2, PartitionEpoch: 2},
	}}
	elsewhere := &meta.Topic{Name: Elsewhere, ID: [16]byte{8, 8}, ReplicationFactor: 1, Partitions: []meta.Partition{
		{Replicas: []int32{2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1},
	}}
	return Image(10, nodes, routed, elsewhere)
}
