package kafka

// Fetch (key 1), versions 4-12.
//
// Every partition in the request is answered. Fetch sessions (KIP-227) are not kept: every
// response carries session id 0, which makes clients fall back to full fetches; a request naming a
// session gets FETCH_SESSION_ID_NOT_FOUND. max_wait_ms / min_bytes long polling waits in the
// purgatory until a high watermark moves. The first batch of a response comes whole even when it
// is larger than max_bytes or the partition's limit (KIP-74). Without transactions the last stable
// offset is the high watermark and the aborted list is empty, so read_committed reads the same
// as read_uncommitted. A partition another node leads is answered NOT_LEADER_OR_FOLLOWER at once,
// with its leader and epoch in v12's tagged CurrentLeader; current_leader_epoch is checked against
// the metadata's epoch (older: FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH).
//
// The response is framed by hand: encoded parts go to one pooled buffer, batches read from the
// log with pread to another, and Bufs interleaves them for one writev, so stored batches are
// copied once (disk to buffer) and never re-encoded.

import (
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

// fetchSessionIDNotFound is Kafka's FETCH_SESSION_ID_NOT_FOUND.
const fetchSessionIDNotFound = 70

type fetchTxn struct {
	server   *Server
	sess     *core.Session
	seq      uint64
	frame    *core.Frame
	h        header
	req      kmsg.FetchRequest
	routes   []cluster.Route    // per partition, in request order: where it is led
	replicas []*cluster.Replica // the routes' replicas (nil: not led here)
	results  []core.PartitionRead
	api      *core.APICounters // the request's metrics (nil without them)
	start    time.Time         // arrival, for metrics (zero without them)
}

func (s *Server) fetch(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	t := &fetchTxn{server: s, sess: sess, seq: seq, frame: f, h: h, api: s.Metrics.API(h.key, h.version), start: s.Metrics.Start()}
	t.req.Version = h.version
	if err := t.req.ReadFrom(body); err != nil {
		s.Logger.Debug("closing connection after a malformed Fetch request", zap.Error(err))
		t.api.Error()
		s.abort(sess, seq, f)
		return
	}
	// The response is sized against the connection's share and the broker-wide budget before
	// each read (ServeFetch), so a client that pipelines fetches, or reads slowly, cannot make the
	// broker hold more.
	go t.run()
}

func (t *fetchTxn) run() {
	defer t.frame.Release()
	s := t.server
	if t.req.SessionID != 0 {
		// Sessions are not kept: the client starts over with full fetches.
		resp := core.NewResponse()
		t.encodeEmpty(resp, fetchSessionIDNotFound)
		t.api.Error()
		s.Metrics.ObserveFetch(t.start)
		t.sess.Complete(t.seq, resp)
		return
	}
	n := 0
	for i := range t.req.Topics {
		n += len(t.req.Topics[i].Partitions)
	}
	t.routes = make([]cluster.Route, 0, n)
	t.replicas = make([]*cluster.Replica, 0, n)
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			rt := s.Broker.Route(topic.Topic, topic.Partitions[j].Partition)
			t.routes = append(t.routes, rt)
			t.replicas = append(t.replicas, rt.Replica)
		}
	}
	t.results = make([]core.PartitionRead, n)
	resp := s.ServeFetch(t.sess, t.seq, int(t.req.MaxBytes), t.replicas, t.req.MaxWaitMillis, t.req.MinBytes, t.read)
	core.CountFetch(t.api, t.replicas, t.results, resp.Data().B)
	s.Metrics.ObserveFetch(t.start)
	t.encode(resp)
	t.sess.Complete(t.seq, resp)
}

// read fills t.results and resp's data buffer from every partition with at most limit record
// bytes (but a first batch whole).
func (t *fetchTxn) read(resp *core.Response, limit int) (total int, errored bool) {
	data := resp.Data()
	remaining := limit
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			p := &topic.Partitions[j]
			res := &t.results[slot]
			rt := &t.routes[slot]
			slot++
			if rt.Replica == nil {
				// Not led here: NOT_LEADER_OR_FOLLOWER (with the leader in CurrentLeader),
				// LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION, answered at once.
				*res = core.PartitionRead{Code: rt.Code, Message: core.RouteError(rt.Code).Message, HighWatermark: -1, LogStart: -1}
				errored = true
				continue
			}
			if e := p.CurrentLeaderEpoch; e >= 0 && e != rt.LeaderEpoch {
				*res = core.PartitionRead{Code: errcode.FencedLeaderEpoch, HighWatermark: -1, LogStart: -1}
				if e > rt.LeaderEpoch {
					res.Code = errcode.UnknownLeaderEpoch
				}
				errored = true
				continue
			}
			partitionLimit := 0
			if remaining > 0 {
				partitionLimit = min(int(p.PartitionMaxBytes), remaining)
			}
			data.B, *res = core.ReadPartition(rt.Replica, data.B, p.FetchOffset, partitionLimit, total == 0)
			if res.Code != errcode.None {
				errored = true
				continue
			}
			n := res.DataEnd - res.DataStart
			total += n
			remaining -= n
		}
	}
	return total, errored
}

// frameWriter builds a response frame out of encoded pieces (in the head buffer) and record bytes
// (in the data buffer).
type frameWriter struct {
	resp   *core.Response
	pieces []piece
	start  int // where the current head piece starts
}

type piece struct {
	head       bool
	start, end int
}

func (w *frameWriter) b() []byte { return w.resp.Head().B }

func (w *frameWriter) set(b []byte) { w.resp.Head().B = b }

// records cuts the head piece written so far and adds data[start:end] after it.
func (w *frameWriter) records(start, end int) {
	b := w.b()
	w.pieces = append(w.pieces, piece{head: true, start: w.start, end: len(b)}, piece{start: start, end: end})
	w.start = len(b)
}

// finish closes the last head piece, writes the size prefix and sets the response's Bufs.
func (w *frameWriter) finish() {
	b := w.b()
	if w.start < len(b) {
		w.pieces = append(w.pieces, piece{head: true, start: w.start, end: len(b)})
	}
	size := 0
	bufs := w.resp.Bufs[:0]
	for _, p := range w.pieces {
		if p.head {
			bufs = append(bufs, b[p.start:p.end])
		} else {
			bufs = append(bufs, w.resp.Data().B[p.start:p.end])
		}
		size += p.end - p.start
	}
	w.resp.Bufs = bufs
	binary.BigEndian.PutUint32(b, uint32(size-4))
}

// Encoding helpers for classic and flexible (KIP-482) forms.

func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n+1))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func appendString(b []byte, s string, flexible bool) []byte {
	if flexible {
		b = binary.AppendUvarint(b, uint64(len(s)+1))
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}

func appendBytesLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n+1)) // n = -1 gives 0: null
	}
	return binary.BigEndian.AppendUint32(b, uint32(int32(n)))
}

// responseStart writes the size placeholder, the correlation id and, for flexible versions, the
// response header's empty tag section.
func (t *fetchTxn) responseStart(b []byte) []byte {
	b = append(b[:0], 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(t.h.correlationID))
	if t.h.flexible {
		b = append(b, 0)
	}
	return b
}

// encodeEmpty writes a response with a top-level error and no topics.
func (t *fetchTxn) encodeEmpty(resp *core.Response, code int16) {
	flexible := t.h.flexible
	b := t.responseStart(resp.Head().B)
	b = binary.BigEndian.AppendUint32(b, 0) // throttle
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = binary.BigEndian.AppendUint32(b, 0) // session id
	b = appendArrayLen(b, 0, flexible)
	if flexible {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	resp.Head().B = b
	resp.SetSingle()
}

// appendPartitionTags writes a v12+ partition's tagged fields: none, or for
// NOT_LEADER_OR_FOLLOWER the partition's CurrentLeader (tag 1: leader id, leader epoch), so the
// client moves to the leader without a metadata round trip.
func (t *fetchTxn) appendPartitionTags(b []byte, slot int, code errcode.Code) []byte {
	if code != errcode.NotLeaderOrFollower || slot >= len(t.routes) || t.routes[slot].Leader < 0 {
		return append(b, 0)
	}
	rt := &t.routes[slot]
	b = append(b, 1, 1, 4+4+1) // one tag: tag 1, 9 bytes
	b = binary.BigEndian.AppendUint32(b, uint32(rt.Leader))
	b = binary.BigEndian.AppendUint32(b, uint32(rt.LeaderEpoch))
	return append(b, 0) // CurrentLeader's own tags
}

// encode writes the whole response.
func (t *fetchTxn) encode(resp *core.Response) {
	v := t.h.version
	flexible := t.h.flexible
	w := frameWriter{resp: resp}
	b := t.responseStart(resp.Head().B)
	b = binary.BigEndian.AppendUint32(b, 0) // throttle_time_ms
	if v >= 7 {
		b = binary.BigEndian.AppendUint16(b, 0) // error code
		b = binary.BigEndian.AppendUint32(b, 0) // session id: no session
	}
	b = appendArrayLen(b, len(t.req.Topics), flexible)
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		b = appendString(b, topic.Topic, flexible)
		b = appendArrayLen(b, len(topic.Partitions), flexible)
		for j := range topic.Partitions {
			res := &t.results[slot]
			slot++
			b = binary.BigEndian.AppendUint32(b, uint32(topic.Partitions[j].Partition))
			b = binary.BigEndian.AppendUint16(b, uint16(int16(res.Code)))
			b = binary.BigEndian.AppendUint64(b, uint64(res.HighWatermark))
			b = binary.BigEndian.AppendUint64(b, uint64(res.HighWatermark)) // last stable offset
			if v >= 5 {
				b = binary.BigEndian.AppendUint64(b, uint64(res.LogStart))
			}
			b = appendArrayLen(b, 0, flexible) // aborted transactions: none
			if v >= 11 {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff) // preferred read replica: -1
			}
			n := 0
			if res.HasRecords {
				n = res.DataEnd - res.DataStart
			}
			b = appendBytesLen(b, n, flexible)
			if n > 0 {
				w.set(b)
				w.records(res.DataStart, res.DataEnd)
				b = w.b()
			}
			if flexible {
				b = t.appendPartitionTags(b, slot-1, res.Code)
			}
		}
		if flexible {
			b = append(b, 0) // topic tags
		}
	}
	if flexible {
		b = append(b, 0) // response tags
	}
	w.set(b)
	w.finish()
}
