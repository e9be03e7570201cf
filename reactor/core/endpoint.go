package core

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/proto"
)

// Endpoint is what the servers of both protocols share: the broker, the address clients are told
// to use, the logger and clock, and the fetch limits, with their defaults applied.
type Endpoint struct {
	Broker         *cluster.Broker
	Logger         *zap.Logger
	Now            func() time.Time
	AdvertisedHost string
	AdvertisedPort int32
	// MaxFetchWait caps a fetch's max wait; default 30 s.
	MaxFetchWait time.Duration
	// MaxFetchBytes caps the record bytes of one fetch response whatever the client asks
	// (Kafka's fetch.max.bytes); default 55 MiB.
	MaxFetchBytes int
	// Metrics are the protocol's request metrics (metrics.go); nil: none.
	Metrics *ProtocolMetrics
	// Listener picks, of a node's advertised listeners, the one this protocol's clients use;
	// default the binary protocol's.
	Listener func(n *meta.Node) meta.Endpoint
}

// NewEndpoint checks the advertised host:port and fills in defaults. name prefixes errors.
func NewEndpoint(name string, broker *cluster.Broker, advertised string, logger *zap.Logger, now func() time.Time,
	maxFetchWait time.Duration, maxFetchBytes int) (Endpoint, error) {
	e := Endpoint{Broker: broker, Logger: logger, Now: now, MaxFetchWait: maxFetchWait, MaxFetchBytes: maxFetchBytes}
	if e.Logger == nil {
		e.Logger = zap.NewNop()
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.MaxFetchWait <= 0 {
		e.MaxFetchWait = 30 * time.Second
	}
	if e.MaxFetchBytes <= 0 {
		e.MaxFetchBytes = 55 << 20
	}
	host, portStr, err := net.SplitHostPort(advertised)
	if err != nil {
		return e, fmt.Errorf("%s: advertised address %q: %w", name, advertised, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return e, fmt.Errorf("%s: advertised address %q: bad port", name, advertised)
	}
	e.AdvertisedHost, e.AdvertisedPort = host, int32(port)
	e.Listener = binaryListener
	return e, nil
}

func binaryListener(n *meta.Node) meta.Endpoint { return n.Binary }

// NodeAddress is where node id serves this protocol: this node at its own advertised address
// (whatever the metadata holds), another at the listener its registration advertised. ok is
// false for a node the snapshot does not have, or one without such a listener.
func (e *Endpoint) NodeAddress(snap *cluster.Snapshot, id int32) (host string, port int32, ok bool) {
	if id == e.Broker.NodeID() {
		return e.AdvertisedHost, e.AdvertisedPort, true
	}
	n := snap.Node(id)
	if n == nil {
		return "", 0, false
	}
	listener := e.Listener
	if listener == nil {
		listener = binaryListener
	}
	ep := listener(n)
	if ep.Port <= 0 {
		return "", 0, false
	}
	return ep.Host, ep.Port, true
}

// BrokerAddr is one node as Metadata lists it to this protocol's clients.
type BrokerAddr struct {
	ID   int32
	Host string
	Port int32
}

// Brokers are the live nodes of snap at their NodeAddress, sorted by id; a node without this
// protocol's listener is left out.
func (e *Endpoint) Brokers(snap *cluster.Snapshot) []BrokerAddr {
	live := snap.LiveNodes()
	out := make([]BrokerAddr, 0, len(live))
	for _, n := range live {
		if host, port, ok := e.NodeAddress(snap, n.ID); ok {
			out = append(out, BrokerAddr{ID: n.ID, Host: host, Port: port})
		}
	}
	return out
}

// OfflineReplicas are the replicas of p whose nodes are fenced or not registered.
func OfflineReplicas(snap *cluster.Snapshot, p *meta.Partition) []int32 {
	var out []int32
	for _, id := range p.Replicas {
		if n := snap.Node(id); n == nil || n.Fenced {
			out = append(out, id)
		}
	}
	return out
}

// routeHint is the binary protocol's leader hint for a route: the leader's id and binary
// address ("" when this node does not know it), or no leader.
func (s *Server) routeHint(rt cluster.Route) proto.LeaderHint {
	switch {
	case rt.Leader < 0:
		return proto.NoLeader
	case rt.Leader == s.Broker.NodeID():
		return s.hint
	}
	host, port, ok := s.NodeAddress(s.Broker.Snapshot(), rt.Leader)
	if !ok {
		return proto.LeaderHint{ID: rt.Leader}
	}
	return proto.LeaderHint{ID: rt.Leader, Addr: net.JoinHostPort(host, strconv.Itoa(int(port)))}
}

// ResponseBudget is the record bytes a fetch may return: what it asked for, capped by the
// broker's limit, and at least 1 (the first batch still comes whole).
func (e *Endpoint) ResponseBudget(asked int) int {
	return max(min(asked, e.MaxFetchBytes), 1)
}

// FetchDeadline is when a fetch that asked to wait maxWaitMs must be answered.
func (e *Endpoint) FetchDeadline(maxWaitMs int32) time.Time {
	return e.Now().Add(min(time.Duration(max(maxWaitMs, 0))*time.Millisecond, e.MaxFetchWait))
}

// ServeFetch runs the read-and-wait loop of fetch request seq of sess for either protocol and
// returns the response to encode. askedBytes is the fetch's max bytes. Before each read the
// response is sized against the connection's share and the broker-wide budget
// (Session.ReserveResponse), so a client that does not read its responses holds no more than its
// share: read fills a fresh response's data buffer from every partition with at most limit
// record bytes (0: read nothing now) and reports the bytes it read and whether a partition
// failed. The fetch is answered once minBytes are there, a partition failed, maxWaitMs has
// passed, or the connection closed; while the budget is short it waits like a fetch that found
// no data, and is answered with what the budget allows. Responses of reads that came up short
// go back to their pools.
func (e *Endpoint) ServeFetch(sess *Session, seq uint64, askedBytes int, replicas []*cluster.Replica, maxWaitMs, minBytes int32,
	read func(resp *Response, limit int) (total int, errored bool)) *Response {
	var resp *Response
	held, starved := 0, false
	WaitForData(replicas, e.FetchDeadline(maxWaitMs), e.Now, sess.Closed, func() bool { return starved }, func(last bool) bool {
		if resp != nil {
			sess.DropResponse(seq, resp, held) // not enough data last time: give everything back
		}
		resp = NewResponse()
		granted, short := sess.ReserveResponse(seq, e.ResponseBudget(askedBytes))
		total, errored := read(resp, granted)
		if !sess.SettleResponse(seq, resp, granted, total) {
			// A first batch larger than the grant, and no memory for the rest of it: answer
			// with nothing for now rather than more than the budget.
			resp.Written(nil)
			resp = NewResponse()
			total, errored = read(resp, 0)
			sess.SettleResponse(seq, resp, 0, total)
			short = true
		}
		held, starved = total, short
		return last || total >= int(minBytes) || errored
	})
	return resp
}

// WouldCreateTopic reports whether a produce naming topic must first create it: auto-creation is
// on, the topic is missing and its name is valid. Creating writes files, so callers do it on a
// goroutine, never on an event loop.
func (e *Endpoint) WouldCreateTopic(topic string) bool {
	return e.Broker.AutoCreateTopics() && e.Broker.Snapshot().Topics[topic] == nil && cluster.ValidTopicName(topic) == nil
}

// wouldCreateTopicBytes is WouldCreateTopic for a name still in the request's bytes: the lookup of
// a known topic, the produce path's case, converts nothing and allocates nothing.
func (e *Endpoint) wouldCreateTopicBytes(topic []byte) bool {
	if !e.Broker.AutoCreateTopics() || e.Broker.Snapshot().Topics[string(topic)] != nil {
		return false
	}
	return cluster.ValidTopicName(string(topic)) == nil
}
