// Package peer keeps this node's connections to the other nodes of its cluster and sends them
// messages: consensus traffic and heartbeats, which tolerate loss.
//
// For each other node a goroutine dials its binary-protocol listener and hands the connection to
// the network engine (reactor.RegisterOutbound), so every write goes out through an event loop
// with AsyncWritev and none blocks one. Messages leave as binary-protocol Peer requests (API key
// 20, codec/proto/20_peer.go), the first on each connection a hello that proves which node
// opened it (auth.go); the other node never answers them, and its request core admits the
// connection with Admit and hands the messages after the hello to core.Options.PeerHandler on
// its event loop.
//
// Send never blocks: it copies the message into the peer's bounded queue, or drops it (the queue
// is full, or no connection is up: stale consensus traffic is worth nothing after a reconnect).
// One writer goroutine per peer sends the queue in batches, one AsyncWritev at a time, and waits
// for the engine to have taken each batch, and for the socket to have taken most of it, before
// the next: what a slow or stuck peer costs this node is bounded by MaxQueueBytes and
// MaxUnsentBytes. A connection that fails or closes is dialed again with a doubling backoff.
package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
)

// Message kinds. The payload of each is the cluster code's business; KindHello is the first
// message on every connection, sent and checked by this package (auth.go).
const (
	KindHello     uint8 = 0
	KindRaft      uint8 = 1
	KindHeartbeat uint8 = 2
)

// ErrClosed reports that the Peers were closed.
var ErrClosed = errors.New("peer: closed")

// Handler takes a message from another node: core.Options.PeerHandler's type. It runs on an
// event loop, must not block, and must copy payload to keep it.
type Handler = core.PeerHandler

// Registrar hands a dialed connection to the network engine: *reactor.Reactor.
type Registrar interface {
	RegisterOutbound(nc net.Conn, h reactor.OutboundHandler) (gnet.Conn, error)
}

// Options configures Peers.
type Options struct {
	// Self is this node's id, the sender of every message.
	Self int32
	// Peers are the other nodes' binary-protocol addresses (their THORSTREAM_ADDR, host:port) by
	// node id; an entry for Self is ignored.
	Peers map[int32]string
	// DialTimeout bounds one connection attempt; default 1 s.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the pause before dialing again after a failed attempt or a
	// closed connection; it doubles at each failure in a row, from BackoffMin (default 100 ms)
	// to BackoffMax (default 2 s), and starts again from BackoffMin after a connection that
	// stayed up for BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// MaxQueueBytes bounds each peer's messages queued and being written (their frames); default
	// 64 MiB. Send drops what does not fit.
	MaxQueueBytes int
	// MaxUnsentBytes is how much written output a connection may hold that its socket has not
	// taken (a peer that reads slowly) before the writer waits; default 4 MiB.
	MaxUnsentBytes int
	// MaxFrameBytes is the largest frame the other nodes take (their reactor.Options
	// MaxFrameBytes); a larger message is dropped. Default 64 MiB.
	MaxFrameBytes int
	// Secret is the cluster's shared secret (THORSTREAM_CLUSTER_SECRET), the same on every
	// node: the hellos this node sends prove it, and Admit takes only hellos that do. Empty: no
	// secret, and Admit takes the hellos of connections from the peers' addresses (auth.go).
	Secret string
	// Now is the clock hellos are timed and checked by; default time.Now.
	Now    func() time.Time
	Logger *zap.Logger
}

// Stats are one peer's counters since New.
type Stats struct {
	Connected    bool
	Connects     uint64 // connections made
	DialFailures uint64 // connection attempts that failed
	Sent         uint64 // messages the engine wrote (hellos included)
	Dropped      uint64 // messages Send refused, or that were queued when their connection closed
	QueuedBytes  int    // frames queued or being written
	// UnsentBytes is the connection's written output the socket had not taken when the engine
	// last said: above MaxUnsentBytes, the writer waits.
	UnsentBytes int
}

// Peers is this node's set of peer connections. Its methods are safe from any goroutine.
type Peers struct {
	o     Options
	log   *zap.Logger
	peers map[int32]*peer // fixed by New
	ids   []int32
	// secret is Options.Secret; nonces the hellos admitted recently (auth.go).
	secret []byte
	nonces nonceSet

	quit   chan struct{}
	ctx    context.Context // cancelled by Close: ends dials
	cancel context.CancelFunc

	mu      sync.Mutex // guards started and closed, so Start's wg.Add never races Close's Wait
	started bool
	closed  bool
	wg      sync.WaitGroup
}

// New returns Peers for o; nothing is dialed until Start.
func New(o Options) *Peers {
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 2 * time.Second
	}
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = 64 << 20
	}
	if o.MaxUnsentBytes <= 0 {
		o.MaxUnsentBytes = 4 << 20
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = proto.DefaultMaxFrame
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	p := &Peers{o: o, log: o.Logger, peers: make(map[int32]*peer, len(o.Peers)), quit: make(chan struct{}), secret: []byte(o.Secret)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for id, addr := range o.Peers {
		if id == o.Self {
			continue
		}
		pe := &peer{p: p, id: id, addr: addr, wake: make(chan struct{}, 1),
			log: o.Logger.With(zap.Int32("peer", id), zap.String("addr", addr))}
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil {
				pe.ips.Store(&[]netip.Addr{ip.Unmap()}) // host names are resolved before each dial
			}
		}
		p.peers[id] = pe
		p.ids = append(p.ids, id)
	}
	slices.Sort(p.ids)
	if len(p.ids) > 0 && len(p.secret) == 0 {
		p.log.Warn("peer connections are not authenticated by a cluster secret: any host at a peer's address is trusted as that node; set the same THORSTREAM_CLUSTER_SECRET on every node")
	}
	return p
}

// Start begins dialing every peer through reg. Calls after the first, or after Close, do
// nothing.
func (p *Peers) Start(reg Registrar) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	for _, id := range p.ids {
		p.wg.Add(1)
		go p.peers[id].run(reg)
	}
}

// Close stops dialing, closes the connections and waits for the peers' goroutines to end. Safe
// to call more than once.
func (p *Peers) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.quit)
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Send queues a message of kind with a copy of payload for node to, and returns at once. It
// returns false when the message is dropped: to is not a peer, no connection to it is up, its
// queue is full, or the message is larger than a frame.
func (p *Peers) Send(to int32, kind uint8, payload []byte) bool {
	pe := p.peers[to]
	if pe == nil {
		return false
	}
	return pe.send(kind, payload)
}

// Connected reports whether a connection to node to is up.
func (p *Peers) Connected(to int32) bool {
	pe := p.peers[to]
	return pe != nil && pe.up.Load()
}

// IDs returns the peers' node ids, sorted.
func (p *Peers) IDs() []int32 { return slices.Clone(p.ids) }

// Stats returns node to's counters (zero for a node that is not a peer).
func (p *Peers) Stats(to int32) Stats {
	pe := p.peers[to]
	if pe == nil {
		return Stats{}
	}
	pe.mu.Lock()
	queued := pe.queued
	pe.mu.Unlock()
	return Stats{Connected: pe.up.Load(), Connects: pe.connects.Load(), DialFailures: pe.dialFailures.Load(),
		Sent: pe.sent.Load(), Dropped: pe.dropped.Load(), QueuedBytes: queued, UnsentBytes: int(pe.unsent.Load())}
}

// Inbound returns a handler for core.Options.PeerHandler that passes h the messages of the
// configured peers, hellos aside, and ignores those of any other sender. The core hands it only
// the messages of connections Admit admitted (core.Options.PeerAdmit): this is a second check.
func (p *Peers) Inbound(h Handler) Handler {
	return func(from int32, kind uint8, payload []byte) {
		if kind == KindHello || p.peers[from] == nil {
			return
		}
		h(from, kind, payload)
	}
}

// pause waits d, or until Close; false: closed.
func (p *Peers) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.quit:
		return false
	}
}

func (p *Peers) closing() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// Batch bounds: gnet hands a batch to one writev, which takes at most IOV_MAX (1024) buffers.
const (
	maxBatchFrames = 256
	maxBatchBytes  = 1 << 20
	// unsentPoll is how often a writer held back by unsent output looks again: gnet has no
	// "output drained" event.
	unsentPoll = 10 * time.Millisecond
	// maxPooledFrame is the largest frame buffer that goes back to the pool.
	maxPooledFrame = 256 << 10
	// frameOverhead is a Peer frame's bytes besides the payload.
	frameOverhead = proto.SizeLen + proto.RequestHeaderLen + proto.PeerHeaderLen
)

// peer is one other node: its dial loop, connection and queue.
type peer struct {
	p    *Peers
	id   int32
	addr string
	log  *zap.Logger

	// up is open, readable without the lock (Send's fast path, Connected).
	up atomic.Bool
	// ips are the addresses addr resolved to, last time (auth.go); nil: none yet.
	ips atomic.Pointer[[]netip.Addr]
	// wake tells the writer that the queue has frames.
	wake chan struct{}

	mu     sync.Mutex
	open   bool                         // a connection takes messages
	queue  []*bytebufferpool.ByteBuffer // encoded frames; queue[head:] wait
	head   int
	queued int   // bytes of queue[head:] and of the batch being written
	corr   int32 // the last correlation id given

	connects, dialFailures, sent, dropped atomic.Uint64
	unsent                                atomic.Int64
}

func (pe *peer) send(kind uint8, payload []byte) bool {
	n := frameOverhead + len(payload)
	if !pe.up.Load() || n-proto.SizeLen > pe.p.o.MaxFrameBytes || n > pe.p.o.MaxQueueBytes {
		pe.dropped.Add(1)
		return false
	}
	buf := pe.p.encode(kind, payload)
	pe.mu.Lock()
	if !pe.open || pe.queued+n > pe.p.o.MaxQueueBytes {
		pe.mu.Unlock()
		putBuf(buf)
		pe.dropped.Add(1)
		return false
	}
	pe.enqueue(buf)
	pe.mu.Unlock()
	pe.signal()
	return true
}

// enqueue appends buf, numbering it. With mu held.
func (pe *peer) enqueue(buf *bytebufferpool.ByteBuffer) {
	pe.corr++
	binary.BigEndian.PutUint32(buf.B[proto.SizeLen+4:], uint32(pe.corr))
	pe.queue = append(pe.queue, buf)
	pe.queued += len(buf.B)
}

func (pe *peer) signal() {
	select {
	case pe.wake <- struct{}{}:
	default:
	}
}

// encode returns the Peer frame of a message, its correlation id left 0.
func (p *Peers) encode(kind uint8, payload []byte) *bytebufferpool.ByteBuffer {
	buf := getBuf(frameOverhead + len(payload))
	b, start := proto.AppendRequestFrame(buf.B[:0], proto.RequestHeader{APIKey: proto.KeyPeer, APIVersion: proto.Version})
	b = proto.AppendInt32(b, p.o.Self)
	b = proto.AppendInt8(b, int8(kind))
	b = proto.AppendInt32(b, int32(len(payload)))
	b = append(b, payload...)
	proto.FinishFrame(b, start, 0)
	buf.B = b
	return buf
}

func getBuf(n int) *bytebufferpool.ByteBuffer {
	if n > maxPooledFrame {
		return &bytebufferpool.ByteBuffer{B: make([]byte, 0, n)}
	}
	b := bytebufferpool.Get()
	if cap(b.B) < n {
		b.B = make([]byte, 0, n)
	}
	return b
}

func putBuf(b *bytebufferpool.ByteBuffer) {
	if cap(b.B) <= maxPooledFrame {
		bytebufferpool.Put(b)
	}
}

// run dials the peer and serves each connection until Close.
func (pe *peer) run(reg Registrar) {
	defer pe.p.wg.Done()
	var (
		backoff  time.Duration
		failures int  // attempts failed since the last connection
		down     bool // the peer's being unreachable has been logged
		// quick counts the connections in a row that closed within quickClose: a peer that
		// refuses this node's hello. From the second on they are logged once, not each.
		quick int
	)
	next := func() time.Duration {
		backoff = min(max(2*backoff, pe.p.o.BackoffMin), pe.p.o.BackoffMax)
		return backoff
	}
	for !pe.p.closing() {
		gc, oc, err := pe.connect(reg)
		if err != nil {
			if pe.p.closing() {
				return
			}
			pe.dialFailures.Add(1)
			failures++
			if !down {
				pe.log.Warn("cannot reach peer; dialing again with backoff, logged again once it connects", zap.Error(err))
				down = true
			}
			if !pe.p.pause(next()) {
				return
			}
			continue
		}
		conn := pe.connects.Add(1)
		var stayed *time.Timer
		if quick < 2 {
			pe.log.Info("connected to peer", zap.Int("failed_attempts", failures))
		} else {
			// Say so once this one outlives the quick closes.
			closes := quick
			stayed = time.AfterFunc(quickClose, func() {
				if pe.connects.Load() == conn && pe.up.Load() {
					pe.log.Info("connected to peer", zap.Int("quick_closes", closes))
				}
			})
		}
		failures, down = 0, false
		since := time.Now()
		err = pe.serve(gc, oc)
		if stayed != nil {
			stayed.Stop()
		}
		if pe.p.closing() {
			return
		}
		up := time.Since(since)
		if up < quickClose {
			quick++
		} else {
			quick = 0
		}
		switch {
		case quick < 2:
			pe.log.Warn("disconnected from peer", zap.Duration("up", up), zap.Error(err))
		case quick == 2:
			pe.log.Warn("peer connections keep closing right after they open: the peer may be refusing this node's hello "+
				"(another THORSTREAM_CLUSTER_SECRET, or this node is not among its peers: its log says why); "+
				"dialing again with backoff, logged again once one stays up", zap.Error(err))
		}
		down = true // the failures that may follow are the same state
		if up >= pe.p.o.BackoffMax {
			backoff = 0
		}
		if !pe.p.pause(next()) {
			return
		}
	}
}

// connect dials the peer and registers the connection with the engine.
func (pe *peer) connect(reg Registrar) (gnet.Conn, *outConn, error) {
	pe.resolve(pe.p.ctx)
	d := net.Dialer{Timeout: pe.p.o.DialTimeout, KeepAliveConfig: keepAlive, Control: dialControl}
	nc, err := d.DialContext(pe.p.ctx, "tcp", pe.addr)
	if err != nil {
		return nil, nil, err
	}
	oc := &outConn{closed: make(chan struct{})}
	gc, err := reg.RegisterOutbound(nc, oc)
	if err != nil {
		return nil, nil, err
	}
	return gc, oc, nil
}

// quickClose is how long a connection must stay up not to count as closed right after opening.
const quickClose = time.Second

// keepAlive probes an idle connection, so a peer that vanished is noticed even when nothing is
// written.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: time.Second, Count: 5}

// outConn is one registered connection's close, reported by the engine.
type outConn struct {
	once   sync.Once
	err    error // set before closed is closed
	closed chan struct{}
}

// OutboundClosed implements reactor.OutboundHandler.
func (o *outConn) OutboundClosed(err error) {
	o.once.Do(func() {
		if err == nil {
			err = net.ErrClosed
		}
		o.err = err
		close(o.closed)
	})
}

// writeResult is what a write's callback reports from the loop.
type writeResult struct {
	err    error
	unsent int // the connection's output gnet holds, not yet taken by the socket
}

// serve makes the connection take messages, hello first, and writes the queue until the
// connection closes or Close; it returns why it ended.
func (pe *peer) serve(gc gnet.Conn, oc *outConn) error {
	hello := pe.p.encode(KindHello, pe.p.helloPayload(pe.id, pe.p.o.Now()))
	pe.mu.Lock()
	pe.enqueue(hello)
	pe.open = true
	pe.up.Store(true)
	pe.mu.Unlock()
	pe.signal()
	defer pe.shutdown()

	// One write is outstanding at a time, so its callback never blocks the loop on results.
	results := make(chan writeResult, 1)
	cb := func(c gnet.Conn, err error) error {
		res := writeResult{err: err}
		if err == nil {
			res.unsent = c.OutboundBuffered()
		}
		results <- res
		return nil
	}
	write := func(batch [][]byte) (writeResult, error) {
		if err := gc.AsyncWritev(batch, cb); err != nil {
			_ = gc.Close()
			return writeResult{}, err
		}
		select {
		case res := <-results:
			pe.unsent.Store(int64(res.unsent))
			return res, nil
		case <-oc.closed:
			return writeResult{}, oc.err
		case <-pe.p.quit:
			_ = gc.Close()
			return writeResult{}, ErrClosed
		}
	}
	var (
		taken []*bytebufferpool.ByteBuffer
		batch [][]byte
	)
	for {
		select {
		case <-pe.wake:
		case <-oc.closed:
			return oc.err
		case <-pe.p.quit:
			_ = gc.Close()
			return ErrClosed
		}
		for {
			var bytes int
			taken, bytes = pe.take(taken[:0])
			if len(taken) == 0 {
				break
			}
			batch = batch[:0]
			for _, b := range taken {
				batch = append(batch, b.B)
			}
			res, err := write(batch)
			if err != nil {
				// The batch may still be written: its buffers are left to the collector.
				return err
			}
			pe.written(taken, bytes, res.err == nil)
			clear(batch)
			if res.err != nil {
				_ = gc.Close()
				return res.err
			}
			for res.unsent > pe.p.o.MaxUnsentBytes {
				// A peer that reads slowly: wait for the socket to take the output, asking the
				// loop with an empty write how much is left.
				if !pe.p.pause(unsentPoll) {
					_ = gc.Close()
					return ErrClosed
				}
				if res, err = write(nil); err != nil {
					return err
				}
				if res.err != nil {
					_ = gc.Close()
					return res.err
				}
			}
		}
	}
}

// take moves up to a batch of frames, at least one if any wait, from the queue to dst and
// returns them with their bytes, which stay counted in queued until written.
func (pe *peer) take(dst []*bytebufferpool.ByteBuffer) ([]*bytebufferpool.ByteBuffer, int) {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	bytes := 0
	for pe.head < len(pe.queue) && len(dst) < maxBatchFrames {
		b := pe.queue[pe.head]
		if len(dst) > 0 && bytes+len(b.B) > maxBatchBytes {
			break
		}
		dst = append(dst, b)
		bytes += len(b.B)
		pe.queue[pe.head] = nil
		pe.head++
	}
	switch {
	case pe.head == len(pe.queue):
		pe.queue, pe.head = pe.queue[:0], 0
	case pe.head >= 1024 && 2*pe.head >= len(pe.queue):
		n := copy(pe.queue, pe.queue[pe.head:])
		clear(pe.queue[n:])
		pe.queue, pe.head = pe.queue[:n], 0
	}
	return dst, bytes
}

// written releases a batch whose write has completed: ok, the engine wrote it; otherwise the
// connection had failed or closed.
func (pe *peer) written(taken []*bytebufferpool.ByteBuffer, bytes int, ok bool) {
	pe.mu.Lock()
	pe.queued -= bytes
	pe.mu.Unlock()
	if ok {
		pe.sent.Add(uint64(len(taken)))
	} else {
		pe.dropped.Add(uint64(len(taken)))
	}
	for i, b := range taken {
		putBuf(b)
		taken[i] = nil
	}
}

// shutdown stops taking messages and drops what is queued.
func (pe *peer) shutdown() {
	pe.mu.Lock()
	pe.open = false
	pe.up.Store(false)
	waiting := pe.queue[pe.head:]
	pe.dropped.Add(uint64(len(waiting)))
	for _, b := range waiting {
		putBuf(b)
	}
	clear(pe.queue)
	pe.queue, pe.head, pe.queued = pe.queue[:0], 0, 0
	pe.mu.Unlock()
	pe.unsent.Store(0)
}
