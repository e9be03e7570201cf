// Package reactor runs the broker's network I/O on a few gnet event loops. It reads
// length-prefixed frames, copies each frame body once into a pooled buffer, and hands it to the
// request core (reactor/core), which answers through the connection's Session; responses leave
// with AsyncWritev in request order.
//
// The loops never block: no disk I/O, no blocking channel sends, no lock held across I/O. A
// connection whose in-flight requests reach their caps stops being read from its buffer until a
// response frees room (Session wakes the connection); one whose unread input grows past the
// limit is closed, since gnet cannot stop reading a socket.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor/core"
)

// Handler serves the frames of one protocol. HandleFrame runs on an event loop, must not block,
// and takes over the caller's reference to f (core.Server and kafka.Server implement it).
type Handler interface {
	HandleFrame(sess *core.Session, seq uint64, f *core.Frame)
}

// Options configures a Reactor.
type Options struct {
	// Addr is the binary protocol listener, host:port.
	Addr string
	// KafkaAddr is the Kafka protocol listener, host:port; empty: none.
	KafkaAddr string
	// Loops is the number of event loops; default 2.
	Loops int
	// MaxFrameBytes bounds a request frame; default 64 MiB.
	MaxFrameBytes int
	// Limits caps each connection's in-flight requests and bytes.
	Limits core.Limits
	// ReadBufferBytes is gnet's per-loop read buffer; default 256 KiB.
	ReadBufferBytes int
	// MaxOutboundBytes is how much written-but-unsent response data a connection may have before
	// the broker stops taking its requests (a slow consumer); default 8 MiB.
	MaxOutboundBytes int
	// MaxInflightBytes is the broker-wide budget of bytes in flight (frames, fetch responses,
	// unsent output) that Limits.Shared is made of when nil; default 512 MiB (memory.go).
	MaxInflightBytes int
	// FrameReadTimeout closes a connection whose client began a frame and has not sent all of
	// it within this time; default 30 s.
	FrameReadTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing and has nothing in flight for this
	// long; default 10 minutes, negative: never.
	IdleTimeout time.Duration
	Logger      *zap.Logger
	// Metrics counts connections, paused sessions and the budget's use (metrics.go); nil: none.
	Metrics *core.Metrics
}

// Reactor is the network engine.
type Reactor struct {
	gnet.BuiltinEventEngine

	opts   Options
	server Handler
	kafka  Handler
	logger *zap.Logger

	// stalled holds connections that stopped taking requests because their unsent output is over
	// MaxOutboundBytes. gnet has no "output drained" event, so OnTick wakes them to look again.
	stalled sync.Map // *conn → struct{}
	// watch keeps every connection's frame deadline and idle clock (memory.go).
	watch watcher

	// The engine, and the listeners that feed it (listen.go). Connections carry their listener
	// as their gnet context: OnOpen picks the protocol by it.
	engine    gnet.Engine
	listeners []*listener
	acceptWG  sync.WaitGroup
	// running is closed by the first OnTick: gnet starts the ticker after the event loops, so
	// from then on Engine.Register may be called.
	running     chan struct{}
	runningOnce sync.Once
	// engineDone is closed when gnet.Rotate has returned, with engineErr set.
	engineDone chan struct{}
	engineErr  error
	// stopping is set by Stop before it closes anything, so the goroutines that see the
	// listeners and the engine end can tell a stop from a failure; quit wakes backing-off loops.
	stopping atomic.Bool
	quit     chan struct{}
	stopOnce sync.Once
	// done is closed, and err set, when the reactor stops serving (finish).
	done       chan struct{}
	finishOnce sync.Once
	errMu      sync.Mutex
	err        error
}

// New returns a Reactor serving the binary protocol with server and, when o.KafkaAddr is set,
// the Kafka protocol with kafka. Start it with Start.
func New(o Options, server Handler, kafka Handler) *Reactor {
	if o.Loops <= 0 {
		o.Loops = 2
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = proto.DefaultMaxFrame
	}
	if o.ReadBufferBytes <= 0 {
		o.ReadBufferBytes = 256 << 10
	}
	if o.MaxOutboundBytes <= 0 {
		o.MaxOutboundBytes = 8 << 20
	}
	o = withMemoryDefaults(o)
	o = withMetrics(o)
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Reactor{
		opts: o, server: server, kafka: kafka, logger: o.Logger,
		running: make(chan struct{}), engineDone: make(chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
}

// Start binds the listeners and starts the event loops. It returns once they accept connections,
// or with the error that prevented it (an address in use, say). A port 0 binds a port the system
// chooses: Addrs tells which. Watch Done for the reactor failing on its own.
func (r *Reactor) Start() error {
	names := r.opts.Addr
	if r.opts.KafkaAddr != "" {
		names += ", " + r.opts.KafkaAddr
	}
	lns, err := r.listen()
	if err != nil {
		close(r.engineDone) // no engine to wait for
		return fmt.Errorf("reactor: listening on %s: %w", names, err)
	}
	socketPath, socketDir := engineSocket(os.TempDir(), "/tmp", "/dev/shm")
	if socketDir != "" {
		// Once the engine is up it holds the socket open; unlinking it leaves nothing to
		// connect to.
		defer os.RemoveAll(socketDir)
	} else {
		r.logger.Warn("no writable temporary directory: the network engine's internal listener is an abstract Unix socket",
			zap.String("socket", socketPath))
	}
	go r.runEngine(socketPath)
	select {
	case <-r.running:
	case <-r.engineDone:
		closeListeners(lns)
		err := r.engineErr
		if err == nil {
			err = errors.New("the engine stopped before it started")
		}
		return fmt.Errorf("reactor: starting the event loops for %s: %w", names, err)
	}
	r.listeners = lns
	for _, l := range lns {
		r.acceptWG.Add(1)
		go r.acceptLoop(l)
	}
	return nil
}

// Stop stops accepting connections, then closes every connection and waits for the loops to
// end. The engine is stopped even if the accept loops outlast ctx.
func (r *Reactor) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.stopping.Store(true)
		close(r.quit)
		closeListeners(r.listeners)
		accepting := make(chan struct{})
		go func() {
			r.acceptWG.Wait()
			close(accepting)
		}()
		select {
		case <-accepting:
		case <-ctx.Done():
			err = fmt.Errorf("reactor: waiting for the accept loops: %w", ctx.Err())
		}
		select {
		case <-r.engineDone: // never started, or already ended on its own
		default:
			if stopErr := r.engine.Stop(ctx); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
			select {
			case <-r.engineDone:
			case <-ctx.Done():
			}
		}
		r.finish(nil)
	})
	return err
}

// OnBoot records the engine.
func (r *Reactor) OnBoot(eng gnet.Engine) gnet.Action {
	r.engine = eng
	return gnet.None
}

// conn is one connection's state. Everything except the Transport methods is touched only by
// the connection's event loop.
type conn struct {
	c       gnet.Conn
	sess    *core.Session
	handler Handler
	logger  *zap.Logger

	// asm is the frame being read: allocated as its bytes arrive, within the budget.
	asm   core.Assembly
	watch connWatch
	// metrics are the listener's connection counters; closeReason is why the broker closes the
	// connection (a core.CloseReason; 0, ClosedByClient, until it does). See metrics.go.
	metrics     *core.ListenerMetrics
	closeReason atomic.Int32
}

// Writev queues r on the connection's loop; r.Written runs there after the write.
func (c *conn) Writev(r *core.Response) error {
	cb, _ := r.TransportData.(gnet.AsyncCallback)
	if cb == nil {
		// Bound once per pooled Response and kept across reuse: a write allocates no closure.
		cb = func(c gnet.Conn, err error) error {
			r.Written(err)
			noteWritten(c)
			return nil
		}
		r.TransportData = cb
	}
	return c.c.AsyncWritev(r.Bufs, cb)
}

// Wake resumes frame processing on the loop.
func (c *conn) Wake() { _ = c.c.Wake(nil) }

// Close closes the connection.
func (c *conn) Close() {
	c.noteClosing(core.ClosedByRequest) // unless a reason was given first
	_ = c.c.Close()
}

// OnOpen sets up the connection's session.
func (r *Reactor) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if o, ok := c.Context().(*outbound); ok {
		o.opened.Store(true) // an outbound connection (outbound.go)
		return nil, gnet.None
	}
	l, ok := c.Context().(*listener)
	if !ok {
		// Not one of ours: only the engine's internal socket could hand it over (reachable only
		// in its abstract-socket fallback). Serve nothing through it.
		r.logger.Warn("closing a connection that did not come through a listener")
		return nil, gnet.Close
	}
	cs := &conn{c: c, logger: r.logger, handler: l.handler, metrics: l.metrics}
	cs.metrics.Opened()
	cs.sess = core.NewSession(cs, r.opts.Limits)
	cs.sess.SetClientAddr(c.RemoteAddr())
	c.SetContext(cs)
	r.watchOpen(cs)
	return nil, gnet.None
}

// OnClose releases the connection's state. Responses still in flight are released unsent.
func (r *Reactor) OnClose(c gnet.Conn, err error) gnet.Action {
	if o, ok := c.Context().(*outbound); ok {
		o.h.OutboundClosed(err)
		return gnet.None
	}
	cs, _ := c.Context().(*conn)
	if cs == nil {
		return gnet.None
	}
	cs.sess.Close()
	r.stalled.Delete(cs)
	r.watchClose(cs)
	cs.metrics.Closed(r.closedReason(cs))
	return gnet.None
}

// OnTraffic takes every whole frame the connection has buffered. gnet does not call again for
// bytes it already holds, so the loop runs until less than a frame is left, or until the session
// is paused (it wakes the connection when it has room), or the budget is spent (the ticker wakes
// the connection to try again).
func (r *Reactor) OnTraffic(c gnet.Conn) gnet.Action {
	cs, ok := c.Context().(*conn)
	if !ok {
		return onOutboundTraffic(c)
	}
	r.noteTraffic(cs, c)
	action := r.takeFrames(cs, c)
	if action == gnet.None {
		r.noteLeft(cs, c)
	}
	return action
}

func (r *Reactor) takeFrames(cs *conn, c gnet.Conn) gnet.Action {
	for {
		if cs.asm.Active() {
			if !cs.asm.Complete() {
				buffered := c.InboundBuffered()
				if buffered == 0 {
					return gnet.None
				}
				room := cs.asm.Room(buffered, r.opts.Limits.Shared)
				if room == nil {
					// The broker-wide budget is spent: leave the bytes buffered and try again at
					// the next tick. gnet keeps reading the socket, so bound what piles up.
					r.stalled.Store(cs, struct{}{})
					return r.boundUnread(cs, c, "while the memory budget is spent")
				}
				n, _ := c.Read(room)
				if !cs.asm.Filled(n) {
					continue
				}
			}
			f, seq := cs.asm.Take()
			cs.handler.HandleFrame(cs.sess, seq, f)
			continue
		}
		if c.InboundBuffered() < proto.SizeLen {
			return gnet.None
		}
		if c.OutboundBuffered() > r.opts.MaxOutboundBytes {
			// A slow reader: take no more requests until its responses have gone out, so it
			// cannot make the broker buffer without bound.
			r.stalled.Store(cs, struct{}{})
			return gnet.None
		}
		prefix, err := c.Peek(proto.SizeLen)
		if err != nil {
			return gnet.None
		}
		size, _, err := proto.FrameSize(prefix, r.opts.MaxFrameBytes)
		if err != nil {
			// The stream cannot be resynchronised after a bad size: close, as Kafka does.
			cs.logger.Warn("closing connection after a bad frame", zap.String("remote", cs.watch.remote), zap.Error(err))
			cs.noteClosing(core.ClosedBadFrame)
			return gnet.Close
		}
		seq, ok := cs.sess.Begin(size)
		if !ok {
			// Paused: the frame stays buffered until a response frees room and wakes us. Bound
			// what an impatient client can pile up meanwhile.
			return r.boundUnread(cs, c, "while its requests are in flight")
		}
		_, _ = c.Discard(proto.SizeLen)
		// The frame's buffer is allocated as its bytes arrive, not from the size it announces.
		cs.asm.Start(size, seq)
	}
}

// boundUnread closes a paused connection whose unread input passes a whole frame and 1 MiB.
func (r *Reactor) boundUnread(cs *conn, c gnet.Conn, why string) gnet.Action {
	if c.InboundBuffered() > r.opts.MaxFrameBytes+(1<<20) {
		cs.logger.Warn("closing connection: too much unread input "+why,
			zap.String("remote", cs.watch.remote), zap.Int("buffered", c.InboundBuffered()))
		cs.noteClosing(core.ClosedUnreadInput)
		return gnet.Close
	}
	return gnet.None
}

// stalledCheckInterval is how often stalled connections look at their output again.
const stalledCheckInterval = 20 * time.Millisecond

// OnTick wakes connections stalled on unsent output or on the memory budget, so they check again
// on their loop, and closes connections past their frame deadline or idle timeout. It runs on
// its own goroutine.
func (r *Reactor) OnTick() (time.Duration, gnet.Action) {
	r.runningOnce.Do(func() { close(r.running) })
	r.stalled.Range(func(k, _ any) bool {
		r.stalled.Delete(k)
		k.(*conn).Wake()
		return true
	})
	r.tickWatch()
	return stalledCheckInterval, gnet.None
}

// AdvertisedAddr turns a listener address into one clients can reach: an unspecified host
// (0.0.0.0, ::, empty) becomes this machine's first non-loopback IPv4 address, or 127.0.0.1.
func AdvertisedAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen, nil
	}
	return net.JoinHostPort(reachableIPv4(), port), nil
}

func reachableIPv4() string {
	ifaces, err := net.Interfaces()
	if err == nil {
		for _, iface := range ifaces {
			if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, _ := iface.Addrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
					return ipn.IP.String()
				}
			}
		}
	}
	return "127.0.0.1"
}
