package core

import (
	"bytes"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
)

type peerMessage struct {
	from    int32
	kind    uint8
	payload []byte
}

// peerEnv is an env whose server hands Peer frames to a recorder (nil: no PeerHandler).
func peerEnv(t *testing.T, record *[]peerMessage) *env {
	t.Helper()
	e := newEnv(t, cluster.Options{})
	var h PeerHandler
	if record != nil {
		h = func(from int32, kind uint8, payload []byte) {
			*record = append(*record, peerMessage{from, kind, bytes.Clone(payload)})
		}
	}
	s, err := NewServer(Options{Broker: e.broker, Coordinator: e.coord, AdvertisedAddr: "broker.local:9092", PeerHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	return e
}

func peerBody(from int32, kind int8, payload []byte) []byte {
	return (&proto.PeerRequest{From: from, Kind: kind, Payload: payload}).AppendTo(nil)
}

// TestPeerFramesAreNeverAnswered: Peer frames reach the handler in order and take no place in
// the response order: the Ping sent after them is the first and only response.
func TestPeerFramesAreNeverAnswered(t *testing.T) {
	var got []peerMessage
	e := peerEnv(t, &got)
	want := []peerMessage{{2, 0, []byte{}}, {2, 1, []byte("vote")}, {3, 2, nil}, {2, 255, bytes.Repeat([]byte{7}, 70_000)}}
	for _, m := range want {
		e.send(proto.KeyPeer, proto.Version, peerBody(m.from, int8(m.kind), m.payload))
	}
	if n := e.sess.InFlight(); n != 0 {
		t.Fatalf("%d requests in flight after Peer frames", n)
	}
	corr := e.send(proto.KeyPing, proto.Version, (&proto.PingRequest{Echo: 5}).AppendTo(nil))
	e.recv(corr)
	e.tr.none(t, 50*time.Millisecond)
	if len(got) != len(want) {
		t.Fatalf("handler saw %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].from != want[i].from || got[i].kind != want[i].kind || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("message %d: from %d kind %d %d bytes, want from %d kind %d %d bytes",
				i, got[i].from, got[i].kind, len(got[i].payload), want[i].from, want[i].kind, len(want[i].payload))
		}
	}
	if e.tr.closed.Load() {
		t.Fatal("connection closed")
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
		{"no PeerHandler", false, proto.Version, peerBody(1, 1, []byte("x"))},
		{"empty body", true, proto.Version, nil},
		{"truncated payload", true, proto.Version, peerBody(1, 1, []byte("xyz"))[:10]},
		{"trailing byte", true, proto.Version, append(peerBody(1, 1, []byte("x")), 0)},
		{"negative payload length", true, proto.Version, append(proto.AppendInt8(proto.AppendInt32(nil, 1), 1), 0xff, 0xff, 0xff, 0xfe)},
		{"payload length past the frame", true, proto.Version, append(proto.AppendInt8(proto.AppendInt32(nil, 1), 1), 0x7f, 0xff, 0xff, 0xff)},
		{"version 0", true, 0, peerBody(1, 1, nil)},
		{"version 2", true, 2, peerBody(1, 1, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []peerMessage
			rec := &got
			if !tc.handler {
				rec = nil
			}
			e := peerEnv(t, rec)
			e.send(proto.KeyPeer, tc.version, tc.body)
			if !e.tr.closed.Load() {
				t.Fatal("connection left open")
			}
			if n := e.sess.InFlight(); n != 0 {
				t.Fatalf("%d requests in flight", n)
			}
			e.tr.none(t, 20*time.Millisecond)
			if len(got) != 0 {
				t.Fatalf("handler called %d times", len(got))
			}
		})
	}
}
