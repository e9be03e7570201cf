package client

import (
	"context"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
)

// testTimeout bounds every test's waits: generous, because a loaded 2-core machine is slow, and
// never used as a way to wait for a condition.
const testTimeout = 30 * time.Second

func newCluster(t testing.TB, opts fakebroker.Options) *fakebroker.Cluster {
	t.Helper()
	c, err := fakebroker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t testing.TB, fc *fakebroker.Cluster) *Client {
	t.Helper()
	c, err := New(Options{Brokers: fc.Addrs()[:1], ClientID: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t testing.TB, fc *fakebroker.Cluster, name string, partitions int32) {
	t.Helper()
	if err := fc.CreateTopic(name, partitions, nil); err != nil {
		t.Fatal(err)
	}
}
