// Package groups is the consumer-group coordinator: committed offsets now, membership and
// rebalancing as they arrive. State machines here do no I/O of their own: committed offsets are
// persisted through a Store that the broker backs with its internal offsets topic, which is
// appended, synced and recovered like any other partition.
package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
)

// OffsetsTopic is the internal topic that holds committed offsets.
const OffsetsTopic = "__consumer_offsets"

// MaxMetadataBytes bounds the metadata string a commit may carry (Kafka's
// offset.metadata.max.bytes).
const MaxMetadataBytes = 4096

// Store persists commit records. Persist appends one record batch and calls done once it is
// durable or has failed; done may run on any goroutine and must not block.
type Store interface {
	Persist(records []byte, done func(error))
}

// Committed is a group's committed position in one partition: the next offset to consume.
type Committed struct {
	Offset     int64
	Metadata   string
	CommitTime int64 // milliseconds since the epoch
}

// Commit is one partition's offset in a commit request.
type Commit struct {
	Topic     string
	Partition int32
	Offset    int64
	Metadata  string
}

type offsetKey struct {
	group     string
	topic     string
	partition int32
}

// Offsets holds every group's committed offsets in memory, persisted through a Store.
type Offsets struct {
	store Store

	// mu guards committed. It is never held across Persist.
	mu        sync.RWMutex
	committed map[offsetKey]Committed
}

// NewOffsets returns an empty offsets table persisted through store.
func NewOffsets(store Store) *Offsets {
	return &Offsets{store: store, committed: map[offsetKey]Committed{}}
}

// Commit persists commits for group and then makes them visible. done gets one error per commit
// (nil for success), in order, once the outcome is known.
func (o *Offsets) Commit(group string, commits []Commit, nowMs int64, done func([]error)) {
	errs := make([]error, len(commits))
	if group == "" {
		for i := range errs {
			errs[i] = errcode.New(errcode.InvalidGroupID, "group id is empty")
		}
		done(errs)
		return
	}
	var b batch.Builder
	b.Reset()
	accepted := make([]int, 0, len(commits))
	for i, c := range commits {
		if len(c.Metadata) > MaxMetadataBytes {
			errs[i] = errcode.New(errcode.OffsetMetadataTooLarge, "commit metadata is %d bytes, the limit is %d", len(c.Metadata), MaxMetadataBytes)
			continue
		}
		if c.Offset < 0 {
			errs[i] = errcode.New(errcode.InvalidCommitOffsetSize, "offset %d is negative", c.Offset)
			continue
		}
		b.Append(encodeKey(group, c.Topic, c.Partition), encodeValue(c.Offset, c.Metadata, nowMs), nowMs, nil)
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		done(errs)
		return
	}
	// The batch owns its bytes from here until done: Finish's buffer belongs to b, which is local.
	o.store.Persist(b.Finish(), func(err error) {
		if err != nil {
			for _, i := range accepted {
				errs[i] = err
			}
			done(errs)
			return
		}
		o.mu.Lock()
		for _, i := range accepted {
			c := commits[i]
			o.committed[offsetKey{group, c.Topic, c.Partition}] = Committed{Offset: c.Offset, Metadata: c.Metadata, CommitTime: nowMs}
		}
		o.mu.Unlock()
		done(errs)
	})
}

// Fetch returns the committed offset of group in a partition.
func (o *Offsets) Fetch(group, topic string, partition int32) (Committed, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	c, ok := o.committed[offsetKey{group, topic, partition}]
	return c, ok
}

// TopicPartitionOffset is one entry of FetchAll.
type TopicPartitionOffset struct {
	Topic     string
	Partition int32
	Committed
}

// FetchAll returns every offset group has committed.
func (o *Offsets) FetchAll(group string) []TopicPartitionOffset {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []TopicPartitionOffset
	for k, c := range o.committed {
		if k.group == group {
			out = append(out, TopicPartitionOffset{Topic: k.topic, Partition: k.partition, Committed: c})
		}
	}
	return out
}

// DeleteTopic forgets every group's offsets for a deleted topic (in memory; the records stay in
// the offsets log and are superseded if the topic is created again and committed to).
func (o *Offsets) DeleteTopic(topic string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.committed {
		if k.topic == topic {
			delete(o.committed, k)
		}
	}
}

// ErrBadCommitRecord is returned by Load for a record of the offsets log it cannot decode.
var ErrBadCommitRecord = errors.New("groups: bad commit record")

// Load replays record batches read from the offsets log, oldest first.
func (o *Offsets) Load(batches []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return batch.Split(batches, func(b []byte) error {
		return batch.Records(b, func(r *batch.Record) error {
			group, topic, partition, err := decodeKey(r.Key)
			if err != nil {
				return err
			}
			k := offsetKey{group, topic, partition}
			if r.Value == nil {
				delete(o.committed, k)
				return nil
			}
			c, err := decodeValue(r.Value)
			if err != nil {
				return err
			}
			o.committed[k] = c
			return nil
		})
	})
}

// Record layout (all big endian, strings as int16 length + bytes):
//
//	key:   version int16 (1) | group string | topic string | partition int32
//	value: version int16 (1) | offset int64 | metadata string | commitTime int64

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func encodeKey(group, topic string, partition int32) []byte {
	k := make([]byte, 0, 2+2+len(group)+2+len(topic)+4)
	k = binary.BigEndian.AppendUint16(k, 1)
	k = appendString(k, group)
	k = appendString(k, topic)
	return binary.BigEndian.AppendUint32(k, uint32(partition))
}

func encodeValue(offset int64, metadata string, nowMs int64) []byte {
	v := make([]byte, 0, 2+8+2+len(metadata)+8)
	v = binary.BigEndian.AppendUint16(v, 1)
	v = binary.BigEndian.AppendUint64(v, uint64(offset))
	v = appendString(v, metadata)
	return binary.BigEndian.AppendUint64(v, uint64(nowMs))
}

type recordReader struct {
	p   []byte
	bad bool
}

func (r *recordReader) u16() uint16 {
	if len(r.p) < 2 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint16(r.p)
	r.p = r.p[2:]
	return v
}

func (r *recordReader) u32() uint32 {
	if len(r.p) < 4 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.p)
	r.p = r.p[4:]
	return v
}

func (r *recordReader) u64() uint64 {
	if len(r.p) < 8 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.p)
	r.p = r.p[8:]
	return v
}

func (r *recordReader) str() string {
	n := int(r.u16())
	if r.bad || len(r.p) < n {
		r.bad = true
		return ""
	}
	s := string(r.p[:n])
	r.p = r.p[n:]
	return s
}

func decodeKey(k []byte) (group, topic string, partition int32, err error) {
	r := recordReader{p: k}
	if v := r.u16(); v != 1 {
		return "", "", 0, fmt.Errorf("%w: key version %d", ErrBadCommitRecord, v)
	}
	group, topic, partition = r.str(), r.str(), int32(r.u32())
	if r.bad || len(r.p) != 0 {
		return "", "", 0, fmt.Errorf("%w: key", ErrBadCommitRecord)
	}
	return group, topic, partition, nil
}

func decodeValue(v []byte) (Committed, error) {
	r := recordReader{p: v}
	if ver := r.u16(); ver != 1 {
		return Committed{}, fmt.Errorf("%w: value version %d", ErrBadCommitRecord, ver)
	}
	c := Committed{Offset: int64(r.u64()), Metadata: r.str(), CommitTime: int64(r.u64())}
	if r.bad || len(r.p) != 0 {
		return Committed{}, fmt.Errorf("%w: value", ErrBadCommitRecord)
	}
	return c, nil
}
