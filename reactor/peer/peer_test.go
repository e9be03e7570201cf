package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/vfs"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
)

// waitTimeout bounds every wait: only reached when something is broken.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition, with a deadline
	}
}

type message struct {
	kind    uint8
	payload []byte
}

// recorder is a PeerHandler keeping a copy of every message, by sender.
type recorder struct {
	mu   sync.Mutex
	msgs map[int32][]message
}

func newRecorder() *recorder { return &recorder{msgs: map[int32][]message{}} }

func (r *recorder) handle(from int32, kind uint8, payload []byte) {
	r.mu.Lock()
	r.msgs[from] = append(r.msgs[from], message{kind, bytes.Clone(payload)})
	r.mu.Unlock()
}

func (r *recorder) from(id int32) []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs[id]...)
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		n += len(m)
	}
	return n
}

// node is a broker's request core on a real network engine on loopback.
type node struct {
	t      *testing.T
	id     int32
	server *core.Server
	engine *reactor.Reactor
	addr   string
	rec    *recorder
	// gate admits the hellos of the connections to this node (its Peers, or one that only
	// admits: setGate); nil: every hello is refused.
	gate atomic.Pointer[Peers]
	// logs are the server's warnings.
	logs *observer.ObservedLogs
}

var errNoGate = errors.New("peer test: this node admits no hello")

// startNode starts node id on a loopback port the system picks; withHandler: its core takes
// peer traffic (into n.rec), admitted by n.gate.
func startNode(t *testing.T, id int32, withHandler bool) *node {
	t.Helper()
	b, err := cluster.Open(cluster.Options{NodeID: id, DataDir: "/data", FS: vfs.NewMem(), CleanerDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	obs, logs := observer.New(zapcore.WarnLevel)
	n := &node{t: t, id: id, rec: newRecorder(), logs: logs}
	o := core.Options{Broker: b, AdvertisedAddr: "127.0.0.1:9092", Logger: zap.New(obs)}
	if withHandler {
		o.PeerHandler = n.rec.handle
		o.PeerAdmit = func(from int32, hello []byte, remote netip.Addr) error {
			if g := n.gate.Load(); g != nil {
				return g.Admit(from, hello, remote)
			}
			return errNoGate
		}
	}
	if n.server, err = core.NewServer(o); err != nil {
		t.Fatal(err)
	}
	n.start("127.0.0.1:0")
	return n
}

// start starts a new engine on addr, retrying while the port is still taken.
func (n *node) start(addr string) {
	n.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		e := reactor.New(reactor.Options{Addr: addr}, n.server, nil)
		err := e.Start()
		if err == nil {
			n.engine, n.addr = e, e.Addrs()[0]
			n.t.Cleanup(n.stop)
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			n.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // polling for the port, with a deadline
	}
}

func (n *node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.engine.Stop(ctx); err != nil {
		n.t.Error(err)
	}
}

// startPeers starts self's connections to others, and makes them self's gate. Each of others
// without a gate gets one that admits self (with o's secret).
func startPeers(t *testing.T, self *node, o Options, others ...*node) *Peers {
	t.Helper()
	o.Self = self.id
	o.Peers = map[int32]string{}
	for _, n := range others {
		o.Peers[n.id] = n.addr
		if n.gate.Load() == nil {
			n.setGate(Options{Secret: o.Secret}, self)
		}
	}
	p := New(o)
	self.gate.Store(p)
	p.Start(self.engine)
	t.Cleanup(p.Close)
	return p
}

// setGate makes n admit the hellos of from, by o (Self and Peers set here), without dialing.
func (n *node) setGate(o Options, from ...*node) *Peers {
	o.Self = n.id
	o.Peers = map[int32]string{}
	for _, f := range from {
		o.Peers[f.id] = f.addr
	}
	p := New(o)
	n.gate.Store(p)
	n.t.Cleanup(p.Close)
	return p
}

// noPeerGoroutines waits until no goroutine of this package is left, tests aside.
func noPeerGoroutines(t *testing.T) {
	t.Helper()
	var stacks []byte
	waitFor(t, "the peers' goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				stacks = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		return !bytes.Contains(stacks, []byte("reactor/peer.(*"))
	})
}

// payload is the deterministic content of message i from node from to node to.
func payload(from, to int32, i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(int(from)*31 + int(to)*7 + i*13 + j)
	}
	if size >= 8 {
		binary.BigEndian.PutUint64(b, uint64(i))
	}
	return b
}

// checkMessages compares what a node received from one sender with want; it fails the test on a
// difference.
func checkMessages(t *testing.T, what string, got, want []message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].kind != want[i].kind || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("%s: message %d is kind %d with %d bytes, want kind %d with %d bytes (or the bytes differ)",
				what, i, got[i].kind, len(got[i].payload), want[i].kind, len(want[i].payload))
		}
	}
}

// testSecrets are the two ways to run a cluster: peers known by address, or proving a secret.
var testSecrets = []struct{ name, secret string }{{"no secret", ""}, {"secret", "correct horse battery staple"}}

func TestMessagesArriveIntactAndInOrder(t *testing.T) {
	for _, s := range testSecrets {
		t.Run(s.name, func(t *testing.T) { testMessagesArriveIntactAndInOrder(t, s.secret) })
	}
}

func testMessagesArriveIntactAndInOrder(t *testing.T, secret string) {
	nodes := []*node{startNode(t, 0, true), startNode(t, 1, true), startNode(t, 2, true)}
	peers := make([]*Peers, len(nodes))
	for i, n := range nodes {
		var others []*node
		for j, m := range nodes {
			if j != i {
				others = append(others, m)
			}
		}
		peers[i] = startPeers(t, n, Options{Secret: secret}, others...)
	}
	for i, p := range peers {
		for j := range nodes {
			if j != i {
				waitFor(t, fmt.Sprintf("node %d to connect to node %d", i, j), func() bool { return p.Connected(int32(j)) })
			}
		}
	}

	sizes := []int{0, 1, 2, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20}
	for i := 0; i < 300; i++ {
		sizes = append(sizes, i%50)
	}
	sizes = append(sizes, 1<<20, 0)
	want := map[[2]int32][]message{}
	for i, p := range peers {
		for j := range nodes {
			if j == i {
				continue
			}
			from, to := int32(i), int32(j)
			for k, size := range sizes {
				kind := KindRaft
				if k%3 == 2 {
					kind = KindHeartbeat
				}
				m := message{kind, payload(from, to, k, size)}
				if !p.Send(to, m.kind, m.payload) {
					t.Fatalf("node %d dropped message %d (%d bytes) to node %d", from, k, size, to)
				}
				// Send copied the payload: scribbling over it changes nothing sent.
				for b := range m.payload {
					m.payload[b] ^= 0xff
				}
				for b := range m.payload {
					m.payload[b] ^= 0xff
				}
				want[[2]int32{from, to}] = append(want[[2]int32{from, to}], m)
			}
		}
	}
	for pair, msgs := range want {
		from, to := pair[0], pair[1]
		rec := nodes[to].rec
		waitFor(t, fmt.Sprintf("node %d's messages to node %d", from, to), func() bool { return len(rec.from(from)) >= len(msgs) })
		// The hello was the core's and the gate's: the handler sees the messages only.
		checkMessages(t, fmt.Sprintf("node %d to node %d", from, to), rec.from(from), msgs)
		// The sender counts a batch once the engine reports it written, which may come after
		// the receiver has read it.
		waitFor(t, fmt.Sprintf("node %d to count its messages to node %d written", from, to), func() bool {
			return peers[from].Stats(to).Sent >= uint64(len(msgs)+1)
		})
		st := peers[from].Stats(to)
		if st.Sent != uint64(len(msgs)+1) || st.Dropped != 0 || st.Connects != 1 || !st.Connected {
			t.Errorf("node %d's stats for node %d: %+v", from, to, st)
		}
	}
	for _, n := range nodes {
		if r := n.server.PeerRefused(); r != 0 {
			t.Errorf("node %d refused %d connections", n.id, r)
		}
	}
	for _, p := range peers {
		p.Close()
	}
	noPeerGoroutines(t)
}

func TestReconnectAfterPeerRestart(t *testing.T) {
	for _, s := range testSecrets {
		t.Run(s.name, func(t *testing.T) { testReconnectAfterPeerRestart(t, s.secret) })
	}
}

func testReconnectAfterPeerRestart(t *testing.T, secret string) {
	a, b := startNode(t, 1, true), startNode(t, 2, true)
	obs, logs := observer.New(zapcore.InfoLevel)
	p := startPeers(t, a, Options{Logger: zap.New(obs), Secret: secret}, b)
	waitFor(t, "the connection", func() bool { return p.Connected(2) })

	var want []message
	sendSome := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			m := message{KindRaft, payload(1, 2, i, 10+i)}
			if !p.Send(2, m.kind, m.payload) {
				t.Fatalf("message %d dropped", i)
			}
			want = append(want, m)
		}
	}
	sendSome(0, 10)
	waitFor(t, "the first messages", func() bool { return len(b.rec.from(1)) == 10 })

	b.stop()
	waitFor(t, "the connection to go down", func() bool { return !p.Connected(2) })
	for i := 0; i < 100; i++ {
		if p.Send(2, KindRaft, []byte("while the peer is down")) {
			t.Fatal("Send to a peer that is down returned true")
		}
	}
	b.start(b.addr) // the same port
	waitFor(t, "the connection to come back", func() bool { return p.Connected(2) })
	sendSome(10, 10)
	waitFor(t, "the messages after the restart", func() bool { return len(b.rec.from(1)) == 20 })

	// The second connection was admitted by its own hello (a new nonce with a secret).
	checkMessages(t, "node 1 to node 2", b.rec.from(1), want)
	if r := b.server.PeerRefused(); r != 0 {
		t.Errorf("node 2 refused %d connections", r)
	}
	if st := p.Stats(2); st.Connects != 2 || st.Dropped != 100 {
		t.Errorf("stats %+v, want 2 connections and 100 messages dropped", st)
	}
	p.Close()
	count := func(msg string) int { return logs.FilterMessage(msg).Len() }
	if c, d, u := count("connected to peer"), count("disconnected from peer"), count("cannot reach peer; dialing again with backoff, logged again once it connects"); c != 2 || d != 1 || u > 1 {
		t.Errorf("logged %d connections, %d disconnections and %d unreachable lines, want 2, 1 and at most 1", c, d, u)
	}
	noPeerGoroutines(t)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// stuckRegistrar holds every registration until release is closed, as an engine that cannot take
// a connection yet would.
type stuckRegistrar struct {
	r       *reactor.Reactor
	release chan struct{}
	waiting chan struct{} // closed when a registration waits
	once    sync.Once
}

func (s *stuckRegistrar) RegisterOutbound(nc net.Conn, h reactor.OutboundHandler) (gnet.Conn, error) {
	s.once.Do(func() { close(s.waiting) })
	<-s.release
	return s.r.RegisterOutbound(nc, h)
}

func TestDownPeerDropsAtOnceAndLogsOnce(t *testing.T) {
	a := startNode(t, 1, true)
	// Node 3 accepts connections (in the kernel's backlog), but the engine does not take them
	// until the end.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reg := &stuckRegistrar{r: a.engine, release: make(chan struct{}), waiting: make(chan struct{})}
	obs, logs := observer.New(zapcore.InfoLevel)
	p := New(Options{Self: 1, Peers: map[int32]string{
		1: "127.0.0.1:1", // itself: ignored
		2: freeAddr(t),   // refused at once
		3: ln.Addr().String(),
	}, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, Logger: zap.New(obs)})
	defer p.Close()
	if ids := p.IDs(); len(ids) != 2 || ids[0] != 2 || ids[1] != 3 {
		t.Fatalf("IDs %v", ids)
	}
	if p.Send(2, KindRaft, []byte("before Start")) || p.Connected(2) {
		t.Fatal("a peer is up before Start")
	}
	p.Start(reg)
	select {
	case <-reg.waiting:
	case <-time.After(waitTimeout):
		t.Fatal("node 3 was not dialed")
	}
	msg := make([]byte, 1000)
	start := time.Now()
	for i := 0; i < 10_000; i++ {
		if p.Send(2, KindRaft, msg) || p.Send(3, KindHeartbeat, msg) || p.Send(4, KindRaft, msg) || p.Send(1, KindRaft, msg) {
			t.Fatal("a Send to a peer that is down, unknown or this node returned true")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("40,000 dropped Sends took %v", d)
	}
	waitFor(t, "repeated dial failures", func() bool { return p.Stats(2).DialFailures >= 20 })
	if st := p.Stats(2); st.Connected || st.Dropped != 10_001 || st.Connects != 0 || st.QueuedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
	if n := logs.FilterMessage("cannot reach peer; dialing again with backoff, logged again once it connects").FilterField(zap.Int32("peer", 2)).Len(); n != 1 {
		t.Errorf("the unreachable peer was logged %d times, want once", n)
	}
	close(reg.release)
	closed := time.Now()
	p.Close()
	p.Close()
	if d := time.Since(closed); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	p.Start(a.engine) // after Close: nothing
	noPeerGoroutines(t)
}

func TestFullQueueDrops(t *testing.T) {
	a := startNode(t, 1, true)
	// A peer that accepts and never reads.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	const maxQueue = 1 << 20
	p := New(Options{Self: 1, Peers: map[int32]string{9: ln.Addr().String()}, MaxQueueBytes: maxQueue, MaxUnsentBytes: 64 << 10})
	defer p.Close()
	p.Start(a.engine)
	waitFor(t, "the connection", func() bool { return p.Connected(9) })
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(waitTimeout):
		t.Fatal("no connection accepted")
	}
	defer c.Close()

	// Send until the writer is held back by output the socket has not taken, then until the
	// queue behind it is full.
	msg := make([]byte, 64<<10)
	sent, drops := 0, 0
	var slowest time.Duration
	for deadline := time.Now().Add(waitTimeout); p.Stats(9).UnsentBytes <= 64<<10 || drops == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("after %d Sends of 64 KiB to a peer that reads nothing: %d dropped, stats %+v", sent, drops, p.Stats(9))
		}
		start := time.Now()
		ok := p.Send(9, KindRaft, msg)
		slowest = max(slowest, time.Since(start))
		if ok {
			sent++
		} else {
			drops++
		}
	}
	if slowest > time.Second {
		t.Errorf("the slowest Send took %v", slowest)
	}
	st := p.Stats(9)
	if !st.Connected || st.QueuedBytes > maxQueue || st.Dropped != uint64(drops) {
		t.Fatalf("after %d Sends queued and %d dropped: stats %+v", sent, drops, st)
	}
	// The writer waits: what it hands the engine stays within one batch past the bound.
	if st.UnsentBytes > 64<<10+maxBatchBytes+frameOverhead+len(msg) {
		t.Fatalf("%d bytes unsent, bound %d", st.UnsentBytes, 64<<10)
	}
	t.Logf("%d messages of 64 KiB queued, %d dropped; %d written to the connection, %d bytes of them unsent",
		sent, drops, st.Sent, st.UnsentBytes)

	// The frames on the wire: a hello first, then the messages.
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	var head [proto.SizeLen + proto.RequestHeaderLen + proto.PeerHeaderLen]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		t.Fatal(err)
	}
	size := binary.BigEndian.Uint32(head[:])
	h, body, err := proto.ParseRequestHeader(head[proto.SizeLen:])
	if err != nil || size != uint32(len(head)-proto.SizeLen) || h.APIKey != proto.KeyPeer || h.APIVersion != 1 {
		t.Fatalf("first frame: size %d, header %+v, %v", size, h, err)
	}
	var req proto.PeerRequest
	if err := req.ReadFrom(body); err != nil || req.From != 1 || req.Kind != int8(KindHello) || len(req.Payload) != 0 {
		t.Fatalf("first frame body %+v, %v; want an empty hello from node 1", req, err)
	}
	// Close closes the connection, whatever output is still unsent: the peer reads to the end.
	p.Close()
	noPeerGoroutines(t)
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("reading to the end of the closed connection: %v", err)
	}
}

func TestTooLargeMessageDropped(t *testing.T) {
	a, b := startNode(t, 1, true), startNode(t, 2, true)
	p := startPeers(t, a, Options{MaxFrameBytes: 1 << 10}, b)
	waitFor(t, "the connection", func() bool { return p.Connected(2) })
	if p.Send(2, KindRaft, make([]byte, 1<<10)) {
		t.Error("a message larger than a frame was queued")
	}
	if !p.Send(2, KindRaft, make([]byte, 1<<10-proto.RequestHeaderLen-proto.PeerHeaderLen)) {
		t.Error("a message of exactly a frame was dropped")
	}
	waitFor(t, "the message", func() bool { return len(b.rec.from(1)) == 1 })
}

func TestInboundPassesConfiguredPeersOnly(t *testing.T) {
	p := New(Options{Self: 1, Peers: map[int32]string{1: "a:1", 2: "b:1", 3: "c:1"}})
	defer p.Close()
	rec := newRecorder()
	h := p.Inbound(rec.handle)
	h(2, KindRaft, []byte("from 2"))
	h(3, KindHeartbeat, nil)
	h(2, KindHello, nil)
	h(1, KindRaft, []byte("from this node"))
	h(4, KindRaft, []byte("a stranger"))
	h(-1, KindRaft, nil)
	if got := rec.from(2); len(got) != 1 || string(got[0].payload) != "from 2" {
		t.Errorf("from 2: %+v", got)
	}
	if got := rec.from(3); len(got) != 1 || got[0].kind != KindHeartbeat {
		t.Errorf("from 3: %+v", got)
	}
	if n := rec.total(); n != 2 {
		t.Errorf("%d messages passed, want 2", n)
	}
}

// peerFrame is a whole Peer request frame with a raw body.
func peerFrame(version int16, corr int32, body []byte) []byte {
	b, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: proto.KeyPeer, APIVersion: version, CorrelationID: corr})
	b = append(b, body...)
	proto.FinishFrame(b, start, 0)
	return b
}

func pingFrame(corr int32) []byte {
	b, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: proto.KeyPing, APIVersion: 1, CorrelationID: corr})
	b = (&proto.PingRequest{Echo: int64(corr)}).AppendTo(b)
	proto.FinishFrame(b, start, 0)
	return b
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	return c
}

// expectClosed reads c until the broker closes it, failing on any byte received.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("%s: read %d bytes (%v), want the connection closed unanswered", what, n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection stayed open", what)
	}
}

// expectPing reads one response frame and checks it answers Ping corr.
func expectPing(t *testing.T, c net.Conn, corr int32) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading the Ping response: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, frame); err != nil {
		t.Fatal(err)
	}
	h, body, err := proto.ParseResponseHeader(frame)
	var resp proto.PingResponse
	if err != nil || h.CorrelationID != corr || h.ErrorCode != 0 || resp.ReadFrom(body) != nil || resp.Echo != int64(corr) {
		t.Fatalf("response %+v %+v (%v), want the answer to Ping %d", h, resp, err, corr)
	}
}

func TestHostilePeerFramesCloseTheConnection(t *testing.T) {
	h, n := startNode(t, 1, true), startNode(t, 2, false)
	h.setGate(Options{}, &node{id: 7, addr: "127.0.0.1:1"}) // node 7 is a peer on loopback
	hello := (&proto.PeerRequest{From: 7, Kind: int8(KindHello), Payload: []byte{}}).AppendTo(nil)
	valid := (&proto.PeerRequest{From: 7, Kind: 1, Payload: []byte("ok")}).AppendTo(nil)
	bodies := map[string][]byte{
		"empty":                 nil,
		"only from":             proto.AppendInt32(nil, 7),
		"truncated payload":     valid[:len(valid)-1],
		"trailing byte":         append(bytes.Clone(valid), 0),
		"negative length":       append(valid[:5:5], 0xff, 0xff, 0xff, 0xfe),
		"length past the frame": append(valid[:5:5], 0x7f, 0xff, 0xff, 0xff),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		b := make([]byte, rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if (&proto.PeerRequest{}).ReadFrom(b) != nil {
			bodies[fmt.Sprintf("random %d", i)] = b
		}
	}
	for name, body := range bodies {
		c := dial(t, h.addr)
		if _, err := c.Write(append(peerFrame(1, 4, hello), peerFrame(1, 5, body)...)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, name)
		c.Close()
	}
	for _, version := range []int16{0, 2, -1} {
		c := dial(t, h.addr)
		if _, err := c.Write(append(peerFrame(1, 4, hello), peerFrame(version, 5, valid)...)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, fmt.Sprintf("version %d", version))
		c.Close()
	}
	// A broker that takes no peer traffic closes the connection at the first Peer frame.
	c := dial(t, n.addr)
	if _, err := c.Write(peerFrame(1, 5, hello)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, "a broker without a PeerHandler")
	c.Close()

	// Valid Peer frames are never answered: the Ping behind them gets the first response.
	c = dial(t, h.addr)
	defer c.Close()
	batch := peerFrame(1, 4, hello)
	for i := int32(0); i < 3; i++ {
		batch = append(batch, peerFrame(1, i, valid)...)
	}
	batch = append(batch, pingFrame(42)...)
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	expectPing(t, c, 42)
	if got := h.rec.from(7); len(got) != 3 || h.rec.total() != 3 {
		t.Fatalf("the handler got %d messages from node 7 and %d in all, want only the 3 valid ones", len(got), h.rec.total())
	}
	// Both brokers still serve.
	for _, b := range []*node{h, n} {
		pc := dial(t, b.addr)
		if _, err := pc.Write(pingFrame(43)); err != nil {
			t.Fatal(err)
		}
		expectPing(t, pc, 43)
		pc.Close()
	}
}

// TestPeersCloseWhileConnected: Close ends every goroutine, and nothing is sent after it.
func TestPeersCloseWhileConnected(t *testing.T) {
	a, b := startNode(t, 1, true), startNode(t, 2, true)
	p := startPeers(t, a, Options{}, b)
	waitFor(t, "the connection", func() bool { return p.Connected(2) })
	if !p.Send(2, KindRaft, []byte("before Close")) {
		t.Fatal("a message to a connected peer dropped")
	}
	waitFor(t, "the message", func() bool { return len(b.rec.from(1)) == 1 })
	p.Close()
	p.Close()
	if p.Connected(2) || p.Send(2, KindRaft, []byte("after Close")) {
		t.Fatal("a peer is up after Close")
	}
	noPeerGoroutines(t)
	if b.rec.total() != 1 {
		t.Fatalf("node 2 got %d messages, want the one sent before Close", b.rec.total())
	}
}
