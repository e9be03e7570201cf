package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/reactor"
)

func TestWaitForShutdown(t *testing.T) {
	noReason := func() error { return nil }
	t.Run("signal", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGTERM
		sig, err := waitForShutdown(sigs, make(chan struct{}), noReason)
		if sig != syscall.SIGTERM || err != nil {
			t.Fatalf("got %v, %v; want SIGTERM, nil", sig, err)
		}
	})
	t.Run("engine failed", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		cause := fmt.Errorf("%w without a stop: boom", reactor.ErrEngineStopped)
		sig, err := waitForShutdown(make(chan os.Signal), done, func() error { return cause })
		if sig != nil || !errors.Is(err, reactor.ErrEngineStopped) {
			t.Fatalf("got %v, %v; want nil, the engine's error", sig, err)
		}
	})
	t.Run("engine ended without a reason", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		if _, err := waitForShutdown(make(chan os.Signal), done, noReason); !errors.Is(err, errEngineEnded) {
			t.Fatalf("got %v, want errEngineEnded", err)
		}
	})
	t.Run("waits for either", func(t *testing.T) {
		sigs, done := make(chan os.Signal, 1), make(chan struct{})
		returned := make(chan error, 1)
		go func() {
			_, err := waitForShutdown(sigs, done, func() error { return reactor.ErrListenerFailed })
			returned <- err
		}()
		select {
		case err := <-returned:
			t.Fatalf("returned %v with no signal and the engine running", err)
		case <-time.After(50 * time.Millisecond): // it must still be waiting
		}
		close(done)
		select {
		case err := <-returned:
			if !errors.Is(err, reactor.ErrListenerFailed) {
				t.Fatalf("got %v, want ErrListenerFailed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("did not return after the engine ended")
		}
	})
}

func TestRaiseFileLimitLogsBothLimits(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	raiseFileLimit(zap.New(core))
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max {
		t.Errorf("soft limit %d after the raise, hard %d", lim.Cur, lim.Max)
	}
	entries := logs.FilterMessageSnippet("file descriptor limit (RLIMIT_NOFILE)").All()
	if len(entries) != 1 {
		t.Fatalf("%d log lines about the limit, want 1: %v", len(entries), logs.All())
	}
	fields := entries[0].ContextMap()
	if fields["soft"] != lim.Cur || fields["hard"] != lim.Max {
		t.Errorf("logged %v, the limits are soft %d hard %d", fields, lim.Cur, lim.Max)
	}
}
