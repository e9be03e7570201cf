package reactor

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/reactor/core"
)

// echoHandler answers every frame with its own name followed by the frame's body, so a test
// can tell which protocol's handler served a connection.
type echoHandler struct{ name string }

func (h echoHandler) HandleFrame(sess *core.Session, seq uint64, f *core.Frame) {
	resp := core.NewResponse()
	b := resp.Head().B
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.name)+len(f.Bytes())))
	b = append(b, h.name...)
	b = append(b, f.Bytes()...)
	resp.Head().B = b
	resp.SetSingle()
	f.Release()
	sess.Complete(seq, resp)
}

// startReactor starts a reactor on loopback ports the system picks, stopped at the end of the
// test.
func startReactor(t *testing.T, o Options) *Reactor {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	r := New(o, echoHandler{"binary:"}, echoHandler{"kafka:"})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

// roundTrip sends body (8 bytes at least, a request header's size) as one frame to addr and returns
// the response's body.
func roundTrip(t *testing.T, addr, body string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(frame, body...)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading the response to %q from %s: %v", body, addr, err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	return string(resp)
}

func TestListenersOnPortZeroServeTheirProtocols(t *testing.T) {
	r := startReactor(t, Options{KafkaAddr: "127.0.0.1:0"})
	addrs := r.Addrs()
	if len(addrs) != 2 || strings.HasSuffix(addrs[0], ":0") || strings.HasSuffix(addrs[1], ":0") || addrs[0] == addrs[1] {
		t.Fatalf("Addrs() = %v, want two distinct bound addresses", addrs)
	}
	if got := roundTrip(t, addrs[0], "hello, binary"); got != "binary:hello, binary" {
		t.Errorf("binary listener answered %q", got)
	}
	if got := roundTrip(t, addrs[1], "hello, kafka"); got != "kafka:hello, kafka" {
		t.Errorf("kafka listener answered %q", got)
	}
	select {
	case <-r.Done():
		t.Fatalf("Done closed while serving: %v", r.Err())
	default:
	}
}

func TestStopClosesListenersFirstAndIsNotAFailure(t *testing.T) {
	r := startReactor(t, Options{})
	addr := r.Addrs()[0]
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err after Stop = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Stop")
	}
	// The engine closed the connection it served.
	_ = held.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a connection of a stopped reactor succeeded")
	}
}

func TestStartFailsOnAnAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := New(Options{Addr: busy.Addr().String()}, echoHandler{"binary:"}, nil)
	if err := r.Start(); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start on a busy port = %v, want EADDRINUSE", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop after a failed Start = %v", err)
	}
}

// waitDone waits for the reactor to report that it stopped serving.
func waitDone(t *testing.T, r *Reactor) error {
	t.Helper()
	select {
	case <-r.Done():
		return r.Err()
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed within 30 s")
		return nil
	}
}

func TestEngineEndingWithoutStopIsReported(t *testing.T) {
	r := startReactor(t, Options{KafkaAddr: "127.0.0.1:0"})
	// The event loops end as they would after a fatal error: through the engine, not r.Stop.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.engine.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, r); !errors.Is(err, ErrEngineStopped) {
		t.Fatalf("Err = %v, want ErrEngineStopped", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop after the engine ended = %v", err)
	}
	if !errors.Is(r.Err(), ErrEngineStopped) {
		t.Fatalf("Stop replaced the failure: Err = %v", r.Err())
	}
}

func TestListenerFailureIsReported(t *testing.T) {
	r := startReactor(t, Options{})
	_ = r.listeners[0].ln.Close() // as if the socket were gone from under the broker
	if err := waitDone(t, r); !errors.Is(err, ErrListenerFailed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Err = %v, want ErrListenerFailed wrapping net.ErrClosed", err)
	}
}

// flakyAcceptor fails its first failures accepts with EMFILE, as accept(2) does when the process
// is out of descriptors, then accepts from the real listener.
type flakyAcceptor struct {
	*net.TCPListener
	failures atomic.Int32
}

func (a *flakyAcceptor) AcceptTCP() (*net.TCPConn, error) {
	if a.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return a.TCPListener.AcceptTCP()
}

func TestAcceptBacksOffOnDescriptorExhaustionAndRecovers(t *testing.T) {
	logs, observed := observer.New(zap.InfoLevel)
	r := New(Options{Addr: "127.0.0.1:0", Logger: zap.New(logs)}, echoHandler{"binary:"}, nil)
	// The reactor's pieces are built as Start builds them, with the flaky listener swapped in.
	lns, err := r.listen()
	if err != nil {
		t.Fatal(err)
	}
	const failures = 9 // 5+10+20+40+80+160+320+640+1000 ms of backoff: about 2.3 s
	flaky := &flakyAcceptor{TCPListener: lns[0].ln.(*net.TCPListener)}
	flaky.failures.Store(failures)
	lns[0].ln = flaky
	startWithListeners(t, r, lns, os.TempDir())

	started := time.Now()
	if got := roundTrip(t, r.Addrs()[0], "serving again"); got != "binary:serving again" {
		t.Fatalf("answered %q", got)
	}
	elapsed := time.Since(started)
	if left := flaky.failures.Load(); left >= 0 {
		t.Fatalf("the connection was served with %d injected failures left", left+1)
	}
	// Each failure waits its backoff: 5 ms doubling, at most 1 s.
	if want := 2 * time.Second; elapsed < want {
		t.Errorf("served after %v; %d failures with backoff take at least %v", elapsed, failures, want)
	}
	select {
	case <-r.Done():
		t.Fatalf("the reactor stopped: %v", r.Err())
	default:
	}
	failLogs := observed.FilterMessageSnippet("accepting a connection failed").All()
	// Once a second at most: the run lasted under elapsed+1 s.
	if n, most := len(failLogs), int(elapsed/acceptLogInterval)+1; n == 0 || n > most {
		t.Errorf("%d failure log lines over %v, want 1..%d", n, elapsed, most)
	}
	total := 0
	for _, e := range failLogs {
		total += int(e.ContextMap()["failures"].(int64))
		if _, ok := e.ContextMap()["hint"]; !ok {
			t.Errorf("EMFILE logged without the descriptor hint: %v", e.ContextMap())
		}
	}
	if total > failures || total == 0 {
		t.Errorf("log lines count %d failures, %d happened", total, failures)
	}
	// The accept loop logs its recovery right after it handed the connection over, so the line
	// may follow the connection being served.
	var recovered []observer.LoggedEntry
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		recovered = observed.FilterMessage("accepting connections again").All()
		if len(recovered) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(recovered) != 1 || recovered[0].ContextMap()["failures"].(int64) != failures {
		t.Errorf("recovery logged as %v, want once with failures=%d", recovered, failures)
	}
}

// startWithListeners starts r as Start does, with lns as its listeners and the engine's own
// socket under one of parents.
func startWithListeners(t *testing.T, r *Reactor, lns []*listener, parents ...string) {
	t.Helper()
	path, dir := engineSocket(parents...)
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	go r.runEngine(path)
	select {
	case <-r.running:
	case <-r.engineDone:
		t.Fatalf("engine did not start on %s: %v", path, r.engineErr)
	}
	r.listeners = lns
	for _, l := range lns {
		r.acceptWG.Add(1)
		go r.acceptLoop(l)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
}

func TestEngineSocketIsUnlinkedOnceBound(t *testing.T) {
	parent := t.TempDir()
	t.Setenv("TMPDIR", parent) // where Start makes the engine's socket
	r := startReactor(t, Options{})
	if entries, err := os.ReadDir(parent); err != nil || len(entries) != 0 {
		t.Fatalf("the engine's socket directory is still there: %v, %v", entries, err)
	}
	if got := roundTrip(t, r.Addrs()[0], "served as usual"); got != "binary:served as usual" {
		t.Fatalf("answered %q", got)
	}
}

func TestEngineSocketFallsBackToAnAbstractSocket(t *testing.T) {
	unwritable := filepath.Join(t.TempDir(), "missing", "dir")
	path, dir := engineSocket(unwritable)
	if dir != "" || !strings.HasPrefix(path, "@thorstream-engine-") {
		t.Fatalf("engineSocket without a usable directory = %q, %q", path, dir)
	}
	r := New(Options{Addr: "127.0.0.1:0"}, echoHandler{"binary:"}, nil)
	lns, err := r.listen()
	if err != nil {
		t.Fatal(err)
	}
	startWithListeners(t, r, lns, unwritable)
	if got := roundTrip(t, r.Addrs()[0], "abstractly served"); got != "binary:abstractly served" {
		t.Fatalf("answered %q", got)
	}
}

func TestAcceptRetriable(t *testing.T) {
	f := func(err error, want bool) {
		t.Helper()
		if got := acceptRetriable(err); got != want {
			t.Errorf("acceptRetriable(%v) = %v, want %v", err, got, want)
		}
	}
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	f(wrap(syscall.EMFILE), true)
	f(wrap(syscall.ENFILE), true)
	f(wrap(syscall.ENOBUFS), true)
	f(wrap(syscall.ENOMEM), true)
	f(wrap(syscall.ECONNABORTED), true)
	f(wrap(syscall.EPERM), true)
	f(&net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false)
	f(wrap(syscall.EBADF), false)
	f(wrap(syscall.EINVAL), false)
	f(wrap(syscall.ENOTSOCK), false)
}
