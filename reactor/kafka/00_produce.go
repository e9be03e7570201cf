package kafka

// Produce (key 0), advertised 0-12, served 3-12.
//
// v0-v2 carry message sets of format v0/v1, which Thorstream does not store: every partition of
// such a request is answered UNSUPPORTED_VERSION (Apache Kafka 4 behaves the same). acks=0 gets no
// response at all, and the connection keeps reading (kafka-go's default) unless a partition
// failed: then the connection is closed, as Kafka does, so the client notices. Record bytes alias the
// pooled frame: each partition's batches are validated, patched in place and appended by the
// partition's replica goroutine, and the response is encoded once the last partition is done.

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

var (
	errOldProduce       = errcode.New(errcode.UnsupportedVersion, "Produce v0-v2 (message format v0 and v1) is not supported: use Produce v3 or later")
	errUnknownPartition = errcode.New(errcode.UnknownTopicOrPartition, "this server does not host this topic-partition")
	errInvalidAcks      = errcode.New(errcode.InvalidRequiredAcks, "acks must be 0, 1 or -1")
	errTransactional    = errcode.New(errcode.InvalidRecord, "transactions are not supported")
)

// produceTxn is one Produce request in flight. It is pooled and its slices are reused.
type produceTxn struct {
	server  *Server
	sess    *core.Session
	seq     uint64
	frame   *core.Frame
	h       header
	req     kmsg.ProduceRequest
	resp    kmsg.ProduceResponse
	appends []cluster.AppendRequest
	results []cluster.AppendResult
	pending atomic.Int32
}

var produceTxnPool = sync.Pool{New: func() any { return new(produceTxn) }}

func (s *Server) produce(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	t := produceTxnPool.Get().(*produceTxn)
	t.server, t.sess, t.seq, t.frame, t.h = s, sess, seq, f, h
	t.req.Version = h.version
	// Topic names alias the frame (unsafe strings): they are used only until the response is
	// encoded, before the frame is released, and cloned where they are kept (topic creation).
	if err := t.req.UnsafeReadFrom(body); err != nil {
		s.logger.Debug("closing connection after a malformed Produce request", zap.Error(err))
		sess.Complete(seq, nil)
		sess.CloseTransport()
		t.free()
		return
	}
	n := 0
	for i := range t.req.Topics {
		n += len(t.req.Topics[i].Partitions)
	}
	if cap(t.appends) < n {
		t.appends = make([]cluster.AppendRequest, n)
		t.results = make([]cluster.AppendResult, n)
	}
	t.appends, t.results = t.appends[:n], t.results[:n]
	if h.version >= 3 && s.needsTopicCreation(&t.req) {
		go func() {
			for i := range t.req.Topics {
				_, _ = s.broker.EnsureTopic(strings.Clone(t.req.Topics[i].Topic))
			}
			t.submit()
		}()
		return
	}
	t.submit()
}

func (s *Server) needsTopicCreation(req *kmsg.ProduceRequest) bool {
	if !s.broker.AutoCreateTopics() {
		return false
	}
	snap := s.broker.Snapshot()
	for i := range req.Topics {
		if snap.Topics[req.Topics[i].Topic] == nil && cluster.ValidTopicName(req.Topics[i].Topic) == nil {
			return true
		}
	}
	return false
}

// submit hands every partition to its replica without blocking; a guard count of one keeps the
// transaction alive until every submission has been attempted.
func (t *produceTxn) submit() {
	t.pending.Store(int32(len(t.appends)) + 1)
	acksValid := t.req.Acks == 0 || t.req.Acks == 1 || t.req.Acks == -1
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			p := &topic.Partitions[j]
			a := &t.appends[slot]
			*a = cluster.AppendRequest{Records: p.Records, Owner: t, Slot: slot}
			slot++
			var err error
			switch {
			case t.h.version < 3:
				err = errOldProduce
			case !acksValid:
				err = errInvalidAcks
			case t.req.TransactionID != nil:
				err = errTransactional
			}
			if err != nil {
				t.AppendDone(a.Slot, cluster.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: err})
				continue
			}
			r := t.server.broker.Replica(topic.Topic, p.Partition)
			if r == nil {
				t.AppendDone(a.Slot, cluster.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: errUnknownPartition})
				continue
			}
			if err := r.Submit(a); err != nil {
				t.AppendDone(a.Slot, cluster.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1, Err: err})
			}
		}
	}
	t.done()
}

// AppendDone records one partition's outcome; the last one finishes the transaction.
func (t *produceTxn) AppendDone(slot int, res cluster.AppendResult) {
	t.results[slot] = res
	t.done()
}

func (t *produceTxn) done() {
	if t.pending.Add(-1) != 0 {
		return
	}
	if t.req.Acks == 0 {
		t.sess.Complete(t.seq, nil)
		// With acks=0 the client reads no answer: like Kafka, close the connection when a
		// partition failed, so the client notices and refreshes its metadata.
		for i := range t.results {
			if t.results[i].Err != nil {
				t.sess.CloseTransport()
				break
			}
		}
	} else {
		t.sess.Complete(t.seq, t.encode())
	}
	t.free()
}

func (t *produceTxn) encode() *core.Response {
	resp := &t.resp
	resp.Topics = resp.Topics[:0]
	resp.ThrottleMillis = 0
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		if cap(resp.Topics) > len(resp.Topics) {
			resp.Topics = resp.Topics[:len(resp.Topics)+1]
		} else {
			resp.Topics = append(resp.Topics, kmsg.ProduceResponseTopic{})
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Topic = topic.Topic
		rt.Partitions = rt.Partitions[:0]
		for j := range topic.Partitions {
			res := &t.results[slot]
			slot++
			rp := kmsg.ProduceResponseTopicPartition{
				Partition:      topic.Partitions[j].Partition,
				BaseOffset:     res.BaseOffset,
				LogAppendTime:  res.LogAppendTime,
				LogStartOffset: res.LogStartOffset,
			}
			if res.Err != nil {
				rp.ErrorCode, rp.ErrorMessage = codeOf(res.Err)
				rp.BaseOffset = -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	return encodeResponse(t.h, resp)
}

func (t *produceTxn) free() {
	t.frame.Release()
	t.frame, t.sess, t.server = nil, nil, nil
	clear(t.appends)
	clear(t.results)
	produceTxnPool.Put(t)
}
