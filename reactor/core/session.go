package core

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Transport is what a Session needs from a connection. Every method must be safe from any
// goroutine and must not block: the gnet transport enqueues work on the connection's loop.
type Transport interface {
	// Writev queues r for writing after every response queued before it and calls r.Written when
	// done (also when the connection is closed). It returns an error when it could not queue, in
	// which case the caller still owns r.
	Writev(r *Response) error
	// Wake asks the transport to process frames it has buffered but not handed over, after a
	// paused session made room.
	Wake()
	// Close closes the connection.
	Close()
}

// Limits bounds what one connection may have in flight: requests accepted whose responses have
// not been handed to the transport yet, and the bytes of their frames, fetch responses and unsent
// output. MaxInFlightBytes is the connection's share of Shared, the broker-wide budget that frame
// buffers, fetch responses and unsent output are drawn from.
type Limits struct {
	MaxInFlight      int // default 128
	MaxInFlightBytes int // default 64 MiB
	// Shared is the broker-wide budget of bytes in flight; nil: no broker-wide cap.
	Shared *Budget
	// Metrics counts the sessions paused on these caps; nil: none.
	Metrics *Metrics
}

func (l Limits) withDefaults() Limits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 128
	}
	if l.MaxInFlightBytes <= 0 {
		l.MaxInFlightBytes = 64 << 20
	}
	return l
}

// Session is a connection's request sequencer. Kafka-style protocols require responses in
// request order, but requests complete out of order (a produce waits for its partition writers,
// a fetch for data). Each request takes a sequence number when its frame is accepted (on the
// loop); Complete files its response in the slot, and responses leave strictly in sequence.
//
// The in-flight caps are how a connection is paused: gnet cannot stop reading a socket, so when
// Begin refuses a frame the loop leaves it buffered, and the Complete that frees room calls
// Transport.Wake to resume.
type Session struct {
	transport Transport
	limits    Limits

	// mu guards everything below. It is held only around slot bookkeeping and Transport.Writev,
	// which only enqueues: never across I/O.
	mu            sync.Mutex
	slots         []slot
	head          uint64 // next sequence number to send
	tail          uint64 // next sequence number to hand out
	inFlightBytes int
	paused        bool
	closed        bool

	// unsent is the response bytes waiting in the connection's output buffer, as the transport
	// last saw them (SetUnsent, from the connection's loop only); read by fetch goroutines.
	unsent atomic.Int64
	// protocol is the request metrics of the server that reads this connection, set by its
	// first frame (metrics.go), so answers given off the server (decode errors) are counted.
	protocol atomic.Pointer[ProtocolMetrics]
	// clientHost is the client's address as group members report it, set once before the first
	// frame (SetClientAddr).
	clientHost string
	// remote is the client's IP, set with clientHost; invalid when unknown.
	remote netip.Addr
	// peer is what the connection's Peer frames have established (peer.go); the loop's only.
	peer peerBinding
}

type slot struct {
	response *Response
	bytes    int
	done     bool
}

// NewSession returns a session writing through t.
func NewSession(t Transport, limits Limits) *Session {
	limits = limits.withDefaults()
	return &Session{transport: t, limits: limits, slots: make([]slot, limits.MaxInFlight)}
}

// Begin reserves the next sequence number for a frame of frameBytes. It returns ok=false, and
// marks the session paused, when the caps are reached; the loop must then stop taking frames
// until Transport.Wake. A single frame larger than MaxInFlightBytes is accepted when nothing
// else is in flight.
func (s *Session) Begin(frameBytes int) (seq uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inFlight := int(s.tail - s.head)
	if inFlight >= s.limits.MaxInFlight || (inFlight > 0 && s.inFlightBytes+frameBytes > s.limits.MaxInFlightBytes) {
		if !s.paused {
			s.limits.Metrics.sessionPaused()
		}
		s.paused = true
		return 0, false
	}
	seq = s.tail
	s.tail++
	s.slots[seq%uint64(len(s.slots))] = slot{bytes: frameBytes}
	s.inFlightBytes += frameBytes
	return seq, true
}

// SetClientAddr records the client's address, for the host group members report. The transport
// calls it when the connection opens, before handing over any frame.
func (s *Session) SetClientAddr(addr net.Addr) {
	if addr == nil {
		return
	}
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s.clientHost = "/" + host // as Kafka prints a member's host: "/10.0.0.7"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		s.remote, _ = netip.AddrFromSlice(tcp.IP)
	} else {
		s.remote, _ = netip.ParseAddr(host)
	}
	s.remote = s.remote.Unmap()
}

// ClientHost is the client's host as group members report it ("/10.0.0.7"), "" when unknown.
func (s *Session) ClientHost() string { return s.clientHost }

// Budget is the broker-wide budget the session draws from (nil: none).
func (s *Session) Budget() *Budget { return s.limits.Shared }

// SetUnsent records that n bytes of responses wait in the connection's output buffer because the
// client has not read them yet. They count against the connection's share and the broker-wide
// budget until they leave. The transport calls it from the connection's loop, whenever it looks
// (after a write, when woken), and with 0 when the connection closes.
func (s *Session) SetUnsent(n int) {
	old := s.unsent.Swap(int64(n))
	if d := n - int(old); d > 0 {
		s.limits.Shared.Force(d)
	} else {
		s.limits.Shared.Release(-d)
	}
}

// Unsent is the response bytes waiting in the connection's output buffer.
func (s *Session) Unsent() int { return int(s.unsent.Load()) }

// ReserveResponse sizes the response request seq is about to build (a fetch's records) before any
// of it is read: asked bytes at most, less what the connection already holds against its share
// (frames and responses in flight, unsent output), and no more than the broker-wide budget lets
// responses have (Budget.ResponseCeiling). The grant counts against both until SettleResponse;
// it is 0 when either is spent, and the caller then reads nothing. budgetShort reports that the
// broker-wide budget, not the connection's own backlog, cut the grant. Safe from any goroutine.
func (s *Session) ReserveResponse(seq uint64, asked int) (grant int, budgetShort bool) {
	s.mu.Lock()
	sl := &s.slots[seq%uint64(len(s.slots))]
	if room := s.limits.MaxInFlightBytes - s.inFlightBytes - s.Unsent(); room > 0 && asked > 0 && !sl.done {
		want := min(asked, room)
		grant = s.limits.Shared.AcquireUpToBelow(want, s.limits.Shared.ResponseCeiling())
		budgetShort = grant < want
		sl.bytes += grant
		s.inFlightBytes += grant
	}
	s.mu.Unlock()
	return grant, budgetShort
}

// SettleResponse trims request seq's reservation from granted to used, the bytes resp holds, and
// hands the broker-wide part to resp, which returns it once written. A response larger than its
// grant (a first batch comes whole) takes the difference from the budget if it can; when it
// cannot, SettleResponse returns false, having given the whole grant back, and the caller must
// drop resp. The connection's part ends with Complete, or with DropResponse when resp is thrown
// away unsent. Safe from any goroutine.
func (s *Session) SettleResponse(seq uint64, resp *Response, granted, used int) bool {
	d := used - granted
	if d > 0 && !s.limits.Shared.TryAcquire(d) {
		s.settle(seq, -granted)
		s.limits.Shared.Release(granted)
		return false
	}
	s.settle(seq, d)
	s.limits.Shared.Release(-d) // no-op when d >= 0
	resp.budget, resp.charged = s.limits.Shared, used
	return true
}

// settle adds d to request seq's bytes in flight.
func (s *Session) settle(seq uint64, d int) {
	s.mu.Lock()
	if sl := &s.slots[seq%uint64(len(s.slots))]; !sl.done {
		sl.bytes += d
		s.inFlightBytes += d
	}
	s.mu.Unlock()
}

// DropResponse releases resp, a settled response of request seq that will not be sent (a fetch
// read too little and reads again), with its used bytes.
func (s *Session) DropResponse(seq uint64, resp *Response, used int) {
	s.settle(seq, -used)
	resp.Written(nil)
}

// Complete files the response of request seq (nil: the request has no response, e.g. a produce
// with acks=0) and sends every response that is now next in order. Safe from any goroutine.
func (s *Session) Complete(seq uint64, r *Response) {
	wake := false
	s.mu.Lock()
	headBefore := s.head
	sl := &s.slots[seq%uint64(len(s.slots))]
	sl.response, sl.done = r, true
	for s.head < s.tail {
		sl := &s.slots[s.head%uint64(len(s.slots))]
		if !sl.done {
			break
		}
		resp := sl.response
		s.inFlightBytes -= sl.bytes
		*sl = slot{}
		s.head++
		if resp == nil {
			continue
		}
		if s.closed {
			resp.Written(net.ErrClosed)
		} else if err := s.transport.Writev(resp); err != nil {
			resp.Written(err)
		}
	}
	// Only a Complete that sent (and so freed) something makes room: an out-of-order one that
	// leaves the head in place must not wake a paused loop into another refused Begin.
	if s.paused && !s.closed && s.head != headBefore {
		s.paused = false
		wake = true
		s.limits.Metrics.sessionResumed()
	}
	s.mu.Unlock()
	if wake {
		s.transport.Wake()
	}
}

// Close marks the session closed: responses completed from now on are released unsent.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	if s.paused {
		s.paused = false
		s.limits.Metrics.sessionResumed()
	}
	s.mu.Unlock()
}

// Closed reports whether the connection has closed.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// InFlight is the number of requests accepted and not yet answered.
func (s *Session) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.tail - s.head)
}

// CloseTransport closes the connection, for requests a protocol answers by closing. Responses
// already handed to the transport are written first.
func (s *Session) CloseTransport() { s.transport.Close() }
