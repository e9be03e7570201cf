package reactor

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// closeRecorder is an OutboundHandler noting the close.
type closeRecorder struct{ closed chan error }

func (c *closeRecorder) OutboundClosed(err error) { c.closed <- err }

func TestRegisterOutboundWritesThroughTheEngine(t *testing.T) {
	r := startReactor(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	remote, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	_ = remote.SetDeadline(time.Now().Add(30 * time.Second))

	h := &closeRecorder{closed: make(chan error, 1)}
	gc, err := r.RegisterOutbound(nc, h)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	if err := gc.AsyncWritev([][]byte{[]byte("hello, "), []byte("peer")}, func(_ gnet.Conn, err error) error {
		written <- err
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("hello, peer"))
	if _, err := io.ReadFull(remote, buf); err != nil || string(buf) != "hello, peer" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// What the other end sends is discarded; the connection stays up.
	if _, err := remote.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := gc.AsyncWrite([]byte("!"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(remote, buf[:1]); err != nil || buf[0] != '!' {
		t.Fatalf("read %q, %v", buf[:1], err)
	}
	select {
	case err := <-h.closed:
		t.Fatalf("closed: %v", err)
	default:
	}
	// The other end closing is reported.
	_ = remote.Close()
	select {
	case <-h.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the close was not reported")
	}
}

func TestRegisterOutboundRefusedWhenNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := New(Options{Addr: "127.0.0.1:0"}, echoHandler{"binary:"}, nil)
	if _, err := r.RegisterOutbound(dial(), &closeRecorder{closed: make(chan error, 1)}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Start: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// A connection registered when the reactor stops is closed, and its close reported.
	h := &closeRecorder{closed: make(chan error, 1)}
	if _, err := r.RegisterOutbound(dial(), h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.closed:
	default:
		t.Fatal("Stop did not close the outbound connection")
	}
	if _, err := r.RegisterOutbound(dial(), &closeRecorder{closed: make(chan error, 1)}); !errors.Is(err, ErrEngineStopped) {
		t.Fatalf("after Stop: %v", err)
	}
}
