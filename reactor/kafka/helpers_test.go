package kafka

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/log/vfs"
	"github.com/thorstream/thorstream/reactor/core"
)

// waitTimeout bounds every wait for a response: only reached when something is broken.
const waitTimeout = 20 * time.Second

// fakeTransport records every response handed to it (its bytes, copied) and releases it at once,
// as a transport whose write completed would.
type fakeTransport struct {
	frames chan []byte
	closed atomic.Bool
	closes chan struct{}
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{frames: make(chan []byte, 1024), closes: make(chan struct{}, 16)}
}

func (f *fakeTransport) Writev(r *core.Response) error {
	var b []byte
	for _, p := range r.Bufs {
		b = append(b, p...)
	}
	f.frames <- b
	r.Written(nil)
	return nil
}

func (f *fakeTransport) Wake() {}

func (f *fakeTransport) Close() {
	f.closed.Store(true)
	f.closes <- struct{}{}
}

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

// waitClosed waits until the server closes the connection.
func (f *fakeTransport) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-f.closes:
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for the connection to be closed")
	}
}

// env is a broker and a Kafka server driven without sockets through one session.
type env struct {
	t      *testing.T
	broker *cluster.Broker
	server *Server
	tr     *fakeTransport
	sess   *core.Session
	corr   int32
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := cluster.Open(cluster.Options{DataDir: "/data", FS: vfs.NewMem(), AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0 // tests' groups start at once
	coord, err := offsetslog.Start(b, cfg, offsetslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		coord.Close()
		_ = b.Close()
	})
	for deadline := time.Now().Add(waitTimeout); !coord.Ready(); {
		if time.Now().After(deadline) {
			t.Fatal("the group coordinator did not load")
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	s, err := NewServer(Options{Broker: b, Coordinator: coord, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = core.NewSession(e.tr, core.Limits{})
	return e
}

// requestFrame builds a request frame body (no size prefix): header v1 (key, version,
// correlation id, client id) or v2 (plus an empty tag section) when flexible, then body.
func requestFrame(key, version int16, corr int32, clientID *string, flexible bool, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if flexible {
		b = append(b, 0)
	}
	return append(b, body...)
}

// sendRaw hands one frame body to the server.
func (e *env) sendRaw(frame []byte) {
	e.t.Helper()
	f := core.NewFrame(len(frame))
	copy(f.Bytes(), frame)
	seq, ok := e.sess.Begin(len(frame))
	if !ok {
		e.t.Fatal("session refused a frame")
	}
	e.server.HandleFrame(e.sess, seq, f)
}

// send encodes req at its version with kmsg, hands it to the server and returns the correlation id.
func (e *env) send(req kmsg.Request) int32 {
	e.t.Helper()
	e.corr++
	clientID := "unit-test"
	e.sendRaw(requestFrame(req.Key(), req.GetVersion(), e.corr, &clientID, req.IsFlexible(), req.AppendTo(nil)))
	return e.corr
}

// recv reads the next response frame, checks its size prefix and correlation id, and returns the
// body after the response header (v0, or v1 with its tag byte when flexible).
func (e *env) recv(corr int32, flexibleHeader bool) []byte {
	e.t.Helper()
	b := e.tr.next(e.t)
	if len(b) < 8 {
		e.t.Fatalf("response of %d bytes", len(b))
	}
	if size := binary.BigEndian.Uint32(b); int(size) != len(b)-4 {
		e.t.Fatalf("response size prefix %d for %d bytes after it", size, len(b)-4)
	}
	if got := int32(binary.BigEndian.Uint32(b[4:])); got != corr {
		e.t.Fatalf("response for correlation id %d, want %d", got, corr)
	}
	body := b[8:]
	if flexibleHeader {
		if len(body) == 0 || body[0] != 0 {
			e.t.Fatalf("flexible response header: want an empty tag section, got % x", body[:min(len(body), 4)])
		}
		body = body[1:]
	}
	return body
}

// call sends req and decodes the response at the same version. The body must decode, and kmsg
// must re-encode the decoded response to exactly the bytes received (no trailing or missing bytes).
func (e *env) call(req kmsg.Request) kmsg.Response {
	e.t.Helper()
	corr := e.send(req)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body := e.recv(corr, resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16())
	if err := resp.ReadFrom(body); err != nil {
		e.t.Fatalf("key %d v%d: decoding the response: %v", req.Key(), req.GetVersion(), err)
	}
	if again := resp.AppendTo(nil); string(again) != string(body) {
		e.t.Fatalf("key %d v%d: the response body has %d bytes, kmsg re-encodes what it decoded to %d:\n got % x\nkmsg % x",
			req.Key(), req.GetVersion(), len(body), len(again), body, again)
	}
	return resp
}

// recordBatch encodes a magic-2 batch of n records with the given producer fields and a valid
// CRC-32C.
func recordBatch(n int, producerID int64, epoch int16, baseSequence int32, ts int64) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: 0, Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the placeholder length 0 is one byte
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
		FirstSequence:        baseSequence,
		NumRecords:           int32(n),
		Records:              records,
	}
	b.Length = int32(49 + len(records))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
