package cluster

import (
	"fmt"
	"strconv"
	"time"

	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/partition"
)

// A Replica is a cleaner.Target: the broker's cleaner compacts it while its topic's
// cleanup.policy includes compact, reading the log like a fetch does and handing each swap of
// cleaned segments to the replica goroutine, the log's only writer.
var _ cleaner.Target = (*Replica)(nil)

// Name is "topic-partition".
func (r *Replica) Name() string { return r.topic + "-" + strconv.Itoa(int(r.partition)) }

// Log is the partition's log.
func (r *Replica) Log() *partition.Log { return r.log }

// CleanOptions are the pass settings from the topic's current config; ok=false when the topic is
// not compacted. Nothing above the high watermark is cleaned.
func (r *Replica) CleanOptions(now time.Time) (partition.CleanOptions, bool) {
	cfg := r.sharedCfg.Load()
	if cfg == nil || !cfg.Compact() || r.fenced.Load() != nil {
		return partition.CleanOptions{}, false
	}
	o := partition.CleanOptions{
		Now:               now,
		MinCleanableRatio: cfg.MinCleanableDirtyRatio,
		MinCompactionLag:  time.Duration(cfg.MinCompactionLagMs) * time.Millisecond,
		DeleteRetention:   time.Duration(cfg.DeleteRetentionMs) * time.Millisecond,
		SegmentBytes:      cfg.SegmentBytes,
		MaxOffset:         max(r.highWatermark.Load(), 1),
		OnWriter:          r.onWriter,
		ProducerBatches:   r.producerLastBatches,
	}
	if lag := cfg.MaxCompactionLagMs; lag > 0 && lag < DefaultMaxCompactionLagMs/int64(time.Millisecond) {
		o.MaxCompactionLag = time.Duration(lag) * time.Millisecond
	}
	return o, true
}

// onWriter runs fn on the replica goroutine and returns its error; a closed replica aborts the
// pass.
func (r *Replica) onWriter(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case r.control <- func() { errc <- fn() }:
	case <-r.done:
		return fmt.Errorf("%w: %w", partition.ErrCleanAborted, ErrReplicaClosed)
	}
	return <-errc
}

// producerLastBatches maps each idempotent producer the partition tracks to the base offset of its
// last batch, which the cleaner keeps (empty if need be) so deduplication survives compaction.
func (r *Replica) producerLastBatches() map[int64]int64 {
	out := map[int64]int64{}
	_ = r.onWriter(func() error {
		for id, e := range r.producers.byID {
			if e.count > 0 {
				out[id] = e.last().firstOffset
			}
		}
		return nil
	})
	return out
}
