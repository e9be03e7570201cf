package meta

import (
	"maps"
	"slices"
)

// Empty is the image before the first command: no cluster id, no nodes, no topics.
func Empty() *Image {
	return &Image{Nodes: map[int32]*Node{}, Topics: map[string]*Topic{}}
}

// Topic is the topic named name; nil: none. The topic is shared with other images: read only.
func (img *Image) Topic(name string) *Topic {
	if img == nil {
		return nil
	}
	return img.Topics[name]
}

// Node is node id; nil: never registered. The node is shared with other images: read only.
func (img *Image) Node(id int32) *Node {
	if img == nil {
		return nil
	}
	return img.Nodes[id]
}

// Live reports whether node id is registered and unfenced.
func (img *Image) Live(id int32) bool {
	n := img.Node(id)
	return n != nil && !n.Fenced
}

// LiveNodes are the registered, unfenced nodes, sorted by id.
func (img *Image) LiveNodes() []*Node {
	if img == nil {
		return nil
	}
	var live []*Node
	for _, id := range img.NodeIDs {
		if n := img.Nodes[id]; n != nil && !n.Fenced {
			live = append(live, n)
		}
	}
	return live
}

// liveIDs are the ids of LiveNodes.
func (img *Image) liveIDs() []int32 {
	var ids []int32
	for _, id := range img.NodeIDs {
		if n := img.Nodes[id]; n != nil && !n.Fenced {
			ids = append(ids, id)
		}
	}
	return ids
}

// Partition is partition p of topic; nil: no such topic or partition. It points into a topic
// shared with other images: read only.
func (img *Image) Partition(topic string, p int32) *Partition {
	t := img.Topic(topic)
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[p]
}

// PartitionCount is the number of partitions of every topic together.
func (img *Image) PartitionCount() int {
	if img == nil {
		return 0
	}
	total := 0
	for _, t := range img.Topics {
		total += len(t.Partitions)
	}
	return total
}

// Clone is a deep copy of the image, sharing nothing with it: for a caller that wants to change
// an image without going through Apply (tests, tools).
func (img *Image) Clone() *Image {
	if img == nil {
		return nil
	}
	c := *img
	if img.Nodes != nil {
		c.Nodes = make(map[int32]*Node, len(img.Nodes))
		for id, n := range img.Nodes {
			if n != nil {
				nc := *n
				n = &nc
			}
			c.Nodes[id] = n
		}
	}
	if img.Topics != nil {
		c.Topics = make(map[string]*Topic, len(img.Topics))
		for name, t := range img.Topics {
			c.Topics[name] = t.Clone()
		}
	}
	c.NodeIDs = slices.Clone(img.NodeIDs)
	c.Names = slices.Clone(img.Names)
	return &c
}

// Clone is a deep copy of the topic.
func (t *Topic) Clone() *Topic {
	if t == nil {
		return nil
	}
	c := *t
	c.Configs = maps.Clone(t.Configs)
	if t.Partitions != nil {
		c.Partitions = make([]Partition, len(t.Partitions))
		for i := range t.Partitions {
			c.Partitions[i] = t.Partitions[i].Clone()
		}
	}
	return &c
}

// Clone is a deep copy of the partition.
func (p Partition) Clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	return p
}
