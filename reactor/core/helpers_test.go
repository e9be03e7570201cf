package core

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/log/vfs"
)

// waitTimeout bounds every wait: only reached when something is broken.
const waitTimeout = 20 * time.Second

// fakeTransport records every response it is handed (its bytes, copied) and releases it at once,
// as a transport whose write completed would.
type fakeTransport struct {
	frames    chan []byte
	wakes     atomic.Int32
	wakeCh    chan struct{}
	closed    atomic.Bool
	failWrite error
	// onWritev, when set, replaces copying (the allocation test counts only).
	onWritev func(r *Response)
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{frames: make(chan []byte, 1024), wakeCh: make(chan struct{}, 1024)}
}

func (f *fakeTransport) Writev(r *Response) error {
	if f.failWrite != nil {
		return f.failWrite
	}
	if f.onWritev != nil {
		f.onWritev(r)
		r.Written(nil)
		return nil
	}
	var b []byte
	for _, p := range r.Bufs {
		b = append(b, p...)
	}
	f.frames <- b
	r.Written(nil)
	return nil
}

func (f *fakeTransport) Wake() {
	f.wakes.Add(1)
	f.wakeCh <- struct{}{}
}

func (f *fakeTransport) Close() { f.closed.Store(true) }

// next returns the next response frame, size prefix included.
func (f *fakeTransport) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-f.frames:
		return b
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a response")
		return nil
	}
}

// none asserts that no response arrives within d.
func (f *fakeTransport) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case b := <-f.frames:
		t.Fatalf("unexpected response of %d bytes", len(b))
	case <-time.After(d):
	}
}

var testNow = time.UnixMilli(1_700_000_000_000)

// makeBatch returns a fresh batch of n records with timestamps ts, ts+step, …
func makeBatch(n int, ts, step int64) []byte {
	var b batch.Builder
	b.Reset()
	for i := 0; i < n; i++ {
		b.Append([]byte("key"), []byte(strings.Repeat("v", 20)), ts+int64(i)*step, nil)
	}
	return append([]byte(nil), b.Finish()...)
}

// env is a broker and server driven without sockets through one session.
type env struct {
	t      *testing.T
	fs     vfs.FS
	opts   cluster.Options
	broker *cluster.Broker
	coord  *groups.Coordinator
	server *Server
	tr     *fakeTransport
	sess   *Session
	corr   int32
}

func newEnv(t *testing.T, o cluster.Options) *env {
	t.Helper()
	if o.FS == nil {
		o.FS = vfs.NewMem()
	}
	if o.DataDir == "" {
		o.DataDir = "/data"
	}
	e := &env{t: t, fs: o.FS, opts: o}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	b, err := cluster.Open(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0 // tests' groups start at once
	coord, err := offsetslog.Start(b, cfg, offsetslog.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(waitTimeout); !coord.Ready(); {
		if time.Now().After(deadline) {
			e.t.Fatal("the group coordinator did not load")
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	s, err := NewServer(Options{Broker: b, Coordinator: coord, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.broker, e.coord, e.server = b, coord, s
	e.tr = newFakeTransport()
	e.sess = NewSession(e.tr, Limits{})
}

func (e *env) close() {
	if e.coord != nil {
		e.coord.Close()
		e.coord = nil
	}
	if e.broker != nil {
		_ = e.broker.Close()
		e.broker = nil
	}
}

// frame builds a request frame and returns its body (without the size prefix) in a core Frame.
func frame(key, version int16, corr int32, body []byte) *Frame {
	b, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: key, APIVersion: version, CorrelationID: corr})
	b = append(b, body...)
	proto.FinishFrame(b, start, 0)
	f := NewFrame(len(b) - proto.SizeLen)
	copy(f.Bytes(), b[proto.SizeLen:])
	return f
}

// send hands one request to the server and returns its correlation id.
func (e *env) send(key, version int16, body []byte) int32 {
	e.t.Helper()
	e.corr++
	f := frame(key, version, e.corr, body)
	seq, ok := e.sess.Begin(len(f.Bytes()))
	if !ok {
		e.t.Fatal("session refused a frame")
	}
	e.server.HandleFrame(e.sess, seq, f)
	return e.corr
}

// recv decodes the next response, checking its size prefix and correlation id.
func (e *env) recv(corr int32) (proto.ResponseHeader, []byte) {
	e.t.Helper()
	b := e.tr.next(e.t)
	size, ok, err := proto.FrameSize(b, proto.DefaultMaxFrame)
	if err != nil || !ok || size != len(b)-proto.SizeLen {
		e.t.Fatalf("response size prefix %d for %d bytes (%v)", size, len(b), err)
	}
	h, body, err := proto.ParseResponseHeader(b[proto.SizeLen:])
	if err != nil {
		e.t.Fatal(err)
	}
	if h.CorrelationID != corr {
		e.t.Fatalf("response for correlation id %d, want %d", h.CorrelationID, corr)
	}
	return h, body
}

type decoder interface{ ReadFrom([]byte) error }

// call sends a request and decodes its response body into resp, which must have no top-level error.
func (e *env) call(key int16, req interface{ AppendTo([]byte) []byte }, resp decoder) {
	e.t.Helper()
	corr := e.send(key, proto.Version, req.AppendTo(nil))
	h, body := e.recv(corr)
	if h.ErrorCode != 0 {
		e.t.Fatalf("%s: top-level error %d %s", proto.KeyName(key), h.ErrorCode, h.ErrorMessage)
	}
	if err := resp.ReadFrom(body); err != nil {
		e.t.Fatalf("%s response: %v", proto.KeyName(key), err)
	}
}

func (e *env) createTopic(name string, partitions int32, configs ...proto.ConfigEntry) {
	e.t.Helper()
	var resp proto.TopicErrorsResponse
	e.call(proto.KeyCreateTopics, &proto.CreateTopicsRequest{Topics: []proto.CreateTopic{{Name: name, NumPartitions: partitions, ReplicationFactor: 1, Configs: configs}}}, &resp)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		e.t.Fatalf("create %s: %+v", name, resp)
	}
}

func produceReq(acks int16, topic string, partition int32, records ...[]byte) *proto.ProduceRequest {
	var all []byte
	for _, r := range records {
		all = append(all, r...)
	}
	return &proto.ProduceRequest{Acks: acks, TimeoutMs: 1000, Topics: []proto.ProduceTopic{{
		Name: []byte(topic), Partitions: []proto.ProducePartition{{Partition: partition, Records: all}},
	}}}
}

// produce sends records with acks=1 and returns the partition's answer.
func (e *env) produce(topic string, partition int32, records ...[]byte) proto.ProducePartitionResponse {
	e.t.Helper()
	var resp proto.ProduceResponse
	e.call(proto.KeyProduce, produceReq(proto.AcksLeader, topic, partition, records...), &resp)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Name != topic {
		e.t.Fatalf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func fetchReq(maxWaitMs, minBytes int32, topic string, partition int32, offset int64) *proto.FetchRequest {
	return &proto.FetchRequest{MaxWaitMs: maxWaitMs, MinBytes: minBytes, MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{
		Name: []byte(topic), Partitions: []proto.FetchPartition{{Partition: partition, FetchOffset: offset, PartitionMaxBytes: 1 << 20}},
	}}}
}

func (e *env) fetch(req *proto.FetchRequest) proto.FetchPartitionResponse {
	e.t.Helper()
	var resp proto.FetchResponse
	e.call(proto.KeyFetch, req, &resp)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		e.t.Fatalf("fetch response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// offsetsOf lists the record offsets of batches.
func offsetsOf(t *testing.T, records []byte) []int64 {
	t.Helper()
	var out []int64
	if err := batch.Split(records, func(b []byte) error {
		if _, err := batch.Validate(b); err != nil {
			return err
		}
		return batch.Records(b, func(r *batch.Record) error { out = append(out, r.Offset); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

var errTest = errors.New("test: write refused")

var _ sync.Locker = (*sync.Mutex)(nil)
