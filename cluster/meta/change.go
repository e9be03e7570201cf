package meta

import (
	"maps"
	"slices"
)

// change builds the image one command makes, copy on write: it starts as a shallow copy of the
// old image and copies the node map, the topic map and the sorted key slices the first time it
// changes each, so every node and topic the command leaves alone stays shared with the old
// image, and nothing the old image holds is ever written.
type change struct {
	img *Image

	nodesCopied, nodeIDsCopied bool
	topicsCopied, namesCopied  bool
}

func begin(old *Image, index uint64) *change {
	img := *old
	img.Index = index
	return &change{img: &img}
}

// putNode records n (a new value, never one an image holds) as node n.ID.
func (c *change) putNode(n *Node) {
	if !c.nodesCopied {
		c.img.Nodes = cloneMap(c.img.Nodes)
		c.nodesCopied = true
	}
	if _, ok := c.img.Nodes[n.ID]; !ok {
		if !c.nodeIDsCopied {
			c.img.NodeIDs = slices.Clone(c.img.NodeIDs)
			c.nodeIDsCopied = true
		}
		i, _ := slices.BinarySearch(c.img.NodeIDs, n.ID)
		c.img.NodeIDs = slices.Insert(c.img.NodeIDs, i, n.ID)
	}
	c.img.Nodes[n.ID] = n
}

// putTopic records t (a new value, never one an image holds) as topic t.Name.
func (c *change) putTopic(t *Topic) {
	if !c.topicsCopied {
		c.img.Topics = cloneMap(c.img.Topics)
		c.topicsCopied = true
	}
	if _, ok := c.img.Topics[t.Name]; !ok {
		if !c.namesCopied {
			c.img.Names = slices.Clone(c.img.Names)
			c.namesCopied = true
		}
		i, _ := slices.BinarySearch(c.img.Names, t.Name)
		c.img.Names = slices.Insert(c.img.Names, i, t.Name)
	}
	c.img.Topics[t.Name] = t
}

// deleteTopic removes topic name, which exists.
func (c *change) deleteTopic(name string) {
	if !c.topicsCopied {
		c.img.Topics = cloneMap(c.img.Topics)
		c.topicsCopied = true
	}
	delete(c.img.Topics, name)
	if !c.namesCopied {
		c.img.Names = slices.Clone(c.img.Names)
		c.namesCopied = true
	}
	if i, ok := slices.BinarySearch(c.img.Names, name); ok {
		c.img.Names = slices.Delete(c.img.Names, i, i+1)
	}
	if len(c.img.Names) == 0 {
		c.img.Names = nil // the canonical empty form, as Empty and DecodeImage make it
	}
}

// eachPartition calls f with every partition of every topic, in name order then partition
// order. f must not change the partition it is handed (an image holds it); it returns the
// partition's new value and true, or false to leave it. A topic with a changed partition is
// copied once, with a copied partition slice.
func (c *change) eachPartition(f func(p *Partition) (Partition, bool)) {
	for _, name := range c.img.Names {
		old := c.img.Topics[name]
		var parts []Partition
		for i := range old.Partitions {
			q, changed := f(&old.Partitions[i])
			if !changed {
				continue
			}
			if parts == nil {
				parts = slices.Clone(old.Partitions)
			}
			parts[i] = q
		}
		if parts != nil {
			t := *old
			t.Partitions = parts
			c.putTopic(&t)
		}
	}
}

// putPartition records q as partition i of old, a topic the image holds: the topic is copied
// with a copied partition slice. q's slices are new or shared with old's partition, never
// written.
func (c *change) putPartition(old *Topic, i int32, q Partition) {
	t := *old
	t.Partitions = slices.Clone(old.Partitions)
	t.Partitions[i] = q
	c.putTopic(&t)
}

// cloneMap is maps.Clone, with a nil map cloned to an empty one (the change writes to it).
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return make(map[K]V)
	}
	return maps.Clone(m)
}
