package cluster

import (
	"errors"
	"math"
	"os"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
)

// producerWindow is how many of a producer's latest batches are remembered per partition: a
// client keeps at most five requests in flight, so a retry can only duplicate one of the last five.
const producerWindow = 5

// producerSnapshotFile holds producer state at a clean shutdown, so start-up scans only what was
// appended after it.
const producerSnapshotFile = "producer-state-checkpoint"

// batchMeta is what dedup needs of one appended batch.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch   int16
	batches [producerWindow]batchMeta // ring, newest at (head-1)
	head    int
	count   int
}

func (e *producerEntry) last() *batchMeta {
	return &e.batches[(e.head-1+producerWindow)%producerWindow]
}

func (e *producerEntry) add(m batchMeta) {
	e.batches[e.head] = m
	e.head = (e.head + 1) % producerWindow
	e.count = min(e.count+1, producerWindow)
}

// producerStates is the idempotence state of one partition: for each producer id, its epoch and
// the sequence ranges of its last five batches. Owned by the replica goroutine.
type producerStates map[int64]*producerEntry

// lastSequence is the sequence number of a batch's last record (sequences wrap at MaxInt32).
func lastSequence(h *batch.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func inSequence(lastSeq, nextSeq int32) bool {
	return nextSeq == lastSeq+1 || (lastSeq == math.MaxInt32 && nextSeq == 0)
}

// check applies Kafka's rules to a batch from an idempotent producer (producerId >= 0). It
// returns isDup and the original first offset when the batch repeats one of the producer's last
// five, or an error: INVALID_PRODUCER_EPOCH for a fenced (older) epoch, OUT_OF_ORDER_SEQUENCE_NUMBER
// for a gap.
func (ps producerStates) check(h *batch.Header) (dupOffset int64, isDup bool, err *errcode.Error) {
	e := ps[h.ProducerID]
	firstSeq := h.BaseSequence
	if e != nil {
		if h.ProducerEpoch < e.epoch {
			return 0, false, errcode.New(errcode.InvalidProducerEpoch,
				"producer %d epoch %d is older than the current epoch %d", h.ProducerID, h.ProducerEpoch, e.epoch)
		}
		if h.ProducerEpoch == e.epoch {
			lastSeq := lastSequence(h)
			for i := 0; i < e.count; i++ {
				m := &e.batches[i]
				if m.firstSeq == firstSeq && m.lastSeq == lastSeq {
					return m.firstOffset, true, nil
				}
			}
			if !inSequence(e.last().lastSeq, firstSeq) {
				return 0, false, errcode.New(errcode.OutOfOrderSequenceNumber,
					"producer %d: sequence %d does not follow %d", h.ProducerID, firstSeq, e.last().lastSeq)
			}
			return 0, false, nil
		}
		// A new epoch of a known producer starts its sequences again.
		if firstSeq != 0 {
			return 0, false, errcode.New(errcode.OutOfOrderSequenceNumber,
				"producer %d: the first batch of epoch %d has sequence %d, not 0", h.ProducerID, h.ProducerEpoch, firstSeq)
		}
	}
	// An unknown producer (new, or whose state has aged out) is accepted at any sequence.
	return 0, false, nil
}

// update records an appended batch.
func (ps producerStates) update(h *batch.Header) {
	e := ps[h.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch}
		ps[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		*e = producerEntry{epoch: h.ProducerEpoch}
	}
	e.add(batchMeta{firstSeq: h.BaseSequence, lastSeq: lastSequence(h), firstOffset: h.BaseOffset, lastOffset: h.LastOffset()})
}

// loadProducerStates rebuilds the state from the snapshot taken at the last clean shutdown and
// the batches appended after it (or from the whole log when there is no usable snapshot).
func loadProducerStates(l *partition.Log) (producerStates, error) {
	ps := producerStates{}
	from := l.StartOffset()
	lines, err := l.ReadStateCheckpoint(producerSnapshotFile, 7)
	switch {
	case err == nil && len(lines) > 0 && lines[0][0] == -1:
		// The first line is (-1, snapshotEndOffset, 0...): the snapshot covers offsets below it.
		end := lines[0][1]
		if end >= from && end <= l.EndOffset() {
			for _, ln := range lines[1:] {
				e := ps[ln[0]]
				if e == nil {
					e = &producerEntry{epoch: int16(ln[1])}
					ps[ln[0]] = e
				}
				e.add(batchMeta{firstSeq: int32(ln[2]), lastSeq: int32(ln[3]), firstOffset: ln[4], lastOffset: ln[5]})
			}
			from = end
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		// A damaged snapshot is not fatal: the log itself has everything.
	}
	err = l.ScanHeaders(from, func(h batch.Header) error {
		if h.ProducerID >= 0 && !h.IsControl() {
			ps.update(&h)
		}
		return nil
	})
	return ps, err
}

// snapshot writes the state with the offset it is valid up to.
func (ps producerStates) snapshot(l *partition.Log) error {
	lines := [][]int64{{-1, l.NextOffset(), 0, 0, 0, 0, 0}}
	for pid, e := range ps {
		for i := 0; i < e.count; i++ {
			// Oldest first, so loading with add() keeps the order.
			m := e.batches[(e.head-e.count+i+producerWindow)%producerWindow]
			lines = append(lines, []int64{pid, int64(e.epoch), int64(m.firstSeq), int64(m.lastSeq), m.firstOffset, m.lastOffset, 0})
		}
	}
	return l.WriteStateCheckpoint(producerSnapshotFile, lines)
}
