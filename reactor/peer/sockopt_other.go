//go:build !linux

package peer

import "syscall"

// dialControl sets nothing where TCP_USER_TIMEOUT does not exist: keepalive probes alone notice a
// vanished peer.
func dialControl(_, _ string, _ syscall.RawConn) error { return nil }
