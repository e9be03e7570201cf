package reactor

import "github.com/thorstream/thorstream/reactor/core"

// Connection metrics. Each listener resolves its counters once (core.Metrics.Listener); a
// connection counts itself open in OnOpen and closed in OnClose with the reason the broker gave
// when it closed it, or ClosedByClient when it did not. Sessions count their pauses through
// Limits.Metrics, and the budget's use is read when scraped.

// withMetrics hands the metrics to every session and points them at the budget.
func withMetrics(o Options) Options {
	if o.Limits.Metrics == nil {
		o.Limits.Metrics = o.Metrics
	}
	o.Metrics.WatchBudget(o.Limits.Shared)
	return o
}

// noteClosing records why the broker is closing the connection; the first reason given wins.
// Any goroutine.
func (c *conn) noteClosing(reason core.CloseReason) {
	c.closeReason.CompareAndSwap(int32(core.ClosedByClient), int32(reason))
}

// closedReason is why cs closed, as OnClose sees it: the broker's reason, else shutdown while
// the reactor stops, else the client's doing.
func (r *Reactor) closedReason(cs *conn) core.CloseReason {
	reason := core.CloseReason(cs.closeReason.Load())
	if reason == core.ClosedByClient && r.stopping.Load() {
		return core.ClosedShutdown
	}
	return reason
}
