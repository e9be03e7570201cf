package core

import (
	"time"

	"github.com/thorstream/thorstream/cluster"
)

// WaitForData is the fetch purgatory shared by both protocols. It calls read until read reports
// that the fetch can be answered (enough bytes, or an error); between calls it sleeps until a
// high watermark of one of replicas moves or the deadline passes. At the deadline it calls read
// one last time with last=true. replicas may hold nils (unknown partitions). canceled stops the
// wait early (the connection closed).
//
// One Waiter is registered with every replica involved, after the first read, and the high
// watermarks are checked again after registering, so an advance between the read and the
// registration is not missed.
func WaitForData(replicas []*cluster.Replica, deadline time.Time, now func() time.Time, canceled func() bool, read func(last bool) (done bool)) {
	if read(false) || canceled() {
		return
	}
	if !now().Before(deadline) {
		read(true)
		return
	}
	seen := make([]int64, len(replicas))
	for i, r := range replicas {
		if r != nil {
			seen[i] = r.HighWatermark()
		}
	}
	waiter := cluster.NewWaiter()
	for _, r := range replicas {
		if r != nil {
			r.AddWaiter(waiter)
		}
	}
	defer func() {
		for _, r := range replicas {
			if r != nil {
				r.RemoveWaiter(waiter)
			}
		}
	}()
	timer := time.NewTimer(deadline.Sub(now()))
	defer timer.Stop()
	grew := func() bool {
		for i, r := range replicas {
			if r != nil && r.HighWatermark() != seen[i] {
				return true
			}
		}
		return false
	}
	for {
		if !grew() {
			select {
			case <-waiter.C:
			case <-timer.C:
				read(true)
				return
			}
		}
		for i, r := range replicas {
			if r != nil {
				seen[i] = r.HighWatermark()
			}
		}
		if read(false) || canceled() {
			return
		}
		if !now().Before(deadline) {
			read(true)
			return
		}
	}
}
