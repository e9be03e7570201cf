package meta

import (
	"errors"
	"fmt"
	"slices"

	"github.com/thorstream/thorstream/codec/errcode"
)

// ISR changes. A partition's leader proposes its ISR with AlterPartition, checked the way Kafka's
// controller checks it: the leader and its leader epoch fence a deposed leader
// (FENCED_LEADER_EPOCH), the partition epoch a proposal from a stale view, such as the same
// command applied twice (INVALID_UPDATE_VERSION); the leader must be live at the incarnation it
// names (STALE_BROKER_EPOCH), and every member the ISR gains live at the incarnation the leader
// saw it at (INELIGIBLE_REPLICA), so a fenced node, or one that restarted and may have lost an
// unsynced tail, cannot rejoin on an old view of it.

func (c *change) alterPartition(cmd *AlterPartition) Result {
	t, res, ok := c.topicWithID(cmd.Topic, cmd.ID)
	if !ok {
		return res
	}
	if cmd.Partition < 0 || int(cmd.Partition) >= len(t.Partitions) {
		return refused(errcode.UnknownTopicOrPartition, "meta: topic %q has no partition %d", cmd.Topic, cmd.Partition)
	}
	p := &t.Partitions[cmd.Partition]
	switch {
	case cmd.Leader != p.Leader || cmd.LeaderEpoch != p.LeaderEpoch:
		return refused(errcode.FencedLeaderEpoch, "meta: %s/%d is led by %d in leader epoch %d, not by %d in %d",
			cmd.Topic, cmd.Partition, p.Leader, p.LeaderEpoch, cmd.Leader, cmd.LeaderEpoch)
	case cmd.PartitionEpoch != p.PartitionEpoch:
		return refused(errcode.InvalidUpdateVersion, "meta: %s/%d is at partition epoch %d, not %d",
			cmd.Topic, cmd.Partition, p.PartitionEpoch, cmd.PartitionEpoch)
	}
	if err := checkProposedISR(cmd.ISR, p.Replicas, cmd.Leader); err != nil {
		return refused(errcode.InvalidRequest, "meta: %s/%d: %v", cmd.Topic, cmd.Partition, err)
	}
	for _, m := range cmd.ISR {
		if m.ID == cmd.Leader {
			if err := c.checkLive(m); err != nil {
				return refused(errcode.StaleBrokerEpoch, "meta: %s/%d: leader %v", cmd.Topic, cmd.Partition, err)
			}
		}
	}
	for _, m := range cmd.ISR {
		if slices.Contains(p.ISR, m.ID) {
			continue // kept, not added: a shrink or a kept member needs no check
		}
		if err := c.checkLive(m); err != nil {
			return refused(errcode.IneligibleReplica, "meta: %s/%d: added member %v", cmd.Topic, cmd.Partition, err)
		}
	}
	if sameMembers(cmd.ISR, p.ISR) {
		res := unchanged("meta: nothing changed, the ISR of %s/%d is already %v", cmd.Topic, cmd.Partition, p.ISR)
		res.PartitionEpoch = p.PartitionEpoch
		return res
	}
	q := *p
	q.ISR = make([]int32, 0, len(cmd.ISR))
	for _, r := range p.Replicas {
		if proposes(cmd.ISR, r) {
			q.ISR = append(q.ISR, r)
		}
	}
	q.PartitionEpoch++
	c.putPartition(t, cmd.Partition, q)
	return Result{PartitionEpoch: q.PartitionEpoch}
}

// checkProposedISR says what is wrong with isr as the ISR of a partition of replicas led by
// leader, if anything: it must be non-empty, name replicas only, each once, and hold the leader.
func checkProposedISR(isr []ISRMember, replicas []int32, leader int32) error {
	if len(isr) == 0 {
		return errors.New("the proposed ISR is empty")
	}
	for i, m := range isr {
		if !slices.Contains(replicas, m.ID) {
			return fmt.Errorf("ISR member %d is not a replica of %v", m.ID, replicas)
		}
		if proposes(isr[:i], m.ID) {
			return fmt.Errorf("ISR member %d appears twice", m.ID)
		}
	}
	if !proposes(isr, leader) {
		return fmt.Errorf("the proposed ISR does not hold the leader %d", leader)
	}
	return nil
}

// checkLive says why m is not a registered, unfenced node at incarnation m.Incarnation, if it
// is not.
func (c *change) checkLive(m ISRMember) error {
	n := c.img.Nodes[m.ID]
	switch {
	case n == nil:
		return fmt.Errorf("node %d is not registered", m.ID)
	case n.Fenced:
		return fmt.Errorf("node %d is fenced", m.ID)
	case n.Incarnation != m.Incarnation:
		return fmt.Errorf("node %d is at incarnation %d, not %d", m.ID, n.Incarnation, m.Incarnation)
	}
	return nil
}

// sameMembers reports whether isr, without duplicates, names the nodes of current, in any order.
func sameMembers(isr []ISRMember, current []int32) bool {
	if len(isr) != len(current) {
		return false
	}
	for _, id := range current {
		if !proposes(isr, id) {
			return false
		}
	}
	return true
}

// proposes reports whether isr names node id.
func proposes(isr []ISRMember, id int32) bool {
	return slices.ContainsFunc(isr, func(m ISRMember) bool { return m.ID == id })
}
