package meta

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// Test helpers: a runner that applies commands checking every invariant after each, and a
// script that turns bytes into commands fitting the image they are applied to.

// runner applies commands at consecutive indexes, checking after each that Apply left its input
// alone and that the new image keeps every invariant.
type runner struct {
	t     testing.TB
	img   *Image
	index uint64
	// producerIDsEnd is the end of the last producer-id block handed out.
	producerIDsEnd int64
}

func newRunner(t testing.TB) *runner { return &runner{t: t, img: Empty()} }

func (r *runner) apply(cmd Command) Result {
	r.t.Helper()
	before := r.img.Clone()
	r.index++
	next, res := Apply(r.img, r.index, cmd)
	if !reflect.DeepEqual(before, r.img) {
		r.t.Fatalf("index %d: Apply(%s) changed its input image", r.index, describe(cmd))
	}
	if err := checkInvariants(r.img, next, r.index); err != nil {
		r.t.Fatalf("index %d: after %s: %v", r.index, describe(cmd), err)
	}
	if cmd.AllocProducerIDs != nil && res.Code == 0 {
		if res.ProducerIDStart < r.producerIDsEnd {
			r.t.Fatalf("index %d: producer-id block from %d overlaps the last one, which ended at %d", r.index, res.ProducerIDStart, r.producerIDsEnd)
		}
		r.producerIDsEnd = res.ProducerIDStart + cmd.AllocProducerIDs.Count
		if next.NextProducerID != r.producerIDsEnd {
			r.t.Fatalf("index %d: next producer id %d after a block ending at %d", r.index, next.NextProducerID, r.producerIDsEnd)
		}
	}
	if next.NextProducerID < r.producerIDsEnd {
		r.t.Fatalf("index %d: next producer id %d is below the end %d of a block handed out", r.index, next.NextProducerID, r.producerIDsEnd)
	}
	if ap := cmd.AlterPartition; ap != nil && res.Code == 0 {
		if p := next.Partition(ap.Topic, ap.Partition); p == nil || res.PartitionEpoch != p.PartitionEpoch || p.Leader != ap.Leader || p.LeaderEpoch != ap.LeaderEpoch || len(p.ISR) != len(ap.ISR) {
			r.t.Fatalf("index %d: %s gave %+v, the partition is %+v", r.index, describe(cmd), res, p)
		}
	}
	if cmd.Register != nil && res.Code == 0 && res.Message == "" {
		if err := checkRegistration(r.img, next, cmd.Register.ID); err != nil {
			r.t.Fatalf("index %d: after %s: %v", r.index, describe(cmd), err)
		}
	}
	if cmd.CreateTopics != nil && len(res.Codes) != len(cmd.CreateTopics.Topics) {
		r.t.Fatalf("index %d: %d codes for %d topics", r.index, len(res.Codes), len(cmd.CreateTopics.Topics))
	}
	r.img = next
	return res
}

// checkInvariants checks img, applied at index, on its own and against prev, the image before.
func checkInvariants(prev, img *Image, index uint64) error {
	if img.Index != index {
		return fmt.Errorf("index %d, want %d", img.Index, index)
	}
	if len(img.NodeIDs) != len(img.Nodes) || !slices.IsSorted(img.NodeIDs) {
		return fmt.Errorf("node ids %v do not list the %d nodes in order", img.NodeIDs, len(img.Nodes))
	}
	for i, id := range img.NodeIDs {
		n := img.Nodes[id]
		if n == nil || n.ID != id || (i > 0 && img.NodeIDs[i-1] == id) {
			return fmt.Errorf("node ids %v do not match the nodes", img.NodeIDs)
		}
		if old := prev.Node(id); old != nil && n.Incarnation < old.Incarnation {
			return fmt.Errorf("node %d incarnation went from %d to %d", id, old.Incarnation, n.Incarnation)
		}
	}
	if len(img.Names) != len(img.Topics) || !slices.IsSorted(img.Names) {
		return fmt.Errorf("names %v do not list the %d topics in order", img.Names, len(img.Topics))
	}
	if img.NextProducerID < prev.NextProducerID {
		return fmt.Errorf("next producer id went from %d to %d", prev.NextProducerID, img.NextProducerID)
	}
	if prev.ClusterID != "" && img.ClusterID != prev.ClusterID {
		return fmt.Errorf("cluster id went from %q to %q", prev.ClusterID, img.ClusterID)
	}
	for i, name := range img.Names {
		t := img.Topics[name]
		if t == nil || t.Name != name || (i > 0 && img.Names[i-1] == name) {
			return fmt.Errorf("names %v do not match the topics", img.Names)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %q has no partitions", name)
		}
		if t.Configs != nil && len(t.Configs) == 0 {
			return fmt.Errorf("topic %q has an empty, non-nil config map", name)
		}
		old := prev.Topic(name)
		if old != nil && old.ID != t.ID {
			return fmt.Errorf("topic %q changed its id in one command", name)
		}
		if old != nil && len(t.Partitions) < len(old.Partitions) {
			return fmt.Errorf("topic %q went from %d to %d partitions", name, len(old.Partitions), len(t.Partitions))
		}
		for p := range t.Partitions {
			var before *Partition
			if old != nil && p < len(old.Partitions) {
				before = &old.Partitions[p]
			}
			if err := checkPartitionInvariants(img, before, &t.Partitions[p]); err != nil {
				return fmt.Errorf("topic %q partition %d: %v", name, p, err)
			}
		}
	}
	return nil
}

func checkPartitionInvariants(img *Image, before, p *Partition) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	for _, r := range p.Replicas {
		if img.Node(r) == nil {
			return fmt.Errorf("replica %d is not a registered node", r)
		}
	}
	if p.Leader != NoLeader && (!slices.Contains(p.ISR, p.Leader) || !img.Live(p.Leader)) {
		return fmt.Errorf("leader %d is not a live ISR member (ISR %v)", p.Leader, p.ISR)
	}
	if p.Leader == NoLeader {
		for _, r := range p.ISR {
			if img.Live(r) {
				return fmt.Errorf("no leader, but ISR member %d is live", r)
			}
		}
	}
	if before == nil {
		return nil
	}
	switch {
	case p.LeaderEpoch < before.LeaderEpoch || p.PartitionEpoch < before.PartitionEpoch:
		return fmt.Errorf("epochs went from %d/%d to %d/%d", before.LeaderEpoch, before.PartitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
	case p.Leader != before.Leader && p.LeaderEpoch == before.LeaderEpoch:
		return fmt.Errorf("leader went from %d to %d in leader epoch %d", before.Leader, p.Leader, p.LeaderEpoch)
	case !reflect.DeepEqual(*p, *before) && p.PartitionEpoch == before.PartitionEpoch:
		return fmt.Errorf("changed from %+v to %+v in partition epoch %d", *before, *p, p.PartitionEpoch)
	}
	return nil
}

// checkRegistration checks img, the image after node id registered anew, against prev, the
// image before: the node is live at the new incarnation; it left the ISR of every partition it
// shared with other members, the leadership of those it led going to the first other live ISR
// member in replica order in a new leader epoch; where it was the last member it leads, in a new
// leader epoch; every partition whose ISR did not hold it is untouched.
func checkRegistration(prev, img *Image, id int32) error {
	if n := img.Node(id); n == nil || n.Fenced || n.Incarnation != img.Index {
		return fmt.Errorf("node %d is %+v, want live at incarnation %d", id, n, img.Index)
	}
	for _, name := range img.Names {
		for i, p := range img.Topics[name].Partitions {
			old := prev.Partition(name, int32(i))
			if old == nil {
				return fmt.Errorf("%s/%d appeared", name, i)
			}
			w := *old
			switch {
			case !slices.Contains(old.ISR, id):
			case len(old.ISR) == 1:
				w.Leader, w.LeaderEpoch, w.PartitionEpoch = id, old.LeaderEpoch+1, old.PartitionEpoch+1
			default:
				w.ISR = slices.DeleteFunc(slices.Clone(old.ISR), func(r int32) bool { return r == id })
				if old.Leader == id {
					w.Leader = NoLeader
					for _, r := range old.Replicas {
						if slices.Contains(w.ISR, r) && img.Live(r) {
							w.Leader = r
							break
						}
					}
					w.LeaderEpoch++
				}
				w.PartitionEpoch++
			}
			if !reflect.DeepEqual(p, w) {
				return fmt.Errorf("%s/%d went from %+v to %+v, want %+v", name, i, *old, p, w)
			}
		}
	}
	return nil
}

// describe is a short text of cmd for failure messages.
func describe(cmd Command) string {
	b, err := EncodeCommand(cmd)
	if err != nil {
		return fmt.Sprintf("%+v", cmd)
	}
	return string(b)
}

// script turns bytes into commands. Each command reads a few bytes and is drawn to fit the image
// it will be applied to, so most do something: a fence names a registered node and, mostly, its
// incarnation; a deletion names a topic and, mostly, its id. Past the end of the bytes it reads
// zeros.
type script struct {
	data []byte
	pos  int
}

func (s *script) done() bool { return s.pos >= len(s.data) }

func (s *script) byte() byte {
	if s.pos >= len(s.data) {
		return 0
	}
	b := s.data[s.pos]
	s.pos++
	return b
}

// pick is true one time in n.
func (s *script) pick(n byte) bool { return s.byte()%n == 0 }

// node is a registered node (or, one time in eight or with none registered, any of ids 0-4).
func (s *script) node(img *Image) int32 {
	b := s.byte()
	if len(img.NodeIDs) == 0 || b%8 == 0 {
		return int32(b % 5)
	}
	return img.NodeIDs[int(b)%len(img.NodeIDs)]
}

// incarnation is node id's incarnation, mostly, or a stale one.
func (s *script) incarnation(img *Image, id int32) uint64 {
	var inc uint64
	if n := img.Node(id); n != nil {
		inc = n.Incarnation
	}
	if s.pick(5) {
		inc += uint64(s.byte()%3) - 1
	}
	return inc
}

// topic is an existing topic's name and, mostly, id; or a name that may not exist.
func (s *script) topic(img *Image) (string, [16]byte) {
	b := s.byte()
	if len(img.Names) == 0 || b%8 == 0 {
		return fmt.Sprintf("t%d", b%8), [16]byte{b}
	}
	t := img.Topics[img.Names[int(b)%len(img.Names)]]
	id := t.ID
	if s.pick(6) {
		id[15]++
	}
	return t.Name, id
}

func (s *script) configs() map[string]string {
	switch s.byte() % 3 {
	case 0:
		return nil
	case 1:
		return map[string]string{"retention.ms": fmt.Sprint(s.byte())}
	}
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": fmt.Sprint(1 << (s.byte() % 30))}
}

// alterPartition is an AlterPartition of a partition of img, mostly from its leader's current
// view, proposing a random subset of the replicas with the leader, mostly at their incarnations.
func (s *script) alterPartition(img *Image) Command {
	name, id := s.topic(img)
	cmd := &AlterPartition{Topic: name, ID: id}
	if t := img.Topic(name); t != nil && !s.pick(8) {
		cmd.Partition = int32(int(s.byte()) % len(t.Partitions))
	} else {
		cmd.Partition = int32(s.byte()%4) - 1
	}
	p := img.Partition(name, cmd.Partition)
	if p == nil {
		cmd.Leader = s.node(img)
		cmd.ISR = []ISRMember{{ID: cmd.Leader, Incarnation: s.incarnation(img, cmd.Leader)}}
		return Command{AlterPartition: cmd}
	}
	cmd.Leader, cmd.LeaderEpoch, cmd.PartitionEpoch = p.Leader, p.LeaderEpoch, p.PartitionEpoch
	switch s.byte() % 12 {
	case 0:
		cmd.Leader = s.node(img)
	case 1:
		cmd.LeaderEpoch += int32(s.byte()%3) - 1
	case 2:
		cmd.PartitionEpoch += int32(s.byte()%3) - 1
	}
	keep := s.byte()
	for i, r := range p.Replicas {
		if r == cmd.Leader || keep&(1<<(i%8)) != 0 {
			cmd.ISR = append(cmd.ISR, ISRMember{ID: r, Incarnation: s.incarnation(img, r)})
		}
	}
	switch s.byte() % 16 {
	case 0:
		cmd.ISR = nil
	case 1:
		cmd.ISR = append(cmd.ISR, cmd.ISR...)
	case 2:
		cmd.ISR = append(cmd.ISR, ISRMember{ID: int32(s.byte() % 7)})
	case 3:
		slices.Reverse(cmd.ISR)
	}
	return Command{AlterPartition: cmd}
}

// next is the next command for img.
func (s *script) next(img *Image) Command {
	switch op := s.byte() % 14; op {
	case 0, 1:
		id := int32(s.byte() % 5)
		return Command{Register: &RegisterNode{ID: id, Binary: Endpoint{Host: "10.0.0.1", Port: 9000 + id}, Kafka: Endpoint{Host: "10.0.0.1", Port: int32(s.byte()%2) * (9092 + id)}}}
	case 2, 3:
		id := s.node(img)
		return Command{Fence: &FenceNode{ID: id, Incarnation: s.incarnation(img, id)}}
	case 4:
		id := s.node(img)
		return Command{Unfence: &UnfenceNode{ID: id, Incarnation: s.incarnation(img, id)}}
	case 5, 6:
		var cmd CreateTopics
		for range 1 + s.byte()%3 {
			b := s.byte()
			cmd.Topics = append(cmd.Topics, NewTopic{
				Name:              fmt.Sprintf("t%d", b%8),
				ID:                [16]byte{s.byte(), b},
				Partitions:        int32(s.byte()%7) - 1,
				ReplicationFactor: int16(s.byte()%5) - 1,
				Internal:          s.pick(8),
				Configs:           s.configs(),
			})
		}
		return Command{CreateTopics: &cmd}
	case 7:
		name, id := s.topic(img)
		return Command{DeleteTopic: &DeleteTopic{Name: name, ID: id}}
	case 8:
		name, id := s.topic(img)
		return Command{AlterConfigs: &AlterConfigs{Name: name, ID: id, Configs: s.configs()}}
	case 9:
		name, id := s.topic(img)
		var from int32
		if t := img.Topic(name); t != nil {
			from = int32(len(t.Partitions))
		}
		if s.pick(6) {
			from += int32(s.byte()%3) - 1
		}
		return Command{CreatePartitions: &CreatePartitions{Name: name, ID: id, From: from, Count: from + int32(s.byte()%5) - 1}}
	case 10:
		return Command{AllocProducerIDs: &AllocProducerIDs{Node: s.node(img), Count: int64(s.byte()%6) * 1000}}
	case 11, 12:
		return s.alterPartition(img)
	default:
		switch s.byte() % 4 {
		case 0:
			return Command{} // refused: no field set
		case 1:
			return Command{AllocProducerIDs: &AllocProducerIDs{Count: 1}, DeleteTopic: &DeleteTopic{}} // refused: two
		}
		return Command{Init: &InitCluster{ClusterID: fmt.Sprintf("cluster-%d", s.byte()%3), NextProducerID: int64(s.byte()) * 100}}
	}
}
