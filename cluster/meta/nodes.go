package meta

import (
	"slices"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Node commands: registration, fencing and unfencing, and the leader elections they cause.
// A leader change bumps the partition's leader epoch and its partition epoch. A node that
// registers anew leaves the ISR of the replicated partitions it is not the last in-sync member
// of, handing on those it led (its log may have lost an unsynced tail in a crash); where it stays
// leader, its leader epoch is bumped. Any other change of a partition (its ISR) bumps the
// partition epoch only.

func (c *change) register(cmd *RegisterNode, index uint64) Result {
	if cmd.ID < 0 {
		return refused(errcode.InvalidRequest, "meta: node id %d is negative", cmd.ID)
	}
	if old := c.img.Nodes[cmd.ID]; old != nil && old.Incarnation >= index {
		// The same entry applied again: the node's latest registration is this one or later.
		res := unchanged("meta: nothing changed, node %d registered at incarnation %d", cmd.ID, old.Incarnation)
		res.Incarnation = old.Incarnation
		return res
	}
	if c.img.ClusterID == "" && cmd.ClusterID != "" {
		c.img.ClusterID = cmd.ClusterID
	}
	c.putNode(&Node{ID: cmd.ID, Incarnation: index, Binary: cmd.Binary, Kafka: cmd.Kafka})
	c.leaveISRs(cmd.ID)
	c.takeLeadership(cmd.ID, true)
	return Result{Incarnation: index}
}

// leaveISRs takes a node that registers anew out of the ISR of every replicated partition it is
// not the last in-sync member of, and hands on the leadership of those it led: its log may have
// lost an unsynced tail, or the whole disk, in what ended its last life, so it rejoins once it has
// caught up with the leader (KIP-841, KIP-966). Where it is the last member it stays and leads:
// no other replica is known to hold what was committed.
func (c *change) leaveISRs(id int32) {
	c.eachPartition(func(p *Partition) (Partition, bool) {
		if len(p.Replicas) < 2 || len(p.ISR) < 2 || !slices.Contains(p.ISR, id) {
			return Partition{}, false
		}
		return c.without(p, id, true), true
	})
}

// without is p with node id out of its ISR (when leaveISR) and, if id led it, the next live ISR
// member in replica order as its leader (none: NoLeader), the leader epoch raised; the partition
// epoch raised either way.
func (c *change) without(p *Partition, id int32, leaveISR bool) Partition {
	q := *p
	if leaveISR {
		q.ISR = without(p.ISR, id)
	}
	if p.Leader == id {
		q.Leader = NoLeader
		for _, r := range p.Replicas {
			if r != id && slices.Contains(q.ISR, r) && c.img.Live(r) {
				q.Leader = r
				break
			}
		}
		q.LeaderEpoch++
	}
	q.PartitionEpoch++
	return q
}

func (c *change) fence(cmd *FenceNode) Result {
	old := c.img.Nodes[cmd.ID]
	switch {
	case old == nil:
		return unchanged("meta: nothing changed, node %d is not registered", cmd.ID)
	case old.Incarnation != cmd.Incarnation:
		return unchanged("meta: nothing changed, node %d is at incarnation %d, not %d", cmd.ID, old.Incarnation, cmd.Incarnation)
	case old.Fenced:
		return unchanged("meta: nothing changed, node %d is already fenced", cmd.ID)
	}
	n := *old
	n.Fenced = true
	c.putNode(&n)
	id := cmd.ID
	c.eachPartition(func(p *Partition) (Partition, bool) {
		leaveISR := len(p.ISR) > 1 && slices.Contains(p.ISR, id)
		if p.Leader != id && !leaveISR {
			return Partition{}, false
		}
		return c.without(p, id, leaveISR), true
	})
	return Result{}
}

func (c *change) unfence(cmd *UnfenceNode) Result {
	old := c.img.Nodes[cmd.ID]
	switch {
	case old == nil:
		return unchanged("meta: nothing changed, node %d is not registered", cmd.ID)
	case old.Incarnation != cmd.Incarnation:
		return unchanged("meta: nothing changed, node %d is at incarnation %d, not %d", cmd.ID, old.Incarnation, cmd.Incarnation)
	case !old.Fenced:
		return unchanged("meta: nothing changed, node %d is not fenced", cmd.ID)
	}
	n := *old
	n.Fenced = false
	c.putNode(&n)
	c.takeLeadership(cmd.ID, false)
	return Result{}
}

// takeLeadership makes node id, live, the leader of every partition without one whose ISR holds
// it; reregistered, it also bumps the leader epoch of every partition it leads.
func (c *change) takeLeadership(id int32, reregistered bool) {
	c.eachPartition(func(p *Partition) (Partition, bool) {
		switch {
		case p.Leader == NoLeader && slices.Contains(p.ISR, id):
		case reregistered && p.Leader == id:
		default:
			return Partition{}, false
		}
		q := *p
		q.Leader = id
		q.LeaderEpoch++
		q.PartitionEpoch++
		return q, true
	})
}

// without is a new slice of ids without id.
func without(ids []int32, id int32) []int32 {
	out := make([]int32, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}
