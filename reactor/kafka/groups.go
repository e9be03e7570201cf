package kafka

// The consumer-group APIs, served by the group coordinator (package groups), which both protocols
// share: JoinGroup (11), SyncGroup (14), Heartbeat (12), LeaveGroup (13), OffsetCommit (8),
// OffsetFetch (9), DescribeGroups (15), ListGroups (16), DeleteGroups (42) and OffsetDelete (47),
// each in a file of its own. FindCoordinator (10) names the node that leads the group's offsets
// partition (10_find_coordinator.go); any other node answers the group's requests NOT_COORDINATOR.
//
// Each request is decoded on the event loop (nothing here touches a disk) into the coordinator's
// request for its version and handed over without blocking; the reply arrives later on the
// group's shard goroutine (a JoinGroup may wait for a whole rebalance), where the response is
// encoded and its session slot completed. Byte fields (member metadata, assignments) are copied
// out of the frame, which is released once the request is handed over; strings are copies already.
// A body that does not decode closes the connection, as Kafka does.

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/reactor/core"
)

// groupOperations is the bit field of the ACL operations on a group resource (Kafka's codes:
// READ 3, DELETE 6, DESCRIBE 8), all allowed without an authorizer.
const groupOperations = 1<<3 | 1<<6 | 1<<8

// group serves one group API request on the event loop; it takes over the caller's reference to
// f and releases it once the request is handed to the coordinator.
func (s *Server) group(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	defer f.Release()
	var err error
	switch h.key {
	case kmsg.JoinGroup.Int16():
		err = s.joinGroup(sess, seq, h, body, requestClientID(f.Bytes()))
	case kmsg.SyncGroup.Int16():
		err = s.syncGroup(sess, seq, h, body)
	case kmsg.Heartbeat.Int16():
		err = s.heartbeat(sess, seq, h, body)
	case kmsg.LeaveGroup.Int16():
		err = s.leaveGroup(sess, seq, h, body)
	case kmsg.OffsetCommit.Int16():
		err = s.offsetCommit(sess, seq, h, body)
	case kmsg.OffsetFetch.Int16():
		err = s.offsetFetch(sess, seq, h, body)
	case kmsg.DescribeGroups.Int16():
		err = s.describeGroups(sess, seq, h, body)
	case kmsg.ListGroups.Int16():
		err = s.listGroups(sess, seq, h, body)
	case kmsg.DeleteGroups.Int16():
		err = s.deleteGroups(sess, seq, h, body)
	case kmsg.OffsetDelete.Int16():
		err = s.offsetDelete(sess, seq, h, body)
	}
	if err != nil {
		s.Logger.Debug("closing connection after a malformed request", zap.Int16("key", h.key), zap.Int16("version", h.version), zap.Error(err))
		s.Metrics.API(h.key, h.version).Error()
		sess.Complete(seq, nil)
		sess.CloseTransport()
	}
}

// respond encodes resp for h and completes seq. Safe from any goroutine (a shard's, here).
func respond(sess *core.Session, seq uint64, h header, resp kmsg.Response) {
	sess.Complete(seq, encodeResponse(h, resp))
}

// requestClientID is the client id of a request header (already checked by parseHeader), "" when
// null.
func requestClientID(frame []byte) string {
	if len(frame) < 10 {
		return ""
	}
	n := int(int16(binary.BigEndian.Uint16(frame[8:])))
	if n <= 0 || n > len(frame)-10 {
		return ""
	}
	return string(frame[10 : 10+n])
}

// millis is a request's timeout in milliseconds as a duration.
func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// orEmpty is a nullable string's value, "" for null.
func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// copyBytes copies b out of the frame; empty stays empty (nil).
func copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

// gather calls done once n replies have arrived, on the goroutine of the last; with n == 0 at
// once. Each reply writes its own slot of the response before calling the returned func, so the
// last one sees them all (the atomic decrement orders the writes before it).
func gather(n int, done func()) func() {
	if n == 0 {
		done()
		return func() {}
	}
	var remaining atomic.Int64
	remaining.Store(int64(n))
	return func() {
		if remaining.Add(-1) == 0 {
			done()
		}
	}
}
