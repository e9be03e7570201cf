package reactor

// The broker's listening sockets are its own, not gnet's. gnet's acceptor stops the whole engine
// on any accept error other than EAGAIN, EINTR, ECONNRESET or ECONNABORTED: one accept() that
// fails with EMFILE ("too many open files") would close every connection and both listeners. So
// each listener is a net.TCPListener accepted in its own goroutine, which backs off on errors
// such as EMFILE and ENFILE and keeps listening; every accepted connection is handed to the
// engine with Engine.Register, with the listener it came from as the connection's context.
//
// gnet v2 refuses Engine.Register (and Engine.Stop) on an engine without a listener, so the
// engine keeps one of its own: a Unix socket created in a fresh private directory and unlinked
// as soon as the engine has bound it. Nothing can connect to an unlinked socket, so gnet never
// accepts anything and its acceptor can never fail.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/reactor/core"
)

var (
	// ErrEngineStopped reports that the event loops ended without a Stop.
	ErrEngineStopped = errors.New("reactor: the network engine stopped")
	// ErrListenerFailed reports that a listener can accept no more connections.
	ErrListenerFailed = errors.New("reactor: a listener failed")
)

const (
	// acceptBackoffMin and acceptBackoffMax bound the pause after a failed accept; it doubles on
	// each failure in a row and starts again at the minimum after a success.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptLogInterval is how often a run of accept failures is logged.
	acceptLogInterval = time.Second
)

// listener is one of the broker's listening sockets. It is immutable once Start has made it.
type listener struct {
	name    string // "binary" or "kafka", for logs and metrics
	ln      tcpAcceptor
	handler Handler
	metrics *core.ListenerMetrics // nil: none
}

// tcpAcceptor is what an accept loop needs of its socket: *net.TCPListener, or a stand-in that
// fails on purpose in tests.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
	Addr() net.Addr
	Close() error
}

// listen binds the configured listeners, the binary protocol's first.
func (r *Reactor) listen() ([]*listener, error) {
	type spec struct {
		name, addr string
		handler    Handler
	}
	specs := []spec{{"binary", r.opts.Addr, r.server}}
	if r.opts.KafkaAddr != "" {
		h := r.kafka
		if h == nil {
			h = r.server
		}
		specs = append(specs, spec{"kafka", r.opts.KafkaAddr, h})
	}
	// Like gnet's listeners before: no keepalive probes; Go sets SO_REUSEADDR on the listening
	// socket and TCP_NODELAY on every accepted connection, which the descriptor gnet takes over
	// (a dup of it) keeps.
	lc := net.ListenConfig{KeepAlive: -1}
	var lns []*listener
	for _, s := range specs {
		ln, err := lc.Listen(context.Background(), "tcp", s.addr)
		if err != nil {
			closeListeners(lns)
			return nil, err
		}
		lns = append(lns, &listener{name: s.name, ln: ln.(*net.TCPListener), handler: s.handler, metrics: r.opts.Metrics.Listener(s.name)})
	}
	return lns, nil
}

func closeListeners(lns []*listener) {
	for _, l := range lns {
		_ = l.ln.Close()
	}
}

// engineSocket returns the address of the engine's own listener: a socket path in a fresh
// private directory under the first of parents where one can be made (the caller removes dir
// once the engine has bound the socket, which unlinks it), else a Linux abstract socket name with
// dir empty. An abstract socket cannot be unlinked: anyone on the host could connect to it, and
// then gnet's acceptor would run, so it is the last resort of a host without a writable
// temporary directory.
func engineSocket(parents ...string) (path, dir string) {
	for _, parent := range parents {
		d, err := os.MkdirTemp(parent, "thorstream-engine-")
		if err != nil {
			continue
		}
		if p := filepath.Join(d, "e.sock"); len(p) < 100 { // sun_path holds 108 bytes
			return p, d
		}
		_ = os.RemoveAll(d)
	}
	var random [8]byte
	_, _ = rand.Read(random[:])
	return fmt.Sprintf("@thorstream-engine-%d-%x", os.Getpid(), random), ""
}

// runEngine runs the gnet engine until it stops, then records why.
func (r *Reactor) runEngine(socketPath string) {
	err := gnet.Rotate(r, []string{"unix://" + socketPath},
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(r.opts.Loops),
		gnet.WithReadBufferCap(r.opts.ReadBufferBytes),
		gnet.WithReuseAddr(true),
		// Engine.Register needs a balancer other than round robin to be safe from other
		// goroutines; least connections is what the broker used before anyway.
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithLogger(r.logger.Sugar()),
		gnet.WithTicker(true),
	)
	r.engineErr = err
	close(r.engineDone)
	if !r.stopping.Load() {
		if err == nil {
			// gnet returns nil however its loops ended, and logs the reason itself.
			err = errors.New("its event loops ended (see the engine's log above)")
		}
		r.finish(fmt.Errorf("%w without a stop: %w", ErrEngineStopped, err))
	}
}

// finish records why the reactor stopped serving (nil: Stop) and closes Done. The first call wins.
func (r *Reactor) finish(err error) {
	r.finishOnce.Do(func() {
		r.errMu.Lock()
		r.err = err
		r.errMu.Unlock()
		close(r.done)
	})
}

// Done is closed when the reactor stops serving: after Stop, or when the engine or a listener
// failed on its own. Err tells which.
func (r *Reactor) Done() <-chan struct{} { return r.done }

// Err is nil while the reactor serves and after Stop; once it failed on its own, it wraps
// ErrEngineStopped or ErrListenerFailed with the cause.
func (r *Reactor) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Addrs returns the addresses the listeners are bound to, host:port: the binary protocol's, then
// the Kafka protocol's if there is one. A port 0 in Options is the port the system chose. Empty
// before Start.
func (r *Reactor) Addrs() []string {
	addrs := make([]string, 0, len(r.listeners))
	for _, l := range r.listeners {
		addrs = append(addrs, l.ln.Addr().String())
	}
	return addrs
}

// acceptLoop accepts l's connections and registers them with the engine until Stop, until the
// engine ends, or until the listener fails for good. A failure that may pass (out of
// descriptors, out of memory, a connection aborted before it was accepted) pauses the loop with
// a doubling backoff. Failures are logged once per acceptLogInterval at most, with the number
// since the last line, however often they come and go; after a logged failure, the loop says
// when it accepts again.
func (r *Reactor) acceptLoop(l *listener) {
	defer r.acceptWG.Done()
	var (
		backoff      time.Duration
		failures     int // in a row
		firstFailure time.Time
		unlogged     int       // failures since the last failure line
		lastLog      time.Time // of the last failure line
		logged       bool      // a failure line since the last recovery line
	)
	for {
		c, err := l.ln.AcceptTCP()
		accepted := err == nil
		if accepted {
			err = r.register(l, c)
		}
		if err == nil {
			if failures > 0 && logged {
				r.logger.Info("accepting connections again",
					zap.String("listener", l.name), zap.Stringer("addr", l.ln.Addr()),
					zap.Int("failures", failures), zap.Duration("after", time.Since(firstFailure)))
				logged = false
			}
			backoff, failures = 0, 0
			continue
		}
		if r.stopping.Load() || r.engineEnded() {
			return
		}
		if !accepted && !acceptRetriable(err) {
			r.logger.Error("listener failed: it accepts no more connections",
				zap.String("listener", l.name), zap.Stringer("addr", l.ln.Addr()), zap.Error(err))
			r.finish(fmt.Errorf("%w: %s listener on %s: %w", ErrListenerFailed, l.name, l.ln.Addr(), err))
			return
		}
		backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
		if failures == 0 {
			firstFailure = time.Now()
		}
		failures++
		unlogged++
		if now := time.Now(); now.Sub(lastLog) >= acceptLogInterval {
			fields := []zap.Field{
				zap.String("listener", l.name), zap.Stringer("addr", l.ln.Addr()), zap.Error(err),
				zap.Int("failures", unlogged), zap.Duration("backoff", backoff),
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				fields = append(fields, zap.String("hint", "out of file descriptors: raise RLIMIT_NOFILE (ulimit -n) or fs.file-max"))
			}
			r.logger.Error("accepting a connection failed; retrying with backoff, logged once a second while it lasts", fields...)
			lastLog, unlogged, logged = now, 0, true
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-r.quit:
			t.Stop()
			return
		case <-r.engineDone:
			t.Stop()
			return
		}
	}
}

// register hands c to the engine and waits until its loop has opened it (so a registration
// that fails, for want of a descriptor for gnet's dup of the socket, say, is seen here and backs
// the accept loop off). The engine owns c from then on, closing it whatever the outcome.
func (r *Reactor) register(l *listener, c *net.TCPConn) error {
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), l), c)
	results, err := r.engine.Register(ctx)
	if err != nil {
		_ = c.Close() // gnet did not take it
		return fmt.Errorf("reactor: registering a connection: %w", err)
	}
	select {
	case res, ok := <-results:
		if !ok {
			return errors.New("reactor: registering a connection: no result")
		}
		if res.Err != nil {
			return fmt.Errorf("reactor: registering a connection: %w", res.Err)
		}
		return nil
	case <-r.engineDone:
		return ErrEngineStopped
	}
}

func (r *Reactor) engineEnded() bool {
	select {
	case <-r.engineDone:
		return true
	default:
		return false
	}
}

// acceptRetriable tells an accept error that may pass from one that means the listener is gone.
func acceptRetriable(err error) bool {
	switch {
	case errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EBADF),
		errors.Is(err, syscall.EINVAL),
		errors.Is(err, syscall.ENOTSOCK),
		errors.Is(err, syscall.EOPNOTSUPP):
		return false
	}
	return true
}
