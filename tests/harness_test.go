// Package tests holds end-to-end tests that run the real binaries: the broker as a separate
// process (so it can be killed with SIGKILL) and the CLI as a user runs it, with the Go client
// package as the reference client.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thorstream-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/thorstream", "../cmd/thorctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for assertions while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// brokerProc is a broker running as a child process.
type brokerProc struct {
	t       *testing.T
	addr    string
	dataDir string
	env     []string
	cmd     *exec.Cmd
	output  *syncBuffer
	exited  chan struct{}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBroker starts a broker on a fresh port with its data in dataDir and waits until it
// answers. extraEnv adds THORSTREAM_* settings.
func startBroker(t *testing.T, dataDir string, extraEnv ...string) *brokerProc {
	t.Helper()
	b := &brokerProc{t: t, addr: freeAddr(t), dataDir: dataDir}
	b.env = append([]string{
		"THORSTREAM_ADDR=" + b.addr,
		"THORSTREAM_DATA_DIR=" + dataDir,
		"THORSTREAM_EVENT_LOOPS=2",
		"THORSTREAM_HTTP_ADDR=off", // many test brokers share the host; the admin endpoint test sets its own
	}, extraEnv...)
	b.start()
	t.Cleanup(func() { b.kill() })
	return b
}

func (b *brokerProc) start() {
	b.t.Helper()
	b.output = &syncBuffer{}
	b.cmd = exec.Command(filepath.Join(binDir, "thorstream"))
	b.cmd.Env = append(cleanEnv(), b.env...)
	b.cmd.Stdout, b.cmd.Stderr = b.output, b.output
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.cmd, b.exited)
	b.waitReady()
}

// waitReady polls the broker with Ping until it answers, for up to a minute.
func (b *brokerProc) waitReady() {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-b.exited:
			b.t.Fatalf("broker exited during start-up:\n%s", b.output.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			conn.Close()
			c, err := client.New(client.Options{Brokers: []string{b.addr}, RequestTimeout: 5 * time.Second})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _, err = c.Ping(ctx)
				cancel()
				c.Close()
				if err == nil {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker did not answer within a minute:\n%s", b.output.String())
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *brokerProc) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	select {
	case <-b.exited:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (b *brokerProc) stop() {
	b.t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(60 * time.Second):
		b.kill()
		b.t.Fatalf("broker did not stop within a minute after SIGTERM:\n%s", b.output.String())
	}
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		b.t.Fatalf("broker exited with %d after SIGTERM:\n%s", code, b.output.String())
	}
}

// cleanEnv is the test process's environment without THORSTREAM_* settings, so a developer's
// own configuration cannot leak into the brokers the tests start.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "THORSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

// restart starts the broker again on the same address and data directory.
func (b *brokerProc) restart() {
	b.t.Helper()
	b.start()
}

// newClient returns a client of the broker, closed at the end of the test.
func newClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Brokers: []string{addr}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runCLI runs thorctl against addr with stdin and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, addr string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "thorctl"), append([]string{"--broker", addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running thorctl %v: %v", args, err)
		}
		code = exitErr.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// ctx returns a context bounded for one test step.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}
