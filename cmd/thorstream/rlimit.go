package main

import (
	"syscall"

	"go.uber.org/zap"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and logs both: every
// connection, every open segment and index costs the broker a descriptor, and the soft limit
// many systems start processes with (1024) is soon reached.
//
// The Go runtime (1.19 and later) already raises the soft limit, to the hard limit less one, when
// the process starts; this makes the raise explicit and complete, and shows operators the limits
// the broker runs with. Only the hard limit (ulimit -Hn, systemd's LimitNOFILE) can lower them.
func raiseFileLimit(logger *zap.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("reading the file descriptor limit (RLIMIT_NOFILE)", zap.Error(err))
		return
	}
	found := lim.Cur
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			logger.Warn("raising the soft file descriptor limit (RLIMIT_NOFILE) to the hard limit",
				zap.Uint64("soft", lim.Cur), zap.Uint64("hard", lim.Max), zap.Error(err))
		} else {
			lim = raised
		}
	}
	fields := []zap.Field{zap.Uint64("soft", lim.Cur), zap.Uint64("hard", lim.Max), zap.Uint64("soft_found", found)}
	if lim.Cur < lowFileLimit {
		logger.Warn("the file descriptor limit (RLIMIT_NOFILE) is low for a broker: raise the hard limit", fields...)
		return
	}
	logger.Info("file descriptor limit (RLIMIT_NOFILE)", fields...)
}

// lowFileLimit is the descriptor limit under which the broker warns at start.
const lowFileLimit = 4096
