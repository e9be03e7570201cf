// Package kafka serves the Kafka wire protocol on top of the same request core, sessions and
// replicas as the binary protocol, so a Kafka client only changes its bootstrap address.
//
// Control-plane requests are decoded and encoded with franz-go's kmsg structs. The data path is
// hand-framed where it matters: a Fetch response is written as a chain of small encoded pieces
// and the stored batch bytes, sent with one writev; a Produce request's record bytes alias the
// pooled frame and are appended with pwritev after offsets are patched in place.
//
// Versions and behaviour follow docs/KAFKA.md. Each API lives in its own file named after its
// key (00_produce.go, 01_fetch.go, …), opening with the versions it serves.
package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

// Options configures a Server.
type Options struct {
	Broker *cluster.Broker
	// AdvertisedAddr is the host:port Metadata gives for this node's Kafka listener.
	AdvertisedAddr string
	Logger         *zap.Logger
	Now            func() time.Time
	// MaxFetchWait caps a fetch's max wait; default 30 s.
	MaxFetchWait time.Duration
	// MaxFetchBytes caps the record bytes of one fetch response whatever the client asks
	// (Kafka's fetch.max.bytes); default 55 MiB.
	MaxFetchBytes int
	// Metrics counts requests and latencies (protocol "kafka"); nil: not counted.
	Metrics *core.Metrics
	// Coordinator is the group coordinator both protocols share; nil: the group APIs answer
	// COORDINATOR_NOT_AVAILABLE.
	Coordinator *groups.Coordinator
}

// Server serves the Kafka protocol.
type Server struct {
	core.Endpoint
	coordinator *groups.Coordinator
}

// NewServer returns a Server.
func NewServer(o Options) (*Server, error) {
	logger := o.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	e, err := core.NewEndpoint("kafka", o.Broker, o.AdvertisedAddr, logger.With(zap.String("listener", "kafka")), o.Now, o.MaxFetchWait, o.MaxFetchBytes)
	if err != nil {
		return nil, err
	}
	e.Metrics = o.Metrics.Protocol("kafka", metricsAPIs())
	e.Listener = kafkaListener
	return &Server{Endpoint: e, coordinator: o.Coordinator}, nil
}

// kafkaListener is a node's Kafka listener, the address Kafka clients are sent to.
func kafkaListener(n *meta.Node) meta.Endpoint { return n.Kafka }

// header is a decoded Kafka request header (v1 or v2).
type header struct {
	key           int16
	version       int16
	correlationID int32
	flexible      bool // the request and response bodies use flexible (KIP-482) encoding
}

var errBadHeader = errors.New("kafka: malformed request header")

// parseHeader decodes a request header and returns the body after it. The client id is skipped
// (it is not used); for flexible requests the header's tagged fields are skipped too.
func parseHeader(frame []byte) (header, []byte, error) {
	if len(frame) < 10 {
		return header{}, nil, errBadHeader
	}
	h := header{
		key:           int16(binary.BigEndian.Uint16(frame)),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	clientIDLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	if clientIDLen > 0 {
		if clientIDLen > len(rest) {
			return h, nil, errBadHeader
		}
		rest = rest[clientIDLen:]
	} else if clientIDLen < -1 {
		return h, nil, errBadHeader
	}
	h.flexible = isFlexible(h.key, h.version)
	if h.flexible {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section: a count, then tag, size and bytes for each.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errBadHeader
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errBadHeader
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errBadHeader
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// HandleFrame serves one Kafka request frame. It runs on an event loop, never blocks, and takes
// over the caller's reference to f.
func (s *Server) HandleFrame(sess *core.Session, seq uint64, f *core.Frame) {
	h, body, err := parseHeader(f.Bytes())
	counters := s.countRequest(h, err)
	if err != nil {
		// Kafka closes a connection whose request header it cannot read.
		s.Logger.Debug("closing connection after a malformed request header", zap.Error(err))
		s.abort(sess, seq, f)
		return
	}
	if h.key == kmsg.ApiVersions.Int16() {
		s.apiVersions(sess, seq, h, body)
		f.Release()
		return
	}
	api, ok := supportedAPI(h.key)
	if !ok || h.version < api.min || h.version > api.max {
		counters.Error()
		// Answered with UNSUPPORTED_VERSION where the response can carry it (unsupported.go).
		s.unsupported(sess, seq, h, f)
		return
	}
	switch h.key {
	case kmsg.Produce.Int16():
		s.produce(sess, seq, h, body, f)
	case kmsg.Fetch.Int16():
		s.fetch(sess, seq, h, body, f)
	case kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(), kmsg.JoinGroup.Int16(), kmsg.Heartbeat.Int16(),
		kmsg.LeaveGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.DescribeGroups.Int16(), kmsg.ListGroups.Int16(),
		kmsg.DeleteGroups.Int16(), kmsg.OffsetDelete.Int16():
		// The group coordinator never blocks: decoded here, answered from its shards (groups.go).
		s.group(sess, seq, h, body, f)
	case kmsg.OffsetForLeaderEpoch.Int16():
		// Answered from the in-memory leader epoch cache, on the loop.
		s.offsetForLeaderEpoch(sess, seq, h, body, f)
	default:
		// Control-plane requests may touch the disk (topic creation, time-index lookups,
		// producer id allocation): off the loop. The goroutine owns f.
		go s.control(sess, seq, h, body, f)
	}
}

// abort answers nothing for seq and closes the connection.
func (s *Server) abort(sess *core.Session, seq uint64, f *core.Frame) {
	f.Release()
	sess.Complete(seq, nil)
	sess.CloseTransport()
}

func (s *Server) control(sess *core.Session, seq uint64, h header, body []byte, f *core.Frame) {
	defer f.Release()
	var resp kmsg.Response
	var err error
	switch h.key {
	case kmsg.Metadata.Int16():
		resp, err = s.metadata(h, body)
	case kmsg.ListOffsets.Int16():
		resp, err = s.listOffsets(h, body)
	case kmsg.CreateTopics.Int16():
		resp, err = s.createTopics(h, body)
	case kmsg.DeleteTopics.Int16():
		resp, err = s.deleteTopics(h, body)
	case kmsg.InitProducerID.Int16():
		resp, err = s.initProducerID(h, body)
	case kmsg.DescribeConfigs.Int16():
		resp, err = s.describeConfigs(h, body)
	case kmsg.DeleteRecords.Int16():
		resp, err = s.deleteRecords(h, body)
	case kmsg.FindCoordinator.Int16():
		resp, err = s.findCoordinator(h, body)
	case kmsg.AlterConfigs.Int16():
		resp, err = s.alterConfigs(h, body)
	case kmsg.DescribeLogDirs.Int16():
		resp, err = s.describeLogDirs(h, body)
	case kmsg.CreatePartitions.Int16():
		resp, err = s.createPartitions(h, body)
	case kmsg.IncrementalAlterConfigs.Int16():
		resp, err = s.incrementalAlterConfigs(h, body)
	case kmsg.DescribeCluster.Int16():
		resp, err = s.describeCluster(h, body)
	case kmsg.DescribeProducers.Int16():
		resp, err = s.describeProducers(h, body)
	default:
		err = fmt.Errorf("no handler for key %d", h.key)
	}
	if err != nil {
		// A body that does not parse: Kafka closes the connection.
		s.Logger.Debug("closing connection after a malformed request", zap.Int16("key", h.key), zap.Int16("version", h.version), zap.Error(err))
		s.Metrics.API(h.key, h.version).Error()
		sess.Complete(seq, nil)
		sess.CloseTransport()
		return
	}
	sess.Complete(seq, encodeResponse(h, resp))
}

// encodeResponse frames a kmsg response: size, correlation id, the header's tag byte for flexible
// versions (never for ApiVersions), then the body.
func encodeResponse(h header, resp kmsg.Response) *core.Response {
	r := core.NewResponse()
	b := r.Head().B[:0]
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(h.correlationID))
	if h.flexible && h.key != kmsg.ApiVersions.Int16() {
		b = append(b, 0)
	}
	resp.SetVersion(h.version)
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	r.Head().B = b
	r.SetSingle()
	return r
}

// codeOf turns an error into a Kafka error code and message.
func codeOf(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var e *errcode.Error
	if errors.As(err, &e) {
		msg := e.Message
		return int16(e.Code), &msg
	}
	msg := err.Error()
	return int16(errcode.UnknownServerError), &msg
}

// nodeID is this node's id.
func (s *Server) nodeID() int32 { return s.Broker.NodeID() }
