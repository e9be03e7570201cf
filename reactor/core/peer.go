package core

import (
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/proto"
)

// PeerHandler receives the messages other nodes of the cluster send this one (binary protocol
// API key 20, Peer): from is the sending node's id as the frame gives it, kind what payload holds
// (0 is the hello a node sends first on every connection it opens).
//
// It runs on an event loop, so it must not block, and payload is valid only until it returns: a
// handler that keeps the payload copies it. The server does not check from against the cluster's
// nodes: the handler ignores senders it does not know (reactor/peer's Inbound does).
type PeerHandler func(from int32, kind uint8, payload []byte)

// peer serves a Peer frame on the loop. It never answers: the request's slot in the session's
// response order is released empty at once, as a Produce with acks=0 is, so the responses of the
// requests after it are not held back. A frame this server cannot take (no PeerHandler, a version
// it does not serve, a body that does not decode) closes the connection, still unanswered: the
// sender is another node, which has nothing to do with an answer but reconnect.
func (s *Server) peer(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	sess.Complete(seq, nil)
	var req proto.PeerRequest
	var why string
	var err error
	switch {
	case s.peerHandler == nil:
		why = "this broker takes no peer traffic"
	case hdr.APIVersion != proto.Version:
		why = "unsupported version"
	default:
		if err = req.ReadFrom(body); err != nil {
			why = "malformed body"
		}
	}
	if why != "" {
		sess.protocol.Load().API(hdr.APIKey, hdr.APIVersion).Error()
		s.Logger.Warn("closing a connection after a Peer frame: "+why,
			zap.String("client", sess.ClientHost()), zap.Int16("version", hdr.APIVersion), zap.Error(err))
		sess.CloseTransport()
		return
	}
	s.peerHandler(req.From, uint8(req.Kind), req.Payload)
}
