package client

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// Many goroutines share one connection: every response must reach the request it answers.
func TestPipelinedRequestsMatchResponses(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	c := newClient(t, fc)
	ctx := testContext(t)
	b, err := c.anyBroker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				echo := int64(g*1000 + i)
				req := proto.PingRequest{Echo: echo}
				body, err := b.roundTrip(ctx, proto.KeyPing, req.AppendTo, 0)
				var resp proto.PingResponse
				if err != nil || resp.ReadFrom(body) != nil || resp.Echo != echo {
					bad.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d mismatched responses", bad.Load())
	}
	if n := fc.Count(proto.KeyPing); n != 1600 {
		t.Fatalf("broker saw %d pings", n)
	}
}

// A dropped connection fails the requests in flight with NETWORK_EXCEPTION; the next request
// reconnects.
func TestDroppedConnectionFailsAndReconnects(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	c := newClient(t, fc)
	ctx := testContext(t)
	var drop atomic.Bool
	drop.Store(true)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyPing && drop.CompareAndSwap(true, false) {
			return &fakebroker.Action{Drop: true}
		}
		return nil
	})
	b, err := c.anyBroker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := proto.PingRequest{Echo: 1}
	_, err = b.roundTrip(ctx, proto.KeyPing, req.AppendTo, 0)
	if errcode.Of(err) != errcode.NetworkException {
		t.Fatalf("dropped request: %v, want NETWORK_EXCEPTION", err)
	}
	if _, _, err := c.Ping(ctx); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

// A broker that never answers times the request out with REQUEST_TIMED_OUT.
func TestRequestTimeout(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	release := make(chan struct{})
	defer close(release)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyPing {
			<-release
		}
		return nil
	})
	c, err := New(Options{Brokers: fc.Addrs(), RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Ping(context.Background())
	if errcode.Of(err) != errcode.RequestTimedOut {
		t.Fatalf("Ping = %v, want REQUEST_TIMED_OUT", err)
	}
}
