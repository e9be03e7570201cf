package core

import (
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
)

// TestWaitForDataSeesAnAdvanceDuringTheFirstRead: data that arrives after the first read looked
// but before the waiter is registered ends the wait; it used to be missed, and the fetch waited
// for its whole max wait with the data there.
func TestWaitForDataSeesAnAdvanceDuringTheFirstRead(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	r := e.broker.Replica("t", 0)
	reads := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		never := func() bool { return false }
		WaitForData([]*cluster.Replica{r}, time.Now().Add(time.Hour), time.Now, never, never, func(last bool) bool {
			reads++
			if reads == 1 {
				// The read found nothing; the produce lands before the waiter is registered.
				if resp := e.produce("t", 0, makeBatch(1, testNow.UnixMilli(), 1)); resp.ErrorCode != 0 {
					t.Errorf("produce: error %d", resp.ErrorCode)
				}
				return false
			}
			return r.HighWatermark() > 0
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end though the high watermark moved during the first read")
	}
	if reads != 2 {
		t.Fatalf("%d reads, want 2", reads)
	}
}
