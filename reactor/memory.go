package reactor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor/core"
)

// Memory and time limits of connections. Bytes in flight (frames being read or served, fetch
// responses being built, responses the client has not read) are drawn from one broker-wide
// core.Budget, each connection at most its share (Limits.MaxInFlightBytes): a frame is allocated
// as its bytes arrive (core.Assembly), a fetch is sized before it reads, and unsent output is
// counted while it waits in gnet's buffers. A client that starts a frame and does not finish it
// within FrameReadTimeout is disconnected, and so is one that sends nothing for IdleTimeout.

// Defaults of the connection time limits.
const (
	DefaultFrameReadTimeout = 30 * time.Second
	DefaultIdleTimeout      = 10 * time.Minute // Kafka's connections.max.idle.ms
)

// stuckReaderTimeout is how long a client may leave its responses unread (not one byte taken)
// while the budget is half spent or more, before the broker closes its connection: a consumer
// that reads, however slowly, is never cut off, and one that does not cannot keep memory other
// clients need.
const stuckReaderTimeout = 2 * time.Second

// withMemoryDefaults fills in the budget and the connection timeouts.
func withMemoryDefaults(o Options) Options {
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = core.DefaultMaxInflightBytes
	}
	if o.Limits.Shared == nil {
		o.Limits.Shared = core.NewBudget(o.MaxInflightBytes)
	}
	if o.FrameReadTimeout <= 0 {
		o.FrameReadTimeout = DefaultFrameReadTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return o
}

// Budget is the broker-wide budget of bytes in flight the reactor's connections draw from.
func (r *Reactor) Budget() *core.Budget { return r.opts.Limits.Shared }

// watcher is the reactor's view of every connection's clocks, checked from OnTick.
type watcher struct {
	conns sync.Map // *conn → struct{}
	// clock is the time (Unix nanoseconds) of the last tick: connections stamp their events with
	// it instead of reading the clock on every read.
	clock atomic.Int64
	// lastScan is when OnTick last checked the deadlines; OnTick's goroutine only.
	lastScan int64
}

// connWatch is a connection's part of the watch.
type connWatch struct {
	reactor *Reactor
	remote  string // the remote address, kept for log lines written off the connection's loop
	// partialSince is when the client began a frame it has not finished sending (0: none).
	partialSince atomic.Int64
	// lastActive is when bytes last arrived.
	lastActive atomic.Int64
	// drainedAt is when the client last took some of its unsent output (or had none).
	drainedAt atomic.Int64
	// closing is set once the watch has decided to close the connection.
	closing atomic.Bool
	// The loop's last look at the connection's buffers.
	seenInbound int
	seenUnsent  int
}

func (r *Reactor) now() int64 {
	if t := r.watch.clock.Load(); t != 0 {
		return t
	}
	return time.Now().UnixNano()
}

// watchOpen starts watching a new connection. On its loop.
func (r *Reactor) watchOpen(cs *conn) {
	cs.watch.reactor = r
	if a := cs.c.RemoteAddr(); a != nil {
		cs.watch.remote = a.String()
	}
	cs.watch.lastActive.Store(r.now())
	cs.watch.drainedAt.Store(r.now())
	r.watch.conns.Store(cs, struct{}{})
}

// watchClose ends the watch of a closed connection and returns what it held to the budget. On
// its loop.
func (r *Reactor) watchClose(cs *conn) {
	r.watch.conns.Delete(cs)
	cs.asm.Abort()
	cs.sess.SetUnsent(0)
}

// noteTraffic runs as OnTraffic starts: new bytes make the connection active, and unsent output
// is counted again (gnet drains it without telling).
func (r *Reactor) noteTraffic(cs *conn, c gnet.Conn) {
	if c.InboundBuffered() != cs.watch.seenInbound {
		cs.watch.lastActive.Store(r.now())
	}
	r.noteUnsent(cs, c)
}

// noteUnsent counts the connection's unsent output against its share and the budget. While
// some is left, the ticker wakes the connection to count again. On its loop.
func (r *Reactor) noteUnsent(cs *conn, c gnet.Conn) {
	n := c.OutboundBuffered()
	if n != cs.watch.seenUnsent {
		if n < cs.watch.seenUnsent || cs.watch.seenUnsent == 0 {
			// The client took some, or this output is new: the unread clock starts now.
			cs.watch.drainedAt.Store(r.now())
		}
		cs.watch.seenUnsent = n
		cs.sess.SetUnsent(n)
	}
	if n > 0 {
		r.stalled.Store(cs, struct{}{})
	}
}

// noteWritten runs after a response was written (or dropped) on the connection's loop.
func noteWritten(c gnet.Conn) {
	if c == nil {
		return
	}
	if cs, ok := c.Context().(*conn); ok {
		cs.watch.reactor.noteUnsent(cs, c)
	}
}

// noteLeft runs as OnTraffic returns without closing: the frame deadline runs while the client
// owes bytes of a frame it began (or while the budget keeps the broker from reading one), and
// stops when the frame is complete.
func (r *Reactor) noteLeft(cs *conn, c gnet.Conn) {
	buffered := c.InboundBuffered()
	cs.watch.seenInbound = buffered
	partial := false
	switch {
	case cs.asm.Active():
		partial = !cs.asm.Complete()
	case buffered == 0:
	case buffered < proto.SizeLen:
		partial = true
	default:
		// Paused with a frame buffered: the client owes the rest of it, if any.
		if prefix, err := c.Peek(proto.SizeLen); err == nil {
			if size, _, err := proto.FrameSize(prefix, r.opts.MaxFrameBytes); err == nil {
				partial = buffered-proto.SizeLen < size
			}
		}
	}
	since := cs.watch.partialSince.Load()
	if partial && since == 0 {
		cs.watch.partialSince.Store(r.now())
	} else if !partial && since != 0 {
		cs.watch.partialSince.Store(0)
	}
}

// scanInterval is how often OnTick checks the deadlines: often enough to close a connection
// within an eighth of its timeout late, at most once a second.
func (r *Reactor) scanInterval() time.Duration {
	d := r.opts.FrameReadTimeout
	if r.opts.IdleTimeout > 0 {
		d = min(d, r.opts.IdleTimeout)
	}
	return min(max(d/8, stalledCheckInterval), time.Second)
}

// tickWatch advances the clock and, every scanInterval, closes the connections past a deadline.
// OnTick's goroutine only; closing is asynchronous (gnet runs it on the connection's loop).
func (r *Reactor) tickWatch() {
	now := time.Now().UnixNano()
	r.watch.clock.Store(now)
	if now-r.watch.lastScan < int64(r.scanInterval()) {
		return
	}
	r.watch.lastScan = now
	frameTimeout, idleTimeout := int64(r.opts.FrameReadTimeout), int64(r.opts.IdleTimeout)
	pressed := r.Budget().Pressed()
	r.watch.conns.Range(func(k, _ any) bool {
		cs := k.(*conn)
		w := &cs.watch
		if since := w.partialSince.Load(); since != 0 && now-since > frameTimeout {
			if w.closing.CompareAndSwap(false, true) {
				r.logger.Warn("closing connection: a request frame did not arrive in time",
					zap.String("remote", w.remote), zap.Duration("frame_read_timeout", r.opts.FrameReadTimeout))
				cs.noteClosing(core.ClosedFrameTimeout)
				cs.Close()
			}
			return true
		}
		if unsent := cs.sess.Unsent(); pressed && unsent > 0 && now-w.drainedAt.Load() > int64(stuckReaderTimeout) {
			if w.closing.CompareAndSwap(false, true) {
				r.logger.Warn("closing connection: its client does not read its responses and the memory budget is short",
					zap.String("remote", w.remote), zap.Int("unsent_bytes", unsent), zap.Duration("unread_for", time.Duration(now-w.drainedAt.Load())),
					zap.Int64("budget_used", r.Budget().Used()), zap.Int64("budget", r.Budget().Limit()))
				cs.noteClosing(core.ClosedUnreadResponses)
				cs.Close()
			}
			return true
		}
		if idleTimeout > 0 && now-w.lastActive.Load() > idleTimeout && w.partialSince.Load() == 0 &&
			cs.sess.Unsent() == 0 && cs.sess.InFlight() == 0 {
			if w.closing.CompareAndSwap(false, true) {
				r.logger.Info("closing idle connection",
					zap.String("remote", w.remote), zap.Duration("idle_timeout", r.opts.IdleTimeout))
				cs.noteClosing(core.ClosedIdle)
				cs.Close()
			}
		}
		return true
	})
}
