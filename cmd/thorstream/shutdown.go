package main

import (
	"errors"
	"os"
)

// errEngineEnded is the reason given when the network engine reported an end without a cause.
var errEngineEnded = errors.New("thorstream: the network engine stopped")

// waitForShutdown blocks until a signal arrives on sigs, or until engineDone is closed because
// the network engine stopped serving on its own. It returns the signal, or the engine's reason
// (engineErr, or errEngineEnded if that has none): the broker then exits non-zero, so a
// supervisor restarts it rather than leaving a process that listens on nothing.
func waitForShutdown(sigs <-chan os.Signal, engineDone <-chan struct{}, engineErr func() error) (os.Signal, error) {
	select {
	case sig := <-sigs:
		return sig, nil
	case <-engineDone:
		if err := engineErr(); err != nil {
			return nil, err
		}
		return nil, errEngineEnded
	}
}
