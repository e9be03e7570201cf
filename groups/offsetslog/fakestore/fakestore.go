// Package fakestore is a cluster metadata store for tests: the images are built by hand (or
// from the few commands it applies itself), so a test decides which node leads which partition,
// and moves leaderships by publishing a new image. It satisfies cluster.MetadataStore.
package fakestore

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
)

// Store is a MetadataStore whose images the test sets.
type Store struct {
	mu         sync.Mutex
	img        *meta.Image
	controller int32
	proposals  []meta.Command
	changed    chan struct{}
	closed     bool
}

// New returns a store holding img, with no controller (proposals fail with a retriable
// NOT_CONTROLLER until SetController).
func New(img *meta.Image) *Store {
	return &Store{img: img, controller: -1, changed: make(chan struct{}, 1)}
}

// Image is the current image.
func (s *Store) Image() *meta.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img
}

// Changed is signalled after every Set.
func (s *Store) Changed() <-chan struct{} { return s.changed }

// ControllerID is the controller SetController named; -1: none.
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
// it) and answers every other command INVALID_REQUEST. Without a controller it fails with a
// retriable NOT_CONTROLLER.
func (s *Store) Propose(ctx context.Context, cmd meta.Command) (meta.Result, uint64, error) {
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

// Close marks the store closed.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Image builds an image at index with nodes and topics.
func Image(index uint64, nodes []meta.Node, topics ...*meta.Topic) *meta.Image {
	img := meta.Empty()
	img.Index, img.ClusterID = index, "fake-cluster"
	for i := range nodes {
		n := nodes[i]
		img.Nodes[n.ID] = &n
	}
	for _, t := range topics {
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
