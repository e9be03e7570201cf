package peer

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeout is how long written data may go unacknowledged before the kernel fails the
// connection (TCP_USER_TIMEOUT): a peer that vanished without closing is noticed in seconds, not
// after the kernel's retransmissions (about 15 minutes), and dialed again.
const userTimeout = 10 * time.Second

// dialControl sets the socket options of a peer connection before it connects; the descriptor
// the engine takes over (a dup) keeps them.
func dialControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
	})
	if err != nil {
		return err
	}
	return serr
}
