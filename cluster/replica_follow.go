package cluster

// A follower's side of replication: the leader's batches are appended as they are (offsets,
// leader epochs, producer fields and CRCs unchanged), a diverged tail is truncated to the point
// the leader's epochs name, and a follower behind the leader's log start starts its log again
// there.

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/partition"
)

// ErrNotContiguous reports replicated batches that do not start at the follower's log end.
var ErrNotContiguous = errors.New("cluster: replicated batches do not start at the log end")

// BatchOverlapError reports a fetched batch that starts before the follower's log end: the
// follower's log ends inside one of the leader's batches, so its tail from BatchBase on is not
// the leader's.
type BatchOverlapError struct {
	BatchBase, LogEnd int64
}

func (e *BatchOverlapError) Error() string {
	return fmt.Sprintf("%v: the leader's batch at %d starts before the log end %d", ErrNotContiguous, e.BatchBase, e.LogEnd)
}

// Unwrap makes it an ErrNotContiguous.
func (e *BatchOverlapError) Unwrap() error { return ErrNotContiguous }

// ErrStaleFetch reports an answer fetched from a leader this replica no longer follows (its
// leader or leader epoch changed since the fetch was sent): it is not applied.
var ErrStaleFetch = errors.New("cluster: the answer comes from a leader this replica no longer follows")

// following reports whether this replica follows the partition at leaderEpoch (writer goroutine,
// before it changes the log for a fetched answer).
func (r *Replica) following(leaderEpoch int32) bool {
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return !r.repl.leader && r.repl.role.LeaderEpoch == leaderEpoch
}

// AppendReplicated appends batches fetched from the leader (one or more whole batches back to
// back, starting at the log end), syncs them per the fsync policy and returns the durable log
// end. Every batch's CRC is checked: a follower never stores what the leader did not write. It
// blocks the caller (the fetcher, never an event loop) until the writer has appended.
func (r *Replica) AppendReplicated(records []byte, leaderEpoch int32) (durable int64, err error) {
	err = r.onWriter(func() error { return r.appendReplicated(records, leaderEpoch) })
	return r.durableEnd(), err
}

func (r *Replica) appendReplicated(records []byte, leaderEpoch int32) error {
	if e := r.fenced.Load(); e != nil {
		return e
	}
	if !r.following(leaderEpoch) {
		return ErrStaleFetch
	}
	nowMs := r.now().UnixMilli()
	next := r.log.NextOffset()
	r.iovecs = r.iovecs[:0]
	defer func() {
		clear(r.iovecs)
		r.iovecs = r.iovecs[:0]
	}()
	for rest := records; len(rest) > 0; {
		n, err := batch.Size(rest)
		if err != nil || n > len(rest) {
			// A batch cut off at the end of the fetch's size limit: the next fetch has it.
			break
		}
		b := rest[:n:n]
		rest = rest[n:]
		h, err := batch.ValidateStored(b)
		if err != nil {
			return fmt.Errorf("cluster: replicated batch at %d: %w", next, err)
		}
		if h.BaseOffset < next {
			if len(r.iovecs) == 0 && h.NextOffset() > next {
				return &BatchOverlapError{BatchBase: h.BaseOffset, LogEnd: next}
			}
			return fmt.Errorf("%w: batch at %d, log end %d", ErrNotContiguous, h.BaseOffset, next)
		}
		next = h.NextOffset()
		r.iovecs = append(r.iovecs, b)
	}
	if len(r.iovecs) == 0 {
		return nil
	}
	if err := r.log.AppendReplicated(r.iovecs); err != nil {
		if errors.Is(err, partition.ErrNotContiguous) {
			return err
		}
		return r.fence(err)
	}
	// The producers' state follows what is in the log, so only once the batches are there: a
	// new leader must never answer a retry as a duplicate of a batch it does not have.
	for _, b := range r.iovecs {
		if h, _ := batch.ParseHeader(b); h.ProducerID >= 0 && !h.IsControl() {
			r.producers.restore(&h, lastSequence(&h), min(h.MaxTimestamp, nowMs))
		}
	}
	for _, b := range r.iovecs {
		r.appendedSinceSnapshot += int64(len(b))
	}
	r.noteAppended()
	if r.policy.Mode == FsyncAlways {
		syncStart := r.syncClock()
		if err := r.log.Sync(); err != nil {
			return r.fence(err)
		}
		r.noteSynced(syncStart, true)
		r.maybeSnapshot()
	} else {
		r.dirty = true
	}
	return nil
}

// SetFollowerHighWatermark takes the leader's high watermark (capped at this replica's log end).
func (r *Replica) SetFollowerHighWatermark(hw int64) {
	hw = min(hw, r.log.EndOffset())
	if hw < 0 || hw == r.highWatermark.Load() {
		return
	}
	r.advance(hw)
}

// TruncateDiverged drops this follower's log from offset on: the leader's log diverges there
// (the leader's epochs say so). The cut-off batches are kept aside in the partition directory
// (partition.Log.TruncateTo). An offset inside a batch truncates from that batch's start; one
// below the log start starts the log again at offset. The idempotent producers' state is
// rebuilt from what remains.
func (r *Replica) TruncateDiverged(offset int64, leaderEpoch int32) error {
	return r.onWriter(func() error {
		if e := r.fenced.Load(); e != nil {
			return e
		}
		if !r.following(leaderEpoch) {
			return ErrStaleFetch
		}
		end := r.log.NextOffset()
		if offset >= end {
			return nil
		}
		var err error
		if offset < r.log.StartOffset() {
			// The whole log diverged: keep what it holds (a truncation to its start keeps the
			// cut batches aside) before starting it again at offset.
			if terr := r.log.TruncateTo(r.log.StartOffset()); terr != nil && !errors.Is(terr, partition.ErrNotBoundary) {
				err = terr
			} else {
				err = r.log.ResetTo(offset)
			}
		} else {
			err = r.log.TruncateTo(offset)
			if errors.Is(err, partition.ErrNotBoundary) {
				// Inside a batch: from the batch's start.
				if b, rerr := r.log.Read(nil, offset, 1, end, true); rerr == nil && len(b) >= batch.HeaderSize {
					if h, herr := batch.ParseHeader(b); herr == nil && h.BaseOffset < offset {
						offset = h.BaseOffset
						err = r.log.TruncateTo(offset)
					}
				}
			}
		}
		if err != nil {
			if errors.Is(err, partition.ErrFenced) {
				return r.fence(err)
			}
			return err
		}
		r.logger.Warn("follower log truncated where it diverged from the leader's",
			zap.Int64("truncated_to", offset), zap.Int64("previous_end", end))
		r.rebuildProducers()
		if r.highWatermark.Load() > offset {
			r.highWatermark.Store(offset)
		}
		return nil
	})
}

// ResetLog starts this follower's log again, empty, at offset: the leader's log starts after
// this follower's log end, so nothing of it can be fetched.
func (r *Replica) ResetLog(offset int64, leaderEpoch int32) error {
	return r.onWriter(func() error {
		if e := r.fenced.Load(); e != nil {
			return e
		}
		if !r.following(leaderEpoch) {
			return ErrStaleFetch
		}
		if err := r.log.ResetTo(offset); err != nil {
			if errors.Is(err, partition.ErrFenced) {
				return r.fence(err)
			}
			return err
		}
		r.logger.Warn("follower log started again at the leader's log start: it was too far behind",
			zap.Int64("offset", offset))
		r.rebuildProducers()
		r.highWatermark.Store(offset)
		return nil
	})
}

// rebuildProducers reads the idempotent producers' state back from the log (writer goroutine).
func (r *Replica) rebuildProducers() {
	ps, err := loadProducerStates(r.log, r.producers.limit, time.Duration(r.producers.expirationMs)*time.Millisecond, r.now().UnixMilli())
	if err != nil {
		r.logger.Warn("could not rebuild all producer state after a truncation", zap.Error(err))
	}
	r.producers = ps
}

// ReadForFollower appends to dst batches from offset up to the log end (a follower fetches
// what is not committed yet; consumers read below the high watermark only).
func (r *Replica) ReadForFollower(dst []byte, offset int64, maxBytes int) ([]byte, error) {
	return r.log.Read(dst, offset, maxBytes, r.log.EndOffset(), true)
}

// ResetHighWatermark sets the high watermark of a replica that was just opened in a cluster:
// what its log holds past the log start may not be committed, so the high watermark starts low
// and moves up as the leader (or, leading, the followers) report.
func (r *Replica) ResetHighWatermark(hw int64) {
	r.highWatermark.Store(max(hw, r.log.StartOffset()))
}
