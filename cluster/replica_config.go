package cluster

import (
	"errors"
)

// errNoConfig is SetConfig's answer to a nil config.
var errNoConfig = errors.New("cluster: SetConfig needs a config")

// SetConfig makes cfg the partition's configuration while it keeps serving: from the next group
// of appends on, batches are validated against it (max.message.bytes, message.timestamp.*,
// min.insync.replicas), and the log rolls and retains by its segment and retention settings
// (the next append, the next retention pass). It runs on the replica goroutine, which owns both
// the config and the log, and blocks the caller (never an event loop) until it has.
func (r *Replica) SetConfig(cfg *TopicConfig) error {
	if cfg == nil {
		return errNoConfig
	}
	done := make(chan struct{})
	fn := func() {
		defer close(done)
		r.cfg = cfg
		r.sharedCfg.Store(cfg)
		r.log.SetLimits(cfg.LogLimits())
	}
	select {
	case r.control <- fn:
	case <-r.done:
		return ErrReplicaClosed
	}
	<-done
	if r.cleaner != nil && cfg.Compact() {
		r.cleaner.Wake()
	}
	return nil
}
