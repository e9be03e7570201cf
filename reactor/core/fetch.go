package core

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// fetchTxn is one Fetch request: decoded on the loop, served on its own goroutine, which reads
// committed batches with pread into one pooled buffer and, when fewer than minBytes are there,
// waits in the purgatory (cluster.Waiter) until a partition grows or maxWait passes.
type fetchTxn struct {
	server   *Server
	sess     *Session
	seq      uint64
	frame    *Frame
	corrID   int32
	req      proto.FetchRequest
	routes   []cluster.Route    // per partition, in request order: where it is led
	replicas []*cluster.Replica // the routes' replicas; nil where not led here
	api      *APICounters       // the request's metrics (nil without them)
	start    time.Time          // arrival, for metrics (zero without them)
}

func (s *Server) fetch(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte, f *Frame) {
	t := &fetchTxn{server: s, sess: sess, seq: seq, frame: f, corrID: hdr.CorrelationID,
		api: s.Metrics.API(hdr.APIKey, hdr.APIVersion), start: s.Metrics.Start()}
	if err := t.req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		f.Release()
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

	n := 0
	for i := range t.req.Topics {
		n += len(t.req.Topics[i].Partitions)
	}
	t.routes = make([]cluster.Route, 0, n)
	t.replicas = make([]*cluster.Replica, 0, n)
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			rt := s.Broker.RouteBytes(topic.Name, topic.Partitions[j].Partition)
			t.routes = append(t.routes, rt)
			t.replicas = append(t.replicas, rt.Replica)
		}
	}
	results := make([]PartitionRead, n)
	resp := s.ServeFetch(t.sess, t.seq, int(t.req.MaxBytes), t.replicas, t.req.MaxWaitMs, t.req.MinBytes,
		func(resp *Response, limit int) (int, bool) {
			return t.read(resp, results, limit)
		})
	CountFetch(t.api, t.replicas, results, resp.Data().B)
	s.Metrics.ObserveFetch(t.start)
	t.sess.Complete(t.seq, t.encode(resp, results))
}

// read fills results and resp's data buffer from every partition with at most limit record bytes
// (but a first batch whole). It returns the record bytes read and whether any partition has an
// error (which answers the fetch at once, as Kafka does).
func (t *fetchTxn) read(resp *Response, results []PartitionRead, limit int) (total int, errored bool) {
	data := resp.Data()
	remaining := limit
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		for j := range topic.Partitions {
			p := &topic.Partitions[j]
			res := &results[slot]
			r := t.replicas[slot]
			if r == nil {
				// Not led here: NOT_LEADER_OR_FOLLOWER (the leader hint names the leader),
				// LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION, answered at once.
				code := t.routes[slot].Code
				*res = PartitionRead{Code: code, Message: RouteError(code).Message, HighWatermark: -1, LogStart: -1}
				slot++
				errored = true
				continue
			}
			slot++
			partitionLimit := 0
			if remaining > 0 {
				partitionLimit = min(int(p.PartitionMaxBytes), remaining)
			}
			data.B, *res = ReadPartition(r, data.B, p.FetchOffset, partitionLimit, total == 0)
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

// encode builds the response: encoded parts in the head buffer, record bytes in the data buffer,
// interleaved in Bufs for one writev.
func (t *fetchTxn) encode(resp *Response, results []PartitionRead) *Response {
	head := resp.Head()
	data := resp.Data()
	hint := t.server.leaderHint()
	// Offsets into head where each piece ends; the pieces are assembled after encoding because
	// appending may move the buffer.
	type piece struct {
		head       bool
		start, end int
	}
	pieces := make([]piece, 0, 2*len(results)+1)
	b, start := proto.AppendResponseFrame(head.B, t.corrID, 0, "")
	b = proto.AppendFetchResponseStart(b, 0, len(t.req.Topics))
	pieceStart := start
	slot := 0
	for i := range t.req.Topics {
		topic := &t.req.Topics[i]
		b = proto.AppendFetchTopicStart(b, topic.Name, len(topic.Partitions))
		for j := range topic.Partitions {
			res := &results[slot]
			slot++
			pr := proto.FetchPartitionResponse{
				Partition:      topic.Partitions[j].Partition,
				ErrorCode:      int16(res.Code),
				ErrorMessage:   res.Message,
				HighWatermark:  res.HighWatermark,
				LogStartOffset: res.LogStart,
				Leader:         hint,
			}
			switch res.Code {
			case errcode.NotLeaderOrFollower:
				pr.Leader = t.server.routeHint(t.routes[slot-1])
			case errcode.LeaderNotAvailable, errcode.UnknownTopicOrPartition:
				pr.Leader = proto.NoLeader
			}
			n := 0
			if res.HasRecords {
				n = res.DataEnd - res.DataStart
			}
			b = proto.AppendFetchPartitionHead(b, &pr, n)
			if n > 0 {
				pieces = append(pieces, piece{head: true, start: pieceStart, end: len(b)})
				pieces = append(pieces, piece{head: false, start: res.DataStart, end: res.DataEnd})
				pieceStart = len(b)
			}
		}
	}
	if pieceStart < len(b) {
		pieces = append(pieces, piece{head: true, start: pieceStart, end: len(b)})
	}
	head.B = b
	size := 0
	resp.Bufs = resp.Bufs[:0]
	for _, p := range pieces {
		if p.head {
			resp.Bufs = append(resp.Bufs, head.B[p.start:p.end])
		} else {
			resp.Bufs = append(resp.Bufs, data.B[p.start:p.end])
		}
		size += p.end - p.start
	}
	// The size prefix counts everything after itself.
	binary.BigEndian.PutUint32(head.B[start:], uint32(size-proto.SizeLen))
	return resp
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
