package core

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
)

type peerMessage struct {
	from    int32
	kind    uint8
	payload []byte
}

// hello is what a PeerAdmit was asked.
type hello struct {
	from    int32
	payload []byte
	remote  netip.Addr
}

// peerEnv is an env whose server hands Peer frames to a recorder (nil: no PeerHandler) and asks
// admit (nil: admit any hello) about hellos, which it records in hellos.
type peerEnv struct {
	*env
	got    []peerMessage
	hellos []hello
	now    time.Time
}

func newPeerEnv(t *testing.T, handler bool, admit func(from int32, hello []byte) error, logger *zap.Logger) *peerEnv {
	t.Helper()
	pe := &peerEnv{env: newEnv(t, cluster.Options{}), now: testNow}
	o := Options{Broker: pe.broker, Coordinator: pe.coord, AdvertisedAddr: "broker.local:9092", Logger: logger,
		Now: func() time.Time { return pe.now }}
	if handler {
		o.PeerHandler = func(from int32, kind uint8, payload []byte) {
			pe.got = append(pe.got, peerMessage{from, kind, bytes.Clone(payload)})
		}
		o.PeerAdmit = func(from int32, payload []byte, remote netip.Addr) error {
			pe.hellos = append(pe.hellos, hello{from, bytes.Clone(payload), remote})
			if admit != nil {
				return admit(from, payload)
			}
			return nil
		}
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	pe.server = s
	return pe
}

// reconnect gives the env a new connection (session).
func (e *peerEnv) reconnect() {
	e.tr = newFakeTransport()
	e.sess = NewSession(e.tr, Limits{})
}

func peerBody(from int32, kind int8, payload []byte) []byte {
	return (&proto.PeerRequest{From: from, Kind: kind, Payload: payload}).AppendTo(nil)
}

func (e *peerEnv) sendPeer(from int32, kind int8, payload []byte) {
	e.send(proto.KeyPeer, proto.Version, peerBody(from, kind, payload))
}

func TestPeerHandlerNeedsPeerAdmit(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	_, err := NewServer(Options{Broker: e.broker, AdvertisedAddr: "broker.local:9092", PeerHandler: func(int32, uint8, []byte) {}})
	if !errors.Is(err, ErrPeerAdmitMissing) {
		t.Fatalf("NewServer with a PeerHandler and no PeerAdmit: %v", err)
	}
}

// TestPeerFramesAreNeverAnswered: the hello goes to PeerAdmit with the connection's address,
// the messages after it reach the handler in order, and none takes a place in the response
// order: the Ping sent after them is the first and only response.
func TestPeerFramesAreNeverAnswered(t *testing.T) {
	e := newPeerEnv(t, true, nil, nil)
	e.sess.SetClientAddr(&net.TCPAddr{IP: net.ParseIP("10.0.0.7"), Port: 40000})
	e.sendPeer(2, 0, []byte("proof"))
	want := []peerMessage{{2, 1, []byte("vote")}, {2, 2, nil}, {2, 1, []byte{}}, {2, 255, bytes.Repeat([]byte{7}, 70_000)}}
	for _, m := range want {
		e.sendPeer(m.from, int8(m.kind), m.payload)
	}
	if n := e.sess.InFlight(); n != 0 {
		t.Fatalf("%d requests in flight after Peer frames", n)
	}
	corr := e.send(proto.KeyPing, proto.Version, (&proto.PingRequest{Echo: 5}).AppendTo(nil))
	e.recv(corr)
	e.tr.none(t, 50*time.Millisecond)
	if len(e.hellos) != 1 || e.hellos[0].from != 2 || string(e.hellos[0].payload) != "proof" || e.hellos[0].remote != netip.MustParseAddr("10.0.0.7") {
		t.Fatalf("PeerAdmit was asked %+v, want once about node 2's hello from 10.0.0.7", e.hellos)
	}
	if len(e.got) != len(want) {
		t.Fatalf("handler saw %d messages, want %d", len(e.got), len(want))
	}
	for i := range want {
		if g := e.got[i]; g.from != want[i].from || g.kind != want[i].kind || !bytes.Equal(g.payload, want[i].payload) {
			t.Fatalf("message %d: from %d kind %d %d bytes, want from %d kind %d %d bytes",
				i, g.from, g.kind, len(g.payload), want[i].from, want[i].kind, len(want[i].payload))
		}
	}
	if e.tr.closed.Load() || e.server.PeerRefused() != 0 {
		t.Fatalf("connection closed (%v) or refusals counted (%d)", e.tr.closed.Load(), e.server.PeerRefused())
	}
}

// TestPeerFrameRefusedClosesUnanswered: a Peer frame the server cannot take closes the
// connection without an answer and without reaching the handler.
func TestPeerFrameRefusedClosesUnanswered(t *testing.T) {
	cases := []struct {
		name    string
		handler bool
		version int16
		body    []byte
	}{
		{"no PeerHandler", false, proto.Version, peerBody(1, 0, nil)},
		{"empty body", true, proto.Version, nil},
		{"truncated payload", true, proto.Version, peerBody(1, 1, []byte("xyz"))[:10]},
		{"trailing byte", true, proto.Version, append(peerBody(1, 1, []byte("x")), 0)},
		{"negative payload length", true, proto.Version, append(proto.AppendInt8(proto.AppendInt32(nil, 1), 1), 0xff, 0xff, 0xff, 0xfe)},
		{"payload length past the frame", true, proto.Version, append(proto.AppendInt8(proto.AppendInt32(nil, 1), 1), 0x7f, 0xff, 0xff, 0xff)},
		{"version 0", true, 0, peerBody(1, 0, nil)},
		{"version 2", true, 2, peerBody(1, 0, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newPeerEnv(t, tc.handler, nil, nil)
			e.send(proto.KeyPeer, tc.version, tc.body)
			if !e.tr.closed.Load() {
				t.Fatal("connection left open")
			}
			if n := e.sess.InFlight(); n != 0 {
				t.Fatalf("%d requests in flight", n)
			}
			e.tr.none(t, 20*time.Millisecond)
			if len(e.got) != 0 || len(e.hellos) != 0 {
				t.Fatalf("handler called %d times, PeerAdmit %d", len(e.got), len(e.hellos))
			}
			if n := e.server.PeerRefused(); n != 1 {
				t.Fatalf("%d refusals counted, want 1", n)
			}
		})
	}
}

type peerFrame struct {
	from int32
	kind int8
}

// TestPeerConnectionBinding: the messages of a connection reach the handler only after its own
// hello was admitted, and only with that hello's sender; anything else closes the connection,
// and no Peer frame after that one is taken.
func TestPeerConnectionBinding(t *testing.T) {
	refuse := func(int32, []byte) error { return errors.New("bad proof") }
	cases := []struct {
		name   string
		admit  func(int32, []byte) error
		frames []peerFrame
		// delivered is how many of frames reach the handler (their first ones, hellos aside).
		delivered int
	}{
		{"a consensus message without a hello", nil, []peerFrame{{2, 1}}, 0},
		{"a heartbeat without a hello", nil, []peerFrame{{2, 2}, {2, 0}, {2, 1}}, 0},
		{"a hello refused", refuse, []peerFrame{{2, 0}, {2, 1}}, 0},
		{"another sender after the hello", nil, []peerFrame{{2, 0}, {3, 1}, {2, 1}}, 0},
		{"another sender later", nil, []peerFrame{{2, 0}, {2, 1}, {2, 2}, {3, 1}, {2, 1}}, 2},
		{"a second hello", nil, []peerFrame{{2, 0}, {2, 1}, {2, 0}, {2, 1}}, 1},
		{"a second hello from another sender", nil, []peerFrame{{2, 0}, {3, 0}, {3, 1}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newPeerEnv(t, true, tc.admit, nil)
			for _, f := range tc.frames {
				e.sendPeer(f.from, f.kind, []byte("payload"))
			}
			if !e.tr.closed.Load() {
				t.Fatal("connection left open")
			}
			if len(e.got) != tc.delivered {
				t.Fatalf("handler saw %d messages, want %d", len(e.got), tc.delivered)
			}
			for _, m := range e.got {
				if m.from != 2 || m.kind == 0 {
					t.Fatalf("handler saw kind %d from %d", m.kind, m.from)
				}
			}
			if n := e.server.PeerRefused(); n != 1 {
				t.Fatalf("%d refusals counted, want 1 (one connection)", n)
			}
			// A connection is bound by its own hello only: a new one starts unauthenticated.
			e.reconnect()
			e.sendPeer(2, 1, []byte("no hello on this one"))
			if !e.tr.closed.Load() || len(e.got) != tc.delivered {
				t.Fatal("a new connection's message without a hello was taken")
			}
		})
	}
}

// TestPeerRefusalsLoggedOnceAMinute: a stranger sending Peer frames in a loop logs one line a
// minute, with the count in between.
func TestPeerRefusalsLoggedOnceAMinute(t *testing.T) {
	obs, logs := observer.New(zapcore.InfoLevel)
	e := newPeerEnv(t, true, func(int32, []byte) error { return errors.New("bad proof") }, zap.New(obs))
	for i := 0; i < 100; i++ {
		e.reconnect()
		e.sendPeer(2, 0, nil)
		e.now = e.now.Add(100 * time.Millisecond) // 10 s in all
	}
	if n := e.server.PeerRefused(); n != 100 {
		t.Fatalf("%d refusals counted, want 100", n)
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d lines logged, want 1", n)
	}
	e.now = e.now.Add(time.Minute)
	e.reconnect()
	e.sendPeer(2, 1, nil)
	lines := logs.TakeAll()
	if len(lines) != 2 {
		t.Fatalf("%d lines logged after a minute, want 2", len(lines))
	}
	f := lines[1].ContextMap()
	if f["refused_since_last_logged"] != uint64(100) || f["refused_total"] != uint64(101) || f["claimed_from"] != int32(2) {
		t.Fatalf("second line %q %v", lines[1].Message, f)
	}
	if f := lines[0].ContextMap(); f["error"] != "bad proof" {
		t.Fatalf("first line %q %v", lines[0].Message, f)
	}
}
