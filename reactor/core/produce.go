package core

import (
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// produceTxn is one Produce request in flight: the decoded request (whose record bytes alias
// the frame), one AppendRequest per partition, and their results. It is pooled, and every slice
// in it is reused, so a produce in steady state allocates nothing.
//
// Lifetime: created on the loop; each partition's replica calls AppendDone from its goroutine;
// the last AppendDone encodes the response, hands it to the session, releases the frame and
// returns the transaction to the pool.
type produceTxn struct {
	server  *Server
	sess    *Session
	seq     uint64
	frame   *Frame
	corrID  int32
	req     proto.ProduceRequest
	appends Appends
	// createErrs holds, by topic, why auto-creation failed; nil when nothing was created.
	createErrs []error
	// api and start are the request's metrics and arrival (zero without metrics).
	api   *APICounters
	start time.Time
}

var produceTxnPool = sync.Pool{New: func() any { return new(produceTxn) }}

var errInvalidAcks = errcode.New(errcode.InvalidRequiredAcks, "acks must be 0, 1 or -1")

func (s *Server) produce(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte, f *Frame) {
	t := produceTxnPool.Get().(*produceTxn)
	if !t.appends.HasFinish() {
		t.appends.SetFinish(t.finish) // bound once per pooled transaction
	}
	t.server, t.sess, t.seq, t.frame, t.corrID = s, sess, seq, f, hdr.CorrelationID
	t.api, t.start = s.Metrics.API(hdr.APIKey, hdr.APIVersion), s.Metrics.Start()
	if err := t.req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		t.free()
		return
	}
	n := 0
	for i := range t.req.Topics {
		n += len(t.req.Topics[i].Partitions)
	}
	t.appends.Reset(n)
	t.appends.Acks, t.appends.TimeoutMs = t.req.Acks, t.req.TimeoutMs
	if s.needsTopicCreation(&t.req) {
		// Creating topics writes files: finish on a goroutine. Submitting stays non-blocking.
		go func() {
			names := make([]string, len(t.req.Topics))
			for i := range t.req.Topics {
				names[i] = string(t.req.Topics[i].Name)
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
func (s *Server) needsTopicCreation(req *proto.ProduceRequest) bool {
	for i := range req.Topics {
		if s.wouldCreateTopicBytes(req.Topics[i].Name) {
			return true
		}
	}
	return false
}

// submit hands every partition to its replica without blocking.
func (t *produceTxn) submit() {
	acksValid := t.req.Acks == proto.AcksNone || t.req.Acks == proto.AcksLeader || t.req.Acks == proto.AcksAll
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			p := &topic.Partitions[j]
			switch err := t.createErr(i); {
			case !acksValid:
				t.appends.Fail(slot, errInvalidAcks)
			case err != nil:
				t.appends.Fail(slot, err)
			default:
				t.appends.Submit(slot, t.server.Broker.RouteBytes(topic.Name, p.Partition), p.Records)
			}
			slot++
		}
	}
	t.appends.End()
}

// finish runs when every partition has answered.
func (t *produceTxn) finish() {
	CountProduce(t.api, t.appends.Results)
	t.server.Metrics.ObserveProduce(t.start)
	if t.req.Acks == proto.AcksNone {
		t.sess.Complete(t.seq, nil)
	} else {
		t.sess.Complete(t.seq, t.encode())
	}
	t.free()
}

// encode writes the Produce response straight from the request's topic names (no string
// conversions) into a pooled buffer.
func (t *produceTxn) encode() *Response {
	r := NewResponse()
	b, start := proto.AppendResponseFrame(r.Head().B, t.corrID, 0, "")
	b = proto.AppendArrayLen(b, len(t.req.Topics))
	slot := 0
	hint := t.server.leaderHint()
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		b = proto.AppendStringBytes(b, topic.Name)
		b = proto.AppendArrayLen(b, len(topic.Partitions))
		for j := range topic.Partitions {
			res := &t.appends.Results[slot]
			slot++
			code, msg := codeAndMessage(res.Err)
			b = proto.AppendInt32(b, topic.Partitions[j].Partition)
			b = proto.AppendInt16(b, code)
			b = proto.AppendNullableString(b, msg, msg != "")
			b = proto.AppendInt64(b, res.BaseOffset)
			b = proto.AppendInt64(b, res.LogAppendTime)
			b = proto.AppendInt64(b, res.LogStartOffset)
			switch code {
			case 0:
				b = proto.AppendInt32(b, hint.ID)
				b = proto.AppendString(b, hint.Addr)
			case int16(errcode.NotLeaderOrFollower):
				// Another node leads it: where the client re-sends, without a metadata round
				// trip. The route is looked up again, so the hint is the latest this node knows.
				h := t.server.routeHint(t.server.Broker.RouteBytes(topic.Name, topic.Partitions[j].Partition))
				b = proto.AppendInt32(b, h.ID)
				b = proto.AppendString(b, h.Addr)
			default:
				b = proto.AppendInt32(b, -1)
				b = proto.AppendString(b, "")
			}
		}
	}
	b = proto.AppendInt32(b, 0) // throttleTimeMs
	proto.FinishFrame(b, start, 0)
	r.Head().B = b
	r.SetSingle()
	return r
}

// createErr is why topic i could not be auto-created, nil when it exists (or was never missing).
func (t *produceTxn) createErr(i int) error { return CreateError(t.createErrs, i) }

// CreateError is, for either protocol's produce, why its topic i could not be auto-created, from
// the errors of the creation step (nil or short: nothing was created): nil when the topic exists
// or was never missing, and nil for a missing or invalid topic too, which the replica lookup
// answers whatever else the request names.
func CreateError(createErrs []error, i int) error {
	if i >= len(createErrs) {
		return nil
	}
	if c := errcode.Of(createErrs[i]); c == errcode.UnknownTopicOrPartition || c == errcode.InvalidTopic {
		return nil
	}
	return createErrs[i]
}

func (t *produceTxn) free() {
	t.frame.Release()
	t.frame, t.sess, t.server, t.createErrs, t.api = nil, nil, nil, nil, nil
	t.appends.Clear()
	produceTxnPool.Put(t)
}
