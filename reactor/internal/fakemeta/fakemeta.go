// Package fakemeta is a cluster's metadata without a controller, for the request servers' tests:
// a cluster.MetadataStore that serves images built by hand (nodes, topics, partition leaders and
// epochs), so a cluster.Broker opened on it hosts the partitions the image assigns to its node
// and routes the others away, as a node of a real cluster would. It is for tests only.
package fakemeta

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// ErrNoProposals answers every proposal: the images are the test's.
var ErrNoProposals = errors.New("fakemeta: the images are set by the test")

// Store is a MetadataStore whose images the test sets.
type Store struct {
	mu         sync.Mutex
	img        *meta.Image
	controller int32
	changed    chan struct{}
}

// NewStore serves img, with node controller as the active controller.
func NewStore(img *meta.Image, controller int32) *Store {
	return &Store{img: img, controller: controller, changed: make(chan struct{}, 1)}
}

// Image is the latest image set.
func (s *Store) Image() *meta.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img
}

// Changed is signalled after every Set.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// Propose refuses: nothing is replicated here.
func (s *Store) Propose(context.Context, meta.Command) (meta.Result, uint64, error) {
	return meta.Result{}, 0, errcode.New(errcode.NotController, "%v", ErrNoProposals)
}

// ControllerID is the controller given to NewStore.
func (s *Store) ControllerID() int32 { return s.controller }

// Close does nothing.
func (s *Store) Close() error { return nil }

// Set publishes img (its Index must be above the current one's).
func (s *Store) Set(img *meta.Image) {
	s.mu.Lock()
	s.img = img
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Image builds an image at index from nodes and topics (NodeIDs and Names sorted).
func Image(index uint64, nodes []meta.Node, topics ...meta.Topic) *meta.Image {
	img := meta.Empty()
	img.Index = index
	img.ClusterID = "fake-cluster"
	for i := range nodes {
		n := nodes[i]
		img.Nodes[n.ID] = &n
		img.NodeIDs = append(img.NodeIDs, n.ID)
	}
	slices.Sort(img.NodeIDs)
	for i := range topics {
		t := topics[i]
		if t.ReplicationFactor == 0 && len(t.Partitions) > 0 {
			t.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
		}
		img.Topics[t.Name] = &t
		img.Names = append(img.Names, t.Name)
	}
	slices.Sort(img.Names)
	return img
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

// Topic is Cluster's topic with partitions on every node; Elsewhere has one partition, which
// node 2 hosts.
const (
	Topic     = "routed"
	Elsewhere = "elsewhere"
)

// Cluster is a five-node image: nodes 0, 1 (Self) and 2 live with both listeners, node 3 fenced,
// node 4 live with a binary listener only; Elsewhere; and Topic, whose partitions are
//
//	0: led here (Self), epoch 4
//	1: led by node 2, epoch 7, replicas 2 and 0, in sync 2
//	2: no leader (its one replica, node 3, is fenced), epoch 3
//	3: led by node 0, epoch 2
func Cluster() *meta.Image {
	nodes := []meta.Node{
		{ID: 0, Incarnation: 1, Binary: meta.Endpoint{Host: "n0.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n0.kafka", Port: 9092}},
		{ID: 1, Incarnation: 2, Binary: meta.Endpoint{Host: "n1.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n1.kafka", Port: 9092}},
		{ID: 2, Incarnation: 3, Binary: meta.Endpoint{Host: "n2.bin", Port: 9001}, Kafka: meta.Endpoint{Host: "n2.kafka", Port: 9093}},
		{ID: 3, Incarnation: 4, Binary: meta.Endpoint{Host: "n3.bin", Port: 9000}, Kafka: meta.Endpoint{Host: "n3.kafka", Port: 9092}, Fenced: true},
		{ID: 4, Incarnation: 5, Binary: meta.Endpoint{Host: "n4.bin", Port: 9000}},
	}
	topic := meta.Topic{Name: Topic, ID: [16]byte{7, 7}, ReplicationFactor: 1, Partitions: []meta.Partition{
		{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 4},
		{Replicas: []int32{2, 0}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 7, PartitionEpoch: 9},
		{Replicas: []int32{3}, ISR: []int32{3}, Leader: meta.NoLeader, LeaderEpoch: 3, PartitionEpoch: 5},
		{Replicas: []int32{0}, ISR: []int32{0}, Leader: 0, LeaderEpoch: 2, PartitionEpoch: 2},
	}}
	elsewhere := meta.Topic{Name: Elsewhere, ID: [16]byte{8, 8}, ReplicationFactor: 1, Partitions: []meta.Partition{
		{Replicas: []int32{2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1},
	}}
	return Image(10, nodes, topic, elsewhere)
}
