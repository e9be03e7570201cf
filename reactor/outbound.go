package reactor

// Outbound connections are the ones this node dials itself (to the other nodes of its cluster,
// reactor/peer). They are handed to the engine like accepted ones, so that what is written to
// them goes out through the event loops with AsyncWrite and AsyncWritev, never blocking a loop.
// They carry no session: nothing is read from them (the other node never answers, and whatever
// arrives is discarded), no frame deadline or idle clock applies, and their close is reported to
// the OutboundHandler they were registered with.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// ErrNotRunning reports a connection handed to a reactor that has not started.
var ErrNotRunning = errors.New("reactor: not running")

// OutboundHandler is told when an outbound connection closes.
type OutboundHandler interface {
	// OutboundClosed runs once on the connection's event loop when the connection closes for
	// whatever reason (the other end closed it, a write failed, Close, the reactor stopping),
	// with the cause gnet gives (nil for a close asked for). It must not block.
	OutboundClosed(err error)
}

// outbound is an outbound connection's gnet context.
type outbound struct {
	h      OutboundHandler
	opened atomic.Bool
}

// RegisterOutbound hands nc, a connection this node dialed, to the engine and returns it as the
// engine's connection once its event loop has opened it. Write to it with AsyncWrite or
// AsyncWritev from any goroutine (their callbacks run on the loop), close it with Close. The
// engine owns nc from the call on and closes it whatever the outcome; h.OutboundClosed is called
// when a registered connection closes (possibly before RegisterOutbound returns), and never when
// RegisterOutbound fails. It blocks until the loop has opened the connection.
func (r *Reactor) RegisterOutbound(nc net.Conn, h OutboundHandler) (gnet.Conn, error) {
	select {
	case <-r.running:
	default:
		_ = nc.Close()
		return nil, ErrNotRunning
	}
	if r.stopping.Load() || r.engineEnded() {
		_ = nc.Close()
		return nil, ErrEngineStopped
	}
	o := &outbound{h: h}
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), o), nc)
	results, err := r.engine.Register(ctx)
	if err != nil {
		_ = nc.Close() // gnet did not take it
		return nil, fmt.Errorf("reactor: registering an outbound connection: %w", err)
	}
	select {
	case res, ok := <-results:
		switch {
		case !ok:
			return nil, errors.New("reactor: registering an outbound connection: no result")
		case res.Err != nil:
			return nil, fmt.Errorf("reactor: registering an outbound connection: %w", res.Err)
		case !o.opened.Load():
			// gnet reports success even when its loop could not add the connection to its poller;
			// then OnOpen never ran, nor will OnClose.
			return nil, errors.New("reactor: registering an outbound connection: the event loop did not open it")
		}
		return res.Conn, nil
	case <-r.engineDone:
		return nil, ErrEngineStopped
	}
}

// onOutboundTraffic discards what arrived on an outbound connection: the other end sends nothing
// this node reads.
func onOutboundTraffic(c gnet.Conn) gnet.Action {
	_, _ = c.Discard(c.InboundBuffered())
	return gnet.None
}
