package cluster

import (
	"cmp"
	"slices"
)

// ProducerInfo describes one idempotent producer a partition tracks (Kafka's DescribeProducers).
type ProducerInfo struct {
	ID    int64
	Epoch int16
	// LastSequence is the sequence number of the last record of its last batch.
	LastSequence int32
	// LastTimestamp is the broker time, in ms since the epoch, of its last append (of the batch
	// it was rebuilt from, after a restart).
	LastTimestamp int64
}

// Producers lists the idempotent producers whose state the partition keeps, by producer id.
// The state belongs to the replica goroutine, so it is read there; the call blocks the caller
// (never an event loop) until it has been.
func (r *Replica) Producers() ([]ProducerInfo, error) {
	done := make(chan []ProducerInfo, 1)
	fn := func() { done <- r.producers.list() }
	select {
	case r.control <- fn:
	case <-r.done:
		return nil, ErrReplicaClosed
	}
	return <-done, nil
}

// list copies out every tracked producer, by id. Replica goroutine only.
func (ps *producerStates) list() []ProducerInfo {
	out := make([]ProducerInfo, 0, len(ps.byID))
	for _, e := range ps.byID {
		if e.count == 0 {
			continue
		}
		out = append(out, ProducerInfo{ID: e.id, Epoch: e.epoch, LastSequence: e.last().lastSeq, LastTimestamp: e.lastMs})
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
