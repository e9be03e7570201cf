package kafka

// Produce (key 0), advertised 0-12, served 3-12.
//
// v0-v2 carry message sets of format v0/v1, which Thorstream does not store: every partition of
// such a request is answered UNSUPPORTED_VERSION (Apache Kafka 4 behaves the same). acks=0 gets no
// response at all, and the connection keeps reading (kafka-go's default) unless a partition
// failed: then the connection is closed, as Kafka does, so the client notices. Record bytes alias the
// pooled frame: each partition's batches are validated, patched in place and appended by the
// partition's replica goroutine, and the response is encoded once the last partition is done. A
// partition another node leads is answered NOT_LEADER_OR_FOLLOWER, from v10 with the KIP-951 hint
// (the partition's CurrentLeader and the leader's endpoint in NodeEndpoints).

import (
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

var (
	errOldProduce    = errcode.New(errcode.UnsupportedVersion, "Produce v0-v2 (message format v0 and v1) is not supported: use Produce v3 or later")
	errInvalidAcks   = errcode.New(errcode.InvalidRequiredAcks, "acks must be 0, 1 or -1")
	errTransactional = errcode.New(errcode.InvalidRecord, "transactions are not supported")
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
	appends core.Appends
	// createErrs holds, by topic, why auto-creation failed; nil when nothing was created.
	createErrs []error
	// api and start are the request's metrics and arrival (zero without metrics).
	api   *core.APICounters
	start time.Time
}

var produceTxnPool = sync.Pool{New: func() any { return new(produceTxn) }}

func (s *Server) produce(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	t := produceTxnPool.Get().(*produceTxn)
	if !t.appends.HasFinish() {
		t.appends.SetFinish(t.finish) // bound once per pooled transaction
	}
	t.server, t.sess, t.seq, t.frame, t.h = s, sess, seq, f, h
	t.api, t.start = s.Metrics.API(h.key, h.version), s.Metrics.Start()
	t.req.Version = h.version
	// Topic names alias the frame (unsafe strings): they are used only until the response is
	// encoded, before the frame is released, and cloned where they are kept (topic creation).
	if err := t.req.UnsafeReadFrom(body); err != nil {
		s.Logger.Debug("closing connection after a malformed Produce request", zap.Error(err))
		t.api.Error()
		sess.Complete(seq, nil)
		sess.CloseTransport()
		t.free()
		return
	}
	n := 0
	for i := range t.req.Topics {
		n += len(t.req.Topics[i].Partitions)
	}
	t.appends.Reset(n)
	t.appends.Acks, t.appends.TimeoutMs = t.req.Acks, t.req.TimeoutMillis
	if h.version >= 3 && s.needsTopicCreation(&t.req) {
		go func() {
			names := make([]string, len(t.req.Topics))
			for i := range t.req.Topics {
				names[i] = strings.Clone(t.req.Topics[i].Topic)
			}
			// All created together; a topic that could not be (a limit, a storage error) fails
			// its partitions with that error.
			_, t.createErrs = s.Broker.EnsureTopics(names)
			t.submit()
		}()
		return
	}
	t.submit()
}

// needsTopicCreation reports whether the request names a topic that auto-creation would create.
func (s *Server) needsTopicCreation(req *kmsg.ProduceRequest) bool {
	for i := range req.Topics {
		if s.WouldCreateTopic(req.Topics[i].Topic) {
			return true
		}
	}
	return false
}

// submit hands every partition to its replica without blocking.
func (t *produceTxn) submit() {
	var refuse error
	switch {
	case t.h.version < 3:
		refuse = errOldProduce
	case t.req.Acks != 0 && t.req.Acks != 1 && t.req.Acks != -1:
		refuse = errInvalidAcks
	case t.req.TransactionID != nil:
		refuse = errTransactional
	}
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			p := &topic.Partitions[j]
			if refuse != nil {
				t.appends.Fail(slot, refuse)
			} else if err := t.createErr(i); err != nil {
				t.appends.Fail(slot, err)
			} else {
				t.appends.Submit(slot, t.server.Broker.Route(topic.Topic, p.Partition), p.Records)
			}
			slot++
		}
	}
	t.appends.End()
}

// finish runs when every partition has answered.
func (t *produceTxn) finish() {
	core.CountProduce(t.api, t.appends.Results)
	t.server.Metrics.ObserveProduce(t.start)
	if t.req.Acks == 0 {
		t.sess.Complete(t.seq, nil)
		// With acks=0 the client reads no answer: like Kafka, close the connection when a
		// partition failed, so the client notices and refreshes its metadata.
		for i := range t.appends.Results {
			if t.appends.Results[i].Err != nil {
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
	resp.Brokers = resp.Brokers[:0]
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
			res := &t.appends.Results[slot]
			slot++
			rp := kmsg.ProduceResponseTopicPartition{
				Partition:      topic.Partitions[j].Partition,
				BaseOffset:     res.BaseOffset,
				LogAppendTime:  res.LogAppendTime,
				LogStartOffset: res.LogStartOffset,
				CurrentLeader:  kmsg.ProduceResponseTopicPartitionCurrentLeader{LeaderID: -1, LeaderEpoch: -1},
			}
			if res.Err != nil {
				rp.ErrorCode, rp.ErrorMessage = codeOf(res.Err)
				rp.BaseOffset = -1
				if rp.ErrorCode == int16(errcode.NotLeaderOrFollower) && t.h.version >= 10 {
					t.leaderHint(&rp, topic.Topic)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	return encodeResponse(t.h, resp)
}

// leaderHint fills a NOT_LEADER_OR_FOLLOWER partition's KIP-951 hint (Produce v10+): its current
// leader and epoch, and the leader's Kafka endpoint in the response's NodeEndpoints, so the
// client re-sends there without a metadata round trip. The route is looked up again: the hint is
// the latest this node knows.
func (t *produceTxn) leaderHint(rp *kmsg.ProduceResponseTopicPartition, topic string) {
	s := t.server
	rt := s.Broker.Route(topic, rp.Partition)
	if rt.Leader < 0 {
		return
	}
	rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = rt.Leader, rt.LeaderEpoch
	for i := range t.resp.Brokers {
		if t.resp.Brokers[i].NodeID == rt.Leader {
			return
		}
	}
	if host, port, ok := s.NodeAddress(s.Broker.Snapshot(), rt.Leader); ok {
		t.resp.Brokers = append(t.resp.Brokers, kmsg.ProduceResponseBroker{NodeID: rt.Leader, Host: host, Port: port})
	}
}

// createErr is why topic i could not be auto-created, nil when it exists (or was never missing).
func (t *produceTxn) createErr(i int) error { return core.CreateError(t.createErrs, i) }

func (t *produceTxn) free() {
	t.frame.Release()
	t.frame, t.sess, t.server, t.createErrs, t.api = nil, nil, nil, nil, nil
	t.appends.Clear()
	produceTxnPool.Put(t)
}
