// Package core is the request core of the broker: it routes decoded frames by API key, runs
// produce and fetch transactions against the cluster's replicas, and hands responses to each
// connection's Session in request order. It knows nothing of gnet, so every path is tested
// without sockets; the reactor package plugs it into the event loops.
//
// Threading: HandleFrame runs on an event loop and never blocks. Work that may touch the disk or
// wait (fetch long polls, topic creation, timestamp lookups) runs on its own goroutine; produce
// only submits to partition writers without blocking.
package core

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// Options configures a Server.
type Options struct {
	Broker *cluster.Broker
	// Coordinator is the group coordinator both protocols share; nil: group requests are
	// answered COORDINATOR_NOT_AVAILABLE.
	Coordinator *groups.Coordinator
	Metrics     *Metrics // requests and latencies are counted here; nil: not counted
	// AdvertisedAddr is the host:port Metadata gives for this node's binary protocol listener.
	AdvertisedAddr string
	Logger         *zap.Logger
	Now            func() time.Time
	// MaxFetchWait caps a fetch's max wait; default 30 s.
	MaxFetchWait time.Duration
	// MaxFetchBytes caps the record bytes of one fetch response whatever the client asks
	// (Kafka's fetch.max.bytes); default 55 MiB.
	MaxFetchBytes int
	// Listeners are what BrokerStatus reports; default: the binary listener at AdvertisedAddr.
	Listeners []proto.BrokerListener
	// PeerHandler takes the messages of the cluster's other nodes (API key 20, peer.go); it runs
	// on the event loop, must not block and must copy a payload it keeps. nil: this broker takes
	// no peer traffic, and a connection that sends a Peer frame is closed.
	PeerHandler PeerHandler
	// PeerAdmit decides which connections' Peer frames reach PeerHandler (their hello proves
	// the sender); required with a PeerHandler.
	PeerAdmit PeerAdmit
}

// Server serves the binary protocol.
type Server struct {
	Endpoint
	// coordinator serves the group APIs and the binary protocol's OffsetCommit / OffsetFetch.
	coordinator *groups.Coordinator
	hint        proto.LeaderHint
	status      statusInfo // for BrokerStatus (status.go)
	peers       peerGate   // peer.go
}

// Software names the broker in ApiVersions responses.
const Software = "thorstream"

// NewServer returns a Server.
func NewServer(o Options) (*Server, error) {
	e, err := NewEndpoint("core", o.Broker, o.AdvertisedAddr, o.Logger, o.Now, o.MaxFetchWait, o.MaxFetchBytes)
	if err != nil {
		return nil, err
	}
	if o.PeerHandler != nil && o.PeerAdmit == nil {
		return nil, ErrPeerAdmitMissing
	}
	e.Metrics = o.Metrics.Protocol("binary", binaryAPIs())
	addr := net.JoinHostPort(e.AdvertisedHost, strconv.Itoa(int(e.AdvertisedPort)))
	return &Server{Endpoint: e, coordinator: o.Coordinator, hint: proto.LeaderHint{ID: o.Broker.NodeID(), Addr: addr},
		status: newStatusInfo(o, &e, addr), peers: peerGate{handler: o.PeerHandler, admit: o.PeerAdmit}}, nil
}

// HandleFrame serves one request frame whose sequence number in sess is seq. It takes over the
// caller's reference to f. It runs on an event loop and never blocks.
func (s *Server) HandleFrame(sess *Session, seq uint64, f *Frame) {
	hdr, body, err := proto.ParseRequestHeader(f.Bytes())
	api := s.countRequest(sess, hdr, err)
	if err != nil {
		// The frame size check guarantees a whole header; this is defensive.
		sess.Complete(seq, errorResponse(0, errcode.InvalidRequest, err.Error()))
		f.Release()
		return
	}
	if hdr.APIKey == proto.KeyAPIVersions {
		// Answered in version 1's format whatever version was asked, so any client can learn
		// what the broker speaks.
		s.apiVersions(sess, seq, hdr)
		f.Release()
		return
	}
	if hdr.APIKey == proto.KeyPeer {
		// Never answered, whatever the version: a frame it cannot take closes the connection.
		s.peer(sess, seq, hdr, body)
		f.Release()
		return
	}
	if !supported(hdr) {
		api.Error()
		msg := fmt.Sprintf("unknown api key %d", hdr.APIKey)
		if proto.KeyName(hdr.APIKey) != "Unknown" {
			msg = fmt.Sprintf("%s version %d is not supported (supported: %s)", proto.KeyName(hdr.APIKey), hdr.APIVersion, supportedVersions(hdr.APIKey))
		}
		sess.Complete(seq, errorResponse(hdr.CorrelationID, errcode.UnsupportedVersion, msg))
		f.Release()
		return
	}
	switch hdr.APIKey {
	case proto.KeyProduce:
		s.produce(sess, seq, hdr, body, f)
	case proto.KeyFetch:
		s.fetch(sess, seq, hdr, body, f)
	case proto.KeyPing:
		s.ping(sess, seq, hdr, body)
		f.Release()
	case proto.KeyOffsetFetch:
		s.offsetFetch(sess, seq, hdr, body)
		f.Release()
	case proto.KeyOffsetCommit:
		s.offsetCommit(sess, seq, hdr, body, f)
	case proto.KeyListGroups:
		s.listGroups(sess, seq, hdr, body)
		f.Release()
	case proto.KeyDescribeGroups:
		s.describeGroups(sess, seq, hdr, body)
		f.Release()
	case proto.KeyDeleteGroups:
		s.deleteGroups(sess, seq, hdr, body)
		f.Release()
	case proto.KeyJoinGroup:
		s.joinGroup(sess, seq, hdr, body)
		f.Release()
	case proto.KeySyncGroup:
		s.syncGroup(sess, seq, hdr, body)
		f.Release()
	case proto.KeyHeartbeat:
		s.heartbeat(sess, seq, hdr, body)
		f.Release()
	case proto.KeyLeaveGroup:
		s.leaveGroup(sess, seq, hdr, body)
		f.Release()
	default:
		// Control-plane requests may touch the disk (topic creation, timestamp lookups): off the
		// loop. The goroutine owns f.
		go s.control(sess, seq, hdr, body, f)
	}
}

func supported(h proto.RequestHeader) bool {
	for _, a := range proto.Supported {
		if a.Key == h.APIKey {
			return h.APIVersion >= a.MinVersion && h.APIVersion <= a.MaxVersion
		}
	}
	return false
}

// supportedVersions names the versions the broker serves for key: "1" or "1-2".
func supportedVersions(key int16) string {
	for _, a := range proto.Supported {
		if a.Key == key {
			if a.MinVersion == a.MaxVersion {
				return strconv.Itoa(int(a.MinVersion))
			}
			return fmt.Sprintf("%d-%d", a.MinVersion, a.MaxVersion)
		}
	}
	return "none"
}

// control serves the control-plane requests on their own goroutine.
func (s *Server) control(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte, f *Frame) {
	defer f.Release()
	switch hdr.APIKey {
	case proto.KeyMetadata:
		s.metadata(sess, seq, hdr, body)
	case proto.KeyCreateTopics:
		s.createTopics(sess, seq, hdr, body)
	case proto.KeyDeleteTopics:
		s.deleteTopics(sess, seq, hdr, body)
	case proto.KeyListOffsets:
		s.listOffsets(sess, seq, hdr, body)
	case proto.KeyBrokerStatus:
		s.brokerStatus(sess, seq, hdr, body)
	case proto.KeyAlterConfigs:
		s.alterConfigs(sess, seq, hdr, body)
	case proto.KeyCreatePartitions:
		s.createPartitions(sess, seq, hdr, body)
	}
}

// errorResponse is a response frame with a top-level error and an empty body.
func errorResponse(correlationID int32, code errcode.Code, msg string) *Response {
	r := NewResponse()
	b, start := proto.AppendResponseFrame(r.Head().B, correlationID, int16(code), msg)
	proto.FinishFrame(b, start, 0)
	r.Head().B = b
	r.SetSingle()
	return r
}

// encoder is any response body.
type encoder interface{ AppendTo([]byte) []byte }

// bodyResponse is a response frame with no top-level error and body v.
func bodyResponse(correlationID int32, v encoder) *Response {
	r := NewResponse()
	b, start := proto.AppendResponseFrame(r.Head().B, correlationID, 0, "")
	b = v.AppendTo(b)
	proto.FinishFrame(b, start, 0)
	r.Head().B = b
	r.SetSingle()
	return r
}

// decodeError answers a request whose body does not decode.
func decodeError(sess *Session, seq uint64, hdr proto.RequestHeader, err error) {
	sess.protocol.Load().API(hdr.APIKey, hdr.APIVersion).Error()
	sess.Complete(seq, errorResponse(hdr.CorrelationID, errcode.InvalidRequest,
		fmt.Sprintf("%s request: %v", proto.KeyName(hdr.APIKey), err)))
}

func (s *Server) apiVersions(sess *Session, seq uint64, hdr proto.RequestHeader) {
	resp := proto.APIVersionsResponse{APIs: proto.Supported, NodeID: s.Broker.NodeID(), Software: Software}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

func (s *Server) ping(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.PingRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	resp := proto.PingResponse{Echo: req.Echo, NodeID: s.Broker.NodeID()}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

// leaderHint is this node: with one node it leads every partition it has.
func (s *Server) leaderHint() proto.LeaderHint { return s.hint }

// codeAndMessage splits an error into a protocol code and message.
func codeAndMessage(err error) (int16, string) {
	if err == nil {
		return 0, ""
	}
	if e, ok := err.(*errcode.Error); ok {
		return int16(e.Code), e.Message
	}
	return int16(errcode.Of(err)), err.Error()
}
