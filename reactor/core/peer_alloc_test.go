//go:build !race

package core

import (
	"testing"

	"github.com/thorstream/thorstream/codec/proto"
)

// TestPeerFrameAllocations: once a connection's hello is admitted, a Peer frame costs the event
// loop no allocation on its way to the handler.
func TestPeerFrameAllocations(t *testing.T) {
	e := newPeerEnv(t, true, nil, nil)
	delivered := 0
	e.server.peers.handler = func(from int32, kind uint8, payload []byte) { delivered++ }
	e.sendPeer(2, 0, nil)
	hdr := proto.RequestHeader{APIKey: proto.KeyPeer, APIVersion: proto.Version}
	body := peerBody(2, 1, make([]byte, 300))
	one := func() {
		seq, ok := e.sess.Begin(len(body))
		if !ok {
			t.Fatal("session refused a frame")
		}
		e.server.peer(e.sess, seq, hdr, body)
	}
	if allocs := testing.AllocsPerRun(2000, one); allocs > 0 {
		t.Fatalf("%.1f allocations per Peer frame", allocs)
	}
	if delivered < 2000 || e.tr.closed.Load() {
		t.Fatalf("%d frames delivered, connection closed: %v", delivered, e.tr.closed.Load())
	}
}
