package core

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/proto"
)

// PeerHandler receives the messages other nodes of the cluster send this one (binary protocol
// API key 20, Peer): from is the sending node's id, kind what payload holds. Hellos (kind 0) are
// PeerAdmit's, never the handler's: the handler sees only the messages of connections whose
// hello was admitted, and from is always the node that hello proved.
//
// It runs on an event loop, so it must not block, and payload is valid only until it returns: a
// handler that keeps the payload copies it.
type PeerHandler func(from int32, kind uint8, payload []byte)

// PeerAdmit decides whether a connection may carry node from's messages: hello is the payload of
// the connection's first Peer frame (kind 0), remote the connection's remote IP (invalid when
// unknown). It returns nil to admit the connection, or why not; the server then closes it. It
// runs on an event loop, once per connection, so it must not block; hello is valid only until it
// returns. reactor/peer's Peers.Admit is the cluster's.
type PeerAdmit func(from int32, hello []byte, remote netip.Addr) error

// ErrPeerAdmitMissing reports Options with a PeerHandler and no PeerAdmit: every connection
// would be trusted as the node it names.
var ErrPeerAdmitMissing = errors.New("reactor/core: a PeerHandler needs a PeerAdmit")

// kindHello is the Peer kind of the hello, the first Peer frame of every connection.
const kindHello = 0

// peerLogInterval is how often refused Peer frames are logged at most: a stranger sending them
// in a loop must not flood the log.
const peerLogInterval = time.Minute

// peerBinding is what a connection's Peer frames have established. Only the connection's event
// loop reads or writes it (HandleFrame), so it needs no lock.
type peerBinding struct {
	bound bool  // a hello was admitted
	from  int32 // the node it proved
	// refused: a Peer frame closed the connection. The frames already read behind it may still
	// come through HandleFrame; none of their Peer frames is taken.
	refused bool
}

// peerGate is the server's side of peer traffic: the handler, the admission, and the count of
// connections refused.
type peerGate struct {
	handler PeerHandler
	admit   PeerAdmit
	// refused counts the connections closed for a Peer frame; logged and lastLog (unix
	// nanoseconds) are the count and time of the last log line.
	refused, logged atomic.Uint64
	lastLog         atomic.Int64
}

// PeerRefused is the number of connections this server closed for a Peer frame it refused: one
// it cannot take, one before an admitted hello, a hello refused, a second hello, a from other
// than the hello's.
func (s *Server) PeerRefused() uint64 { return s.peers.refused.Load() }

// peer serves a Peer frame on the loop. It never answers: the request's slot in the session's
// response order is released empty at once, as a Produce with acks=0 is, so the responses of the
// requests after it are not held back. A frame this server cannot take (no PeerHandler, a version
// it does not serve, a body that does not decode) or refuses (see PeerHandler) closes the
// connection, still unanswered: the sender is another node, which has nothing to do with an
// answer but reconnect, or a stranger.
//
// After the hello, a frame costs one comparison with the connection's binding: no allocation.
func (s *Server) peer(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	sess.Complete(seq, nil)
	var req proto.PeerRequest
	switch {
	case s.peers.handler == nil:
		s.refusePeer(sess, hdr, "this broker takes no peer traffic", -1, nil)
		return
	case hdr.APIVersion != proto.Version:
		s.refusePeer(sess, hdr, "unsupported version", -1, nil)
		return
	}
	if err := req.ReadFrom(body); err != nil {
		s.refusePeer(sess, hdr, "malformed body", -1, err)
		return
	}
	b := &sess.peer
	switch {
	case b.refused:
	case !b.bound && req.Kind != kindHello:
		s.refusePeer(sess, hdr, "a peer message before a hello", req.From, nil)
	case !b.bound:
		if err := s.peers.admit(req.From, req.Payload, sess.remote); err != nil {
			s.refusePeer(sess, hdr, "hello refused", req.From, err)
			return
		}
		b.bound, b.from = true, req.From
	case req.From != b.from:
		s.refusePeer(sess, hdr, "a peer message from another node than the connection's hello", req.From, nil)
	case req.Kind == kindHello:
		s.refusePeer(sess, hdr, "a second hello", req.From, nil)
	default:
		s.peers.handler(req.From, uint8(req.Kind), req.Payload)
	}
}

// refusePeer closes the connection for a Peer frame, counts it, and logs it unless another was
// logged less than peerLogInterval ago (the next line gives the count in between). from is the
// frame's sender as it claims, -1 when not decoded.
func (s *Server) refusePeer(sess *Session, hdr proto.RequestHeader, why string, from int32, err error) {
	sess.protocol.Load().API(hdr.APIKey, hdr.APIVersion).Error()
	sess.CloseTransport()
	if sess.peer.refused {
		return // counted and logged once per connection
	}
	sess.peer.refused = true
	g := &s.peers
	n := g.refused.Add(1)
	now := s.Now().UnixNano()
	last := g.lastLog.Load()
	if (last != 0 && now-last < int64(peerLogInterval)) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	since := n - g.logged.Swap(n)
	s.Logger.Warn("closed a connection after a Peer frame it refused: "+why+" (logged at most once a minute)",
		zap.String("client", sess.ClientHost()), zap.Int32("claimed_from", from), zap.Int16("version", hdr.APIVersion),
		zap.Uint64("refused_since_last_logged", since), zap.Uint64("refused_total", n), zap.Error(err))
}
