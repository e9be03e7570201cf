package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/codec/proto"
)

const testSecret = "correct horse battery staple"

// signedHello is the payload of a hello from node from to node to at at, with nonce, proving
// secret.
func signedHello(secret string, from, to int32, nonce [16]byte, at time.Time) []byte {
	h := proto.PeerHello{Nonce: nonce, UnixMillis: at.UnixMilli()}
	h.MAC = helloMAC([]byte(secret), from, to, h.Nonce, h.UnixMillis)
	return h.AppendTo(nil)
}

func nonceOf(i int) (n [16]byte) {
	copy(n[:], fmt.Sprintf("nonce %d", i))
	return n
}

// peerMsg is a Peer request frame.
func peerMsg(from int32, kind uint8, payload []byte) []byte {
	return peerFrame(1, 9, (&proto.PeerRequest{From: from, Kind: int8(kind), Payload: payload}).AppendTo(nil))
}

// TestForgedPeerFramesNeverReachTheHandler: on a node with a cluster secret, a connection whose
// hello does not prove the sender is closed, and none of its messages reaches the handler.
func TestForgedPeerFramesNeverReachTheHandler(t *testing.T) {
	b := startNode(t, 2, true)
	peer1, peer3 := &node{id: 1, addr: "127.0.0.1:1"}, &node{id: 3, addr: "127.0.0.1:3"}
	b.setGate(Options{Secret: testSecret}, peer1, peer3)
	now := time.Now()
	forged := []byte("forged")
	raft := peerMsg(1, KindRaft, forged)

	// The good path first: a hello that proves node 1, then its messages.
	replayed := peerMsg(1, KindHello, signedHello(testSecret, 1, 2, nonceOf(1), now))
	good := dial(t, b.addr)
	defer good.Close()
	if _, err := good.Write(append(bytes.Clone(replayed), peerMsg(1, KindRaft, []byte("genuine"))...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the genuine message", func() bool { return len(b.rec.from(1)) == 1 })

	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"a consensus message without a hello", [][]byte{raft}},
		{"a heartbeat without a hello", [][]byte{peerMsg(1, KindHeartbeat, forged), raft}},
		{"a hello whose MAC is another secret's", [][]byte{peerMsg(1, KindHello, signedHello("another secret", 1, 2, nonceOf(2), now)), raft}},
		{"a hello whose MAC is flipped", [][]byte{peerMsg(1, KindHello, flipLast(signedHello(testSecret, 1, 2, nonceOf(3), now))), raft}},
		{"a hello to another node", [][]byte{peerMsg(1, KindHello, signedHello(testSecret, 1, 3, nonceOf(4), now)), raft}},
		{"a hello for another sender", [][]byte{peerMsg(1, KindHello, signedHello(testSecret, 3, 2, nonceOf(5), now)), raft}},
		{"a hello six minutes old", [][]byte{peerMsg(1, KindHello, signedHello(testSecret, 1, 2, nonceOf(6), now.Add(-6*time.Minute))), raft}},
		{"a hello six minutes ahead", [][]byte{peerMsg(1, KindHello, signedHello(testSecret, 1, 2, nonceOf(7), now.Add(6*time.Minute))), raft}},
		{"a hello played again on a second connection", [][]byte{replayed, raft}},
		{"an empty hello", [][]byte{peerMsg(1, KindHello, []byte{}), raft}},
		{"a truncated hello", [][]byte{peerMsg(1, KindHello, signedHello(testSecret, 1, 2, nonceOf(8), now)[:40]), raft}},
		{"a hello from this node's id", [][]byte{peerMsg(2, KindHello, signedHello(testSecret, 2, 2, nonceOf(9), now)), peerMsg(2, KindRaft, forged)}},
		{"a hello from a node not a peer", [][]byte{peerMsg(9, KindHello, signedHello(testSecret, 9, 2, nonceOf(10), now)), peerMsg(9, KindRaft, forged)}},
		{"another sender after a good hello", [][]byte{peerMsg(3, KindHello, signedHello(testSecret, 3, 2, nonceOf(11), now)), raft, peerMsg(3, KindRaft, forged)}},
		{"a second hello", [][]byte{peerMsg(3, KindHello, signedHello(testSecret, 3, 2, nonceOf(12), now)), peerMsg(1, KindHello, signedHello(testSecret, 1, 2, nonceOf(13), now)), raft}},
	}
	for i, tc := range cases {
		c := dial(t, b.addr)
		if _, err := c.Write(bytes.Join(tc.frames, nil)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, tc.name)
		c.Close()
		if n := b.server.PeerRefused(); n != uint64(i+1) {
			t.Fatalf("%s: %d connections refused, want %d", tc.name, n, i+1)
		}
	}
	// Nothing forged reached the handler, and the good connection still delivers.
	if _, err := good.Write(peerMsg(1, KindRaft, []byte("still genuine"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second genuine message", func() bool { return len(b.rec.from(1)) == 2 })
	if n := b.rec.total(); n != 2 {
		t.Fatalf("the handler got %d messages, want the 2 genuine ones", n)
	}
	if lines := b.logs.FilterMessageSnippet("Peer frame it refused").All(); len(lines) != 1 ||
		!strings.Contains(lines[0].Message, "a peer message before a hello") {
		t.Fatalf("logged %d lines (%v), want the first refusal only", len(lines), lines)
	}
}

func flipLast(b []byte) []byte {
	b[len(b)-1] ^= 1
	return b
}

// TestHelloFromAStrangerAddress: without a secret, a hello from an address that is none of the
// peers' closes the connection.
func TestHelloFromAStrangerAddress(t *testing.T) {
	b := startNode(t, 2, true)
	// Node 1 is on another host (TEST-NET-1): a loopback connection is not node 1's.
	b.setGate(Options{}, &node{id: 1, addr: "192.0.2.1:9092"})
	c := dial(t, b.addr)
	if _, err := c.Write(append(peerMsg(1, KindHello, []byte{}), peerMsg(1, KindRaft, []byte("forged"))...)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, "a hello from loopback for a peer on another host")
	c.Close()
	// The same from a peer on loopback is taken.
	b.setGate(Options{}, &node{id: 1, addr: "127.0.0.1:1"})
	c = dial(t, b.addr)
	defer c.Close()
	if _, err := c.Write(append(peerMsg(1, KindHello, []byte{}), peerMsg(1, KindRaft, []byte("genuine"))...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the genuine message", func() bool { return b.rec.total() == 1 })
	if got := b.rec.from(1); string(got[0].payload) != "genuine" || b.server.PeerRefused() != 1 {
		t.Fatalf("got %+v, %d refused", got, b.server.PeerRefused())
	}
}

func TestAdmitByAddress(t *testing.T) {
	p := New(Options{Self: 2, Peers: map[int32]string{1: "192.0.2.1:9092", 3: "[2001:db8::3]:9092", 4: "localhost:9092", 5: "not an address"}})
	defer p.Close()
	p.peers[4].resolve(context.Background()) // a host name is resolved before each dial
	f := func(from int32, remote string, hello []byte, ok bool) {
		t.Helper()
		var ip netip.Addr
		if remote != "" {
			ip = netip.MustParseAddr(remote)
		}
		err := p.Admit(from, hello, ip)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrHelloRefused)) {
			t.Errorf("node %d from %q with %d bytes: %v, want admitted %v", from, remote, len(hello), err, ok)
		}
	}
	f(1, "192.0.2.1", nil, true)
	f(1, "::ffff:192.0.2.1", nil, true)
	f(3, "2001:db8::3", []byte{}, true)
	f(1, "2001:db8::3", nil, true) // any peer's address: the secret is what tells peers apart
	f(1, "192.0.2.2", nil, false)
	f(1, "10.0.0.1", nil, false)
	f(1, "", nil, false)                                                            // address unknown
	f(2, "192.0.2.1", nil, false)                                                   // this node
	f(9, "192.0.2.1", nil, false)                                                   // not a peer
	f(1, "192.0.2.1", signedHello(testSecret, 1, 2, nonceOf(1), time.Now()), false) // the sender has a secret, this node none
	// localhost resolved to loopback: every loopback address qualifies.
	f(1, "127.0.0.1", nil, true)
	f(1, "127.0.0.9", nil, true)
	f(1, "::1", nil, true)

	// No peer on loopback: loopback is a stranger.
	q := New(Options{Self: 2, Peers: map[int32]string{1: "192.0.2.1:9092"}})
	defer q.Close()
	if err := q.Admit(1, nil, netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrHelloRefused) {
		t.Errorf("a loopback hello for a peer on another host: %v", err)
	}
}

func TestAdmitBySecret(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	p := New(Options{Self: 2, Peers: map[int32]string{1: "192.0.2.1:9092", 3: "192.0.2.3:9092"}, Secret: testSecret,
		Now: func() time.Time { return now }})
	defer p.Close()
	stranger := netip.MustParseAddr("203.0.113.7") // with a secret, the address does not matter
	f := func(from int32, hello []byte, ok bool, why string) {
		t.Helper()
		err := p.Admit(from, hello, stranger)
		if (err == nil) != ok || (err != nil && (!errors.Is(err, ErrHelloRefused) || !strings.Contains(err.Error(), why))) {
			t.Errorf("%v, want admitted %v (%q)", err, ok, why)
		}
	}
	f(1, signedHello(testSecret, 1, 2, nonceOf(1), now), true, "")
	f(3, signedHello(testSecret, 3, 2, nonceOf(2), now.Add(-helloWindow)), true, "")
	f(3, signedHello(testSecret, 3, 2, nonceOf(3), now.Add(helloWindow)), true, "")
	f(3, signedHello(testSecret, 3, 2, nonceOf(4), now.Add(-helloWindow-time.Millisecond)), false, "from this node's clock")
	f(3, signedHello(testSecret, 3, 2, nonceOf(5), now.Add(helloWindow+time.Millisecond)), false, "from this node's clock")
	f(1, signedHello(testSecret, 1, 2, nonceOf(1), now), false, "seen before")
	f(3, signedHello(testSecret, 3, 2, nonceOf(1), now.Add(time.Second)), false, "seen before") // a nonce is used once, whoever sends it
	f(1, signedHello("another secret", 1, 2, nonceOf(6), now), false, "MAC does not match")
	f(1, signedHello(testSecret, 1, 3, nonceOf(7), now), false, "MAC does not match") // made for node 3
	f(1, signedHello(testSecret, 3, 2, nonceOf(8), now), false, "MAC does not match") // made for node 3's hello
	f(1, nil, false, "the sender has no THORSTREAM_CLUSTER_SECRET")
	f(1, make([]byte, proto.PeerHelloLen+1), false, "malformed")
	f(2, signedHello(testSecret, 2, 2, nonceOf(9), now), false, "this node")
	f(9, signedHello(testSecret, 9, 2, nonceOf(10), now), false, "not one of this node's peers")
	// A refused hello's nonce is not remembered: only hellos with a good MAC take room.
	f(1, signedHello(testSecret, 1, 2, nonceOf(6), now), true, "")
	if n := p.nonces.len(); n != 4 {
		t.Fatalf("%d nonces remembered, want 4", n)
	}
	// Once out of the window, the nonces are forgotten (their hellos are refused by time now).
	now = now.Add(2*helloWindow + time.Minute)
	f(1, signedHello(testSecret, 1, 2, nonceOf(100), now), true, "")
	if n := p.nonces.len(); n != 1 {
		t.Fatalf("%d nonces remembered a window later, want 1", n)
	}
	f(1, signedHello(testSecret, 1, 2, nonceOf(1), now.Add(-helloWindow-time.Minute)), false, "from this node's clock")
}

// TestNonceSetBounded: more hellos within the window than the set holds forget the oldest, and
// no hello as old as a forgotten one is taken, so none can be played again.
func TestNonceSetBounded(t *testing.T) {
	var s nonceSet
	now := time.UnixMilli(1_700_000_000_000)
	start := now.Add(-time.Minute).UnixMilli()
	for i := range maxNonces + 500 {
		if !s.add(nonceOf(i), start+int64(i), now) {
			t.Fatalf("hello %d refused", i)
		}
	}
	if n := s.len(); n != maxNonces {
		t.Fatalf("%d nonces remembered, want %d", n, maxNonces)
	}
	if len(s.order) > 2*maxNonces {
		t.Fatalf("the order holds %d entries", len(s.order))
	}
	for _, i := range []int{0, 499} { // forgotten
		if s.add(nonceOf(i), start+int64(i), now) {
			t.Fatalf("forgotten hello %d taken again", i)
		}
	}
	if s.add(nonceOf(500), start+500, now) {
		t.Fatal("a remembered hello taken again")
	}
	if !s.add(nonceOf(-1), start+int64(maxNonces+500), now) {
		t.Fatal("a new hello refused")
	}
}

// TestMismatchedSecretsNeverDeliver: nodes whose secrets differ, or of which one has none, keep
// dialing each other, and not one message passes; the refusals are logged with the reason, the
// dialer's quick closes once. Once the secrets agree, the messages pass.
func TestMismatchedSecretsNeverDeliver(t *testing.T) {
	cases := []struct {
		name           string
		secretA, secrB string
		logA, logB     string // the reason each side logs
	}{
		{"different secrets", "secret one", "secret two", "MAC does not match", "MAC does not match"},
		{"a secret and none", "secret one", "", "the sender has no THORSTREAM_CLUSTER_SECRET", "this node has none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startNode(t, 1, true), startNode(t, 2, true)
			fast := Options{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}
			oa, ob := fast, fast
			oa.Secret, ob.Secret = tc.secretA, tc.secrB
			obs, dialLogs := observer.New(zapcore.InfoLevel)
			oa.Logger = zap.New(obs)
			b.setGate(ob, a) // before startPeers(a) gives b a gate with a's secret
			pa := startPeers(t, a, oa, b)
			pb := startPeers(t, b, ob, a)
			waitFor(t, "repeated refusals on both sides", func() bool {
				pa.Send(2, KindRaft, []byte("from a"))
				pb.Send(1, KindRaft, []byte("from b"))
				return a.server.PeerRefused() >= 5 && b.server.PeerRefused() >= 5
			})
			if na, nb := a.rec.total(), b.rec.total(); na != 0 || nb != 0 {
				t.Fatalf("messages delivered: %d to a, %d to b", na, nb)
			}
			connects := pa.Stats(2).Connects
			if connects < 2 || pb.Stats(1).Connects < 2 {
				t.Fatalf("connections made: %d and %d, want the refused ones dialed again", connects, pb.Stats(1).Connects)
			}
			quick := dialLogs.FilterMessageSnippet("keep closing right after they open").Len()
			connected := dialLogs.FilterMessage("connected to peer").Len()
			if quick != 1 || uint64(connected) >= connects {
				t.Fatalf("a's dialer logged %d quick-close lines and %d connections for %d connections made", quick, connected, connects)
			}
			for _, side := range []struct {
				n   *node
				why string
			}{{a, tc.logA}, {b, tc.logB}} {
				lines := side.n.logs.FilterMessageSnippet("hello refused").All()
				if len(lines) != 1 {
					t.Fatalf("node %d logged %d refusals, want 1 (once a minute)", side.n.id, len(lines))
				}
				if err, _ := lines[0].ContextMap()["error"].(string); !strings.Contains(err, side.why) {
					t.Fatalf("node %d logged %q", side.n.id, err)
				}
			}
			// b takes a's secret: a's next connection stays up, says so, and delivers.
			b.setGate(Options{Secret: tc.secretA}, a)
			waitFor(t, "a's messages to reach b", func() bool {
				pa.Send(2, KindRaft, []byte("from a"))
				return b.rec.total() > 0
			})
			waitFor(t, "a's dialer to log the connection that stayed up", func() bool {
				return dialLogs.FilterMessage("connected to peer").FilterFieldKey("quick_closes").Len() == 1
			})
			if n := a.rec.total(); n != 0 {
				t.Fatalf("%d of b's messages reached a", n)
			}
		})
	}
}
