package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// maxResponseFrame bounds the size of a response frame the client accepts.
const maxResponseFrame = 256 << 20

// call is one request waiting for its response.
type call struct {
	correlationID int32
	apiKey        int16
	deadline      time.Time
	// ownBody asks the reader for a fresh buffer: the body outlives done (it is handed to another
	// goroutine). Otherwise the body aliases the reader's scratch buffer and is valid only during done.
	ownBody bool
	// done runs on the reader goroutine exactly once, with the response body (after the header)
	// or an error. It must not block.
	done func(body []byte, err error)
}

// brokerConn is the client's connection to one broker address. It survives reconnects: each TCP
// connection is a wire, replaced when it breaks.
type brokerConn struct {
	addr   string
	client *Client

	writeMu       sync.Mutex // guards cur, nextID and frame; held while writing a frame
	cur           *wire
	nextID        int32
	frame         []byte // request frame scratch, owned by the holder of writeMu
	closed        bool
	lastDialError error

	// listOffsetsV1 is set once the broker answered ListOffsets version 2 with
	// UNSUPPORTED_VERSION (it is older), and cleared on every new connection.
	listOffsetsV1 atomic.Bool
}

// wire is one TCP connection and its FIFO of in-flight calls.
type wire struct {
	owner *brokerConn
	nc    net.Conn

	mu      sync.Mutex // guards pending, dead and the read deadline
	pending []*call    // in request order; pending[0] is answered next
	dead    error      // set once, when the connection failed
}

func newBrokerConn(c *Client, addr string) *brokerConn {
	return &brokerConn{addr: addr, client: c}
}

// brokerError wraps err with the broker's address.
func (b *brokerConn) brokerError(err error) error {
	return fmt.Errorf("broker %s: %w", b.addr, err)
}

// connect returns the live wire, dialing if needed. The caller holds writeMu.
func (b *brokerConn) connect(ctx context.Context) (*wire, error) {
	if b.closed {
		return nil, ErrClosed
	}
	if b.cur != nil && b.cur.isAlive() {
		return b.cur, nil
	}
	d := net.Dialer{Timeout: b.client.opts.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		b.lastDialError = err
		return nil, b.brokerError(&errcode.Error{Code: errcode.NetworkException, Message: err.Error()})
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w := &wire{owner: b, nc: nc}
	b.cur = w
	b.listOffsetsV1.Store(false) // the broker may have been upgraded since

	go w.readLoop()
	b.client.log.Debug("connected", zap.String("broker", b.addr))
	return w, nil
}

// ensure dials the broker if it is not connected.
func (b *brokerConn) ensure(ctx context.Context) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	_, err := b.connect(ctx)
	return err
}

// send writes one request. body appends the request body to a frame. With done == nil no response
// is expected (Produce with acks=0) and send returns once the frame is written. extra lengthens
// the response timeout (a Fetch's long-poll wait). done is called exactly once, unless send
// returns an error, in which case it is never called.
func (b *brokerConn) send(ctx context.Context, apiKey int16, body func([]byte) []byte, extra time.Duration, ownBody bool, done func([]byte, error)) error {
	return b.sendVersion(ctx, apiKey, proto.Version, body, extra, ownBody, done)
}

// sendVersion is send for an API version other than the first.
func (b *brokerConn) sendVersion(ctx context.Context, apiKey, version int16, body func([]byte) []byte, extra time.Duration, ownBody bool, done func([]byte, error)) error {
	w, writeErr, err := b.write(ctx, apiKey, version, body, extra, ownBody, done)
	if err != nil {
		return err
	}
	if writeErr != nil {
		// Fail the connection outside writeMu: fail runs the calls' done functions, which
		// must be free to send again. With done set, done is the only path for the error.
		w.fail(writeErr)
		if done == nil {
			return b.brokerError(&errcode.Error{Code: errcode.NetworkException, Message: writeErr.Error()})
		}
	}
	return nil
}

// write encodes and writes one frame under writeMu, registering the call first. err reports a
// failure before anything was registered; writeErr a failed write (the wire must be failed).
func (b *brokerConn) write(ctx context.Context, apiKey, version int16, body func([]byte) []byte, extra time.Duration, ownBody bool, done func([]byte, error)) (w *wire, writeErr, err error) {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	w, err = b.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	b.nextID++
	id := b.nextID
	var start int
	b.frame, start = proto.AppendRequestFrame(b.frame[:0], proto.RequestHeader{APIKey: apiKey, APIVersion: version, CorrelationID: id})
	b.frame = body(b.frame)
	proto.FinishFrame(b.frame, start, 0)
	if done != nil {
		c := &call{
			correlationID: id,
			apiKey:        apiKey,
			deadline:      time.Now().Add(b.client.opts.RequestTimeout + extra),
			ownBody:       ownBody,
			done:          done,
		}
		if !w.push(c) {
			return nil, nil, b.brokerError(&errcode.Error{Code: errcode.NetworkException, Message: "connection lost"})
		}
	}
	_, writeErr = w.nc.Write(b.frame)
	if cap(b.frame) > 2*maxRequestBytes {
		b.frame = nil // do not pin a huge buffer
	}
	return w, writeErr, nil
}

// roundTrip sends a request and waits for its response body.
func (b *brokerConn) roundTrip(ctx context.Context, apiKey int16, body func([]byte) []byte, extra time.Duration) ([]byte, error) {
	return b.roundTripVersion(ctx, apiKey, proto.Version, body, extra)
}

// roundTripVersion is roundTrip for an API version other than the first.
func (b *brokerConn) roundTripVersion(ctx context.Context, apiKey, version int16, body func([]byte) []byte, extra time.Duration) ([]byte, error) {
	type result struct {
		body []byte
		err  error
	}
	ch := make(chan result, 1)
	err := b.sendVersion(ctx, apiKey, version, body, extra, true, func(body []byte, err error) { ch <- result{body, err} })
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.body, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *brokerConn) close() {
	b.writeMu.Lock()
	b.closed = true
	w := b.cur
	b.writeMu.Unlock()
	if w != nil {
		w.fail(ErrClosed) // outside writeMu: it runs the calls' done functions
	}
}

// connected reports whether the broker has a live connection.
func (b *brokerConn) connected() bool {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	return b.cur != nil && b.cur.isAlive()
}

func (w *wire) isAlive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead == nil
}

// push appends c to the FIFO and arms the read deadline if c is the only call in flight.
func (w *wire) push(c *call) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead != nil {
		return false
	}
	w.pending = append(w.pending, c)
	if len(w.pending) == 1 {
		_ = w.nc.SetReadDeadline(c.deadline)
	}
	return true
}

// pop removes the head of the FIFO and re-arms the read deadline for the next call.
func (w *wire) pop() *call {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	c := w.pending[0]
	w.pending[0] = nil
	w.pending = w.pending[1:]
	if len(w.pending) > 0 {
		_ = w.nc.SetReadDeadline(w.pending[0].deadline)
	} else {
		_ = w.nc.SetReadDeadline(time.Time{})
		w.pending = w.pending[:0:0] // let the backing array go when the FIFO drains
	}
	return c
}

// fail closes the connection and fails every call in flight, once.
func (w *wire) fail(err error) {
	w.mu.Lock()
	if w.dead != nil {
		w.mu.Unlock()
		return
	}
	w.dead = err
	pending := w.pending
	w.pending = nil
	w.mu.Unlock()
	_ = w.nc.Close()
	var reported error
	var ne net.Error
	switch {
	case errors.Is(err, ErrClosed):
		reported = ErrClosed
	case errors.As(err, &ne) && ne.Timeout():
		reported = w.owner.brokerError(&errcode.Error{Code: errcode.RequestTimedOut, Message: "no response in time"})
	default:
		reported = w.owner.brokerError(&errcode.Error{Code: errcode.NetworkException, Message: err.Error()})
	}
	if len(pending) > 0 && !errors.Is(err, ErrClosed) {
		w.owner.client.log.Debug("connection failed", zap.String("broker", w.owner.addr), zap.Error(err), zap.Int("inFlight", len(pending)))
	}
	for _, c := range pending {
		c.done(nil, reported)
	}
}

// readLoop reads response frames and completes calls in FIFO order until the connection fails.
func (w *wire) readLoop() {
	br := bufio.NewReaderSize(w.nc, 64<<10)
	var scratch []byte // reused for calls whose body does not escape done
	var sizeBuf [proto.SizeLen]byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			w.fail(err)
			return
		}
		size := int(int32(binary.BigEndian.Uint32(sizeBuf[:])))
		if size < proto.ResponseHeaderLen+2+2 || size > maxResponseFrame {
			w.fail(fmt.Errorf("%w: response frame of %d bytes", errProtocol, size))
			return
		}
		c := w.pop()
		if c == nil {
			w.fail(fmt.Errorf("%w: response without a request", errProtocol))
			return
		}
		var frame []byte
		if c.ownBody {
			frame = make([]byte, size)
		} else {
			if cap(scratch) < size {
				scratch = make([]byte, size)
			}
			frame = scratch[:size]
		}
		if _, err := io.ReadFull(br, frame); err != nil {
			w.requeueHead(c)
			w.fail(err)
			return
		}
		h, body, err := proto.ParseResponseHeader(frame)
		switch {
		case err != nil:
			w.requeueHead(c)
			w.fail(fmt.Errorf("%w: %v", errProtocol, err))
			return
		case h.CorrelationID != c.correlationID:
			w.requeueHead(c)
			w.fail(fmt.Errorf("%w: correlation id %d, expected %d", errProtocol, h.CorrelationID, c.correlationID))
			return
		case h.ErrorCode != 0:
			c.done(nil, w.owner.brokerError(&errcode.Error{Code: errcode.Code(h.ErrorCode), Message: h.ErrorMessage}))
		default:
			c.done(body, nil)
		}
		if cap(scratch) > 8<<20 {
			scratch = nil
		}
	}
}

// requeueHead puts c back at the head of the FIFO so that fail reports it.
func (w *wire) requeueHead(c *call) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append([]*call{c}, w.pending...)
}
