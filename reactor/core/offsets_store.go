package core

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
)

// OffsetsStore persists committed offsets in the internal offsets topic, which is appended,
// synced and recovered like any other partition.
type OffsetsStore struct {
	broker *cluster.Broker
}

// storeAppend adapts one Persist call to the replica's Completer.
type storeAppend struct {
	req  cluster.AppendRequest
	done func(error)
}

func (a *storeAppend) AppendDone(_ int, res cluster.AppendResult) { a.done(res.Err) }

// Persist appends records to the offsets topic and calls done once durable.
func (s *OffsetsStore) Persist(records []byte, done func(error)) {
	r := s.broker.Replica(groups.OffsetsTopic, 0)
	if r == nil {
		done(errcode.New(errcode.CoordinatorNotAvailable, "offsets topic is not available"))
		return
	}
	a := &storeAppend{done: done}
	a.req = cluster.AppendRequest{Records: records, Owner: a}
	if err := r.Submit(&a.req); err != nil {
		if errcode.Of(err) == errcode.KafkaStorageError {
			done(err)
			return
		}
		done(errcode.New(errcode.CoordinatorLoadInProgress, "offsets topic is busy: %v", err))
	}
}

// OpenOffsets creates the offsets topic if needed and replays it into a new offsets table.
func OpenOffsets(b *cluster.Broker) (*groups.Offsets, error) {
	err := b.CreateTopic(cluster.TopicSpec{
		Name: groups.OffsetsTopic, Partitions: 1, ReplicationFactor: 1, Internal: true,
	}, false)
	if err != nil && errcode.Of(err) != errcode.TopicAlreadyExists {
		return nil, fmt.Errorf("core: offsets topic: %w", err)
	}
	offsets := groups.NewOffsets(&OffsetsStore{broker: b})
	// A deleted topic's offsets go, whichever protocol deleted it.
	b.OnTopicDeleted(offsets.DeleteTopic)
	r := b.Replica(groups.OffsetsTopic, 0)
	if r == nil {
		return nil, fmt.Errorf("core: offsets topic has no partition 0")
	}
	var buf []byte
	for next := r.LogStartOffset(); next < r.HighWatermark(); {
		buf, err = r.Read(buf[:0], next, 1<<20, true)
		if err != nil {
			return nil, fmt.Errorf("core: reading offsets topic at %d: %w", next, err)
		}
		if len(buf) == 0 {
			break
		}
		// Batch by batch, so that one undecodable batch costs only its own commits: the broker
		// must start whatever the offsets log holds.
		_ = batch.Split(buf, func(one []byte) error {
			if err := offsets.Load(one); err != nil {
				b.Logger().Warn("skipped an undecodable batch of the offsets topic",
					zap.Int64("offset", batch.BaseOffset(one)), zap.Error(err))
			}
			return nil
		})
		last, err := lastNextOffset(buf)
		if err != nil {
			return nil, err
		}
		next = last
	}
	return offsets, nil
}
