package cluster

import (
	"errors"
	"math"
	"os"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
)

// producerWindow is how many of a producer's latest batches are remembered per partition: a
// client keeps at most five requests in flight, so a retry can only duplicate one of the last five.
const producerWindow = 5

// producerSnapshotFile holds producer state (written after a sync every so often and at a clean
// shutdown), so start-up scans only what was appended after it.
const producerSnapshotFile = "producer-state-checkpoint"

// batchMeta is what dedup needs of one appended batch.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// Producer state bounds (see "Per-batch limits" in docs/OPERATIONS.md).
const (
	// DefaultProducerIDExpiration is Kafka's producer.id.expiration.ms default: a producer's
	// state is dropped after a day without a batch from it.
	DefaultProducerIDExpiration = 24 * time.Hour
	// DefaultMaxProducers bounds the producer ids one partition tracks. Kafka sets no bound;
	// without one, clients inventing producer ids grow the broker's memory and its checkpoint
	// without limit.
	DefaultMaxProducers = 10_000
	// producerEvictableAfter is how long a producer must have been idle before a new producer
	// may take its place when the partition is full: longer than clients keep retrying a batch
	// (Kafka's delivery.timeout.ms is two minutes by default), so a retry can no longer arrive
	// and idempotence is not weakened.
	producerEvictableAfter = 5 * time.Minute
)

// ErrTooManyProducers is the retriable error for a batch from a new producer id while the
// partition tracks DefaultMaxProducers (or the configured bound) producers, all recently active.
var ErrTooManyProducers = errcode.New(errcode.RequestTimedOut, "partition tracks too many active producers, retry later")

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	id      int64
	epoch   int16
	batches [producerWindow]batchMeta // ring, newest at (head-1)
	head    int
	count   int
	lastMs  int64          // broker time of the producer's last append
	newer   *producerEntry // recency list, towards the most recently active
	older   *producerEntry
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
// the sequence ranges of its last five batches. It is bounded: producers idle for longer than
// the expiration are dropped (expire, on the replica's periodic check), and at most limit are
// kept; a new producer beyond that takes the place of the least recently active one if that one
// has been idle for producerEvictableAfter, and is refused with ErrTooManyProducers otherwise.
// Owned by the replica goroutine.
type producerStates struct {
	byID         map[int64]*producerEntry
	newest       *producerEntry
	oldest       *producerEntry
	limit        int
	expirationMs int64
}

func newProducerStates(limit int, expiration time.Duration) *producerStates {
	if limit <= 0 {
		limit = DefaultMaxProducers
	}
	if expiration <= 0 {
		expiration = DefaultProducerIDExpiration
	}
	return &producerStates{byID: map[int64]*producerEntry{}, limit: limit, expirationMs: expiration.Milliseconds()}
}

func (ps *producerStates) len() int { return len(ps.byID) }

func (ps *producerStates) unlink(e *producerEntry) {
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		ps.newest = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		ps.oldest = e.newer
	}
	e.newer, e.older = nil, nil
}

func (ps *producerStates) pushNewest(e *producerEntry) {
	e.older, e.newer = ps.newest, nil
	if ps.newest != nil {
		ps.newest.newer = e
	}
	ps.newest = e
	if ps.oldest == nil {
		ps.oldest = e
	}
}

func (ps *producerStates) remove(e *producerEntry) {
	ps.unlink(e)
	delete(ps.byID, e.id)
}

// lastSequence is the sequence number of a batch's last record (sequences wrap at MaxInt32).
func lastSequence(h *batch.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func inSequence(lastSeq, nextSeq int32) bool {
	return nextSeq == lastSeq+1 || (lastSeq == math.MaxInt32 && nextSeq == 0)
}

// check applies Kafka's rules to a batch from an idempotent producer (producerId >= 0, base
// sequence >= 0: validate refuses a negative one). It returns isDup and the original first
// offset when the batch repeats one of the producer's last five, or an error:
// INVALID_PRODUCER_EPOCH for a fenced (older) epoch, OUT_OF_ORDER_SEQUENCE_NUMBER for a gap, and
// ErrTooManyProducers for a new producer the partition has no room for. nowMs is broker time.
func (ps *producerStates) check(h *batch.Header, nowMs int64) (dupOffset int64, isDup bool, err *errcode.Error) {
	e := ps.byID[h.ProducerID]
	firstSeq := h.BaseSequence
	if e == nil {
		// An unknown producer (new, or whose state has expired) is accepted at any sequence, as
		// Kafka does, if there is room for it.
		if len(ps.byID) >= ps.limit && (ps.oldest == nil || nowMs-ps.oldest.lastMs < producerEvictableAfter.Milliseconds()) {
			return 0, false, ErrTooManyProducers
		}
		return 0, false, nil
	}
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
	return 0, false, nil
}

// update records an appended batch at broker time nowMs. A new producer beyond the limit takes
// the place of the least recently active one (check made sure that one is idle).
func (ps *producerStates) update(h *batch.Header, nowMs int64) {
	e := ps.byID[h.ProducerID]
	if e == nil {
		for len(ps.byID) >= ps.limit && ps.oldest != nil {
			ps.remove(ps.oldest)
		}
		e = &producerEntry{id: h.ProducerID, epoch: h.ProducerEpoch}
		ps.byID[h.ProducerID] = e
	} else {
		ps.unlink(e)
	}
	ps.pushNewest(e)
	if h.ProducerEpoch != e.epoch {
		newer, older := e.newer, e.older
		*e = producerEntry{id: h.ProducerID, epoch: h.ProducerEpoch, newer: newer, older: older}
	}
	e.lastMs = max(e.lastMs, nowMs)
	e.add(batchMeta{firstSeq: h.BaseSequence, lastSeq: lastSequence(h), firstOffset: h.BaseOffset, lastOffset: h.LastOffset()})
}

// expire drops the producers idle for the expiration or longer (Kafka's
// producer.id.expiration.ms) and returns how many.
func (ps *producerStates) expire(nowMs int64) int {
	n := 0
	for ps.oldest != nil && nowMs-ps.oldest.lastMs >= ps.expirationMs {
		ps.remove(ps.oldest)
		n++
	}
	return n
}

// loadProducerStates rebuilds the state from the last snapshot and the batches appended after it
// (or from the whole log when there is no usable snapshot), then applies the bounds at nowMs.
// Producers read from the log count as active at their batch's max timestamp (at most nowMs),
// as in Kafka; those of a snapshot at the time it recorded (nowMs for snapshots without one).
func loadProducerStates(l *partition.Log, limit int, expiration time.Duration, nowMs int64) (*producerStates, error) {
	ps := newProducerStates(limit, expiration)
	from := l.StartOffset()
	lines, err := l.ReadStateCheckpoint(producerSnapshotFile, 7)
	switch {
	case err == nil && len(lines) > 0 && lines[0][0] == -1:
		// The first line is (-1, snapshotEndOffset, 0...): the snapshot covers offsets below it.
		end := lines[0][1]
		if end >= from && end <= l.EndOffset() {
			for _, ln := range lines[1:] {
				h := batch.Header{ProducerID: ln[0], ProducerEpoch: int16(ln[1]), BaseSequence: int32(ln[2]),
					BaseOffset: ln[4], LastOffsetDelta: int32(ln[5] - ln[4])}
				at := ln[6]
				if at <= 0 || at > nowMs {
					at = nowMs
				}
				ps.restore(&h, int32(ln[3]), at)
			}
			from = end
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		// A damaged snapshot is not fatal: the log itself has everything.
	}
	err = l.ScanHeaders(from, func(h batch.Header) error {
		if h.ProducerID >= 0 && !h.IsControl() {
			ps.restore(&h, lastSequence(&h), min(h.MaxTimestamp, nowMs))
		}
		return nil
	})
	ps.expire(nowMs)
	return ps, err
}

// restore adds one batch read back from a snapshot or the log, ignoring the room check: the
// oldest producers give way to the newest.
func (ps *producerStates) restore(h *batch.Header, lastSeq int32, atMs int64) {
	ps.update(h, atMs)
	ps.newest.last().lastSeq = lastSeq
}

// snapshot writes the state with the offset it is valid up to: at most five lines per producer,
// so its size follows the bound on producers.
func (ps *producerStates) snapshot(l *partition.Log) error {
	lines := make([][]int64, 0, 1+len(ps.byID))
	lines = append(lines, []int64{-1, l.NextOffset(), 0, 0, 0, 0, 0})
	// Least recently active first, and each producer's batches oldest first, so loading them in
	// order rebuilds the same recency and windows.
	for e := ps.oldest; e != nil; e = e.newer {
		for i := 0; i < e.count; i++ {
			m := e.batches[(e.head-e.count+i+producerWindow)%producerWindow]
			lines = append(lines, []int64{e.id, int64(e.epoch), int64(m.firstSeq), int64(m.lastSeq), m.firstOffset, m.lastOffset, e.lastMs})
		}
	}
	return l.WriteStateCheckpoint(producerSnapshotFile, lines)
}
