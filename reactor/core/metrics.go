package core

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// Metrics are the network side's Prometheus metrics: requests and their errors per protocol, API
// and version, produce and fetch latencies, connections per listener, the memory budget's bytes
// in flight and the sessions paused on their caps. Both protocols' servers and the reactor count
// into the one set; a nil *Metrics (and every nil piece of it) counts nothing.
//
// Nothing here allocates once set up: each protocol resolves a counter for every API and version
// it serves when its server is created (Protocol), each listener its connection counters
// (Listener), and the hot path only adds to atomics.
type Metrics struct {
	requests    *prometheus.CounterVec   // {protocol, api, version}
	errors      *prometheus.CounterVec   // {protocol, api, version}
	latency     *prometheus.HistogramVec // {protocol, api}
	connsOpen   *prometheus.GaugeVec     // {listener}
	connsTotal  *prometheus.CounterVec   // {listener}
	connsClosed *prometheus.CounterVec   // {listener, reason}
	paused      prometheus.Gauge
	inflight    prometheus.GaugeFunc
	limit       prometheus.GaugeFunc

	budget atomic.Pointer[Budget]
}

// NewMetrics returns the network metrics; register them (they are a prometheus.Collector) and
// pass them to the servers and the reactor.
func NewMetrics() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_requests_total",
			Help: "Requests received, by protocol, API and version (api=\"unsupported\": an API or version the broker does not serve)."},
			[]string{"protocol", "api", "version"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_request_errors_total",
			Help: "Requests that failed as a whole (not parsed, not supported, a body that does not decode) and Produce and Fetch requests with an error on any partition."},
			[]string{"protocol", "api", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "thorstream_request_duration_seconds",
			Help:    "Time from a Produce or Fetch request's whole frame to its response being handed to the connection (a fetch's long-poll wait included).",
			Buckets: cluster.LatencyBuckets}, []string{"protocol", "api"}),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thorstream_connections_open",
			Help: "Client connections open now."}, []string{"listener"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_connections_total",
			Help: "Client connections accepted."}, []string{"listener"}),
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_connections_closed_total",
			Help: "Client connections closed, by reason: client (the client closed it, or the socket failed), bad_frame (a frame size below 0 or over the limit), frame_timeout, idle_timeout, unread_responses, unread_input, request (the protocol closed it after a request), shutdown."},
			[]string{"listener", "reason"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "thorstream_connections_paused",
			Help: "Connections whose reading is paused because their requests in flight reached the per-connection caps."}),
	}
	m.inflight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thorstream_inflight_bytes",
		Help: "Bytes in flight on connections, counted against the broker-wide memory budget (frames being read or served, fetch responses, unsent output)."},
		func() float64 { return float64(m.budget.Load().Used()) })
	m.limit = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thorstream_inflight_limit_bytes",
		Help: "The broker-wide memory budget for bytes in flight (THORSTREAM_MAX_INFLIGHT_BYTES)."},
		func() float64 { return float64(m.budget.Load().Limit()) })
	return m
}

// WatchBudget makes b the budget whose use thorstream_inflight_bytes reports.
func (m *Metrics) WatchBudget(b *Budget) {
	if m != nil {
		m.budget.Store(b)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.latency, m.connsOpen, m.connsTotal, m.connsClosed, m.paused, m.inflight, m.limit}
}

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect is prometheus.Collector's.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Session pause accounting (Session.Begin, Complete, Close), under the session's lock.
func (m *Metrics) sessionPaused() {
	if m != nil {
		m.paused.Inc()
	}
}

func (m *Metrics) sessionResumed() {
	if m != nil {
		m.paused.Dec()
	}
}

// API is one protocol's API and the versions it serves, for Protocol.
type API struct {
	Key      int16
	Name     string
	Min, Max int16
}

// APICounters are the request and error counters of one API at one version.
type APICounters struct {
	requests, errors prometheus.Counter
}

// Request counts a request. A nil *APICounters counts nothing.
func (a *APICounters) Request() {
	if a != nil {
		a.requests.Inc()
	}
}

// Error counts a request that failed.
func (a *APICounters) Error() {
	if a != nil {
		a.errors.Inc()
	}
}

// ProtocolMetrics are one protocol's request metrics, resolved once. A nil *ProtocolMetrics
// counts nothing.
type ProtocolMetrics struct {
	byKey       [][]*APICounters // [key][version-min]; nil rows: keys not served
	mins        []int16          // by key
	unsupported *APICounters
	produce     prometheus.Observer
	fetch       prometheus.Observer
}

// Protocol resolves the request metrics of the protocol named name (the protocol label), which
// serves apis. nil when m is.
func (m *Metrics) Protocol(name string, apis []API) *ProtocolMetrics {
	if m == nil {
		return nil
	}
	maxKey := int16(0)
	for _, a := range apis {
		maxKey = max(maxKey, a.Key)
	}
	p := &ProtocolMetrics{
		byKey: make([][]*APICounters, maxKey+1),
		mins:  make([]int16, maxKey+1),
		unsupported: &APICounters{
			requests: m.requests.WithLabelValues(name, "unsupported", ""),
			errors:   m.errors.WithLabelValues(name, "unsupported", ""),
		},
		produce: m.latency.WithLabelValues(name, "Produce"),
		fetch:   m.latency.WithLabelValues(name, "Fetch"),
	}
	for _, a := range apis {
		if a.Key < 0 || a.Min < 0 || a.Max < a.Min {
			continue
		}
		row := make([]*APICounters, a.Max-a.Min+1)
		for v := a.Min; v <= a.Max; v++ {
			version := strconv.Itoa(int(v))
			row[v-a.Min] = &APICounters{
				requests: m.requests.WithLabelValues(name, a.Name, version),
				errors:   m.errors.WithLabelValues(name, a.Name, version),
			}
		}
		p.byKey[a.Key], p.mins[a.Key] = row, a.Min
	}
	return p
}

// API returns the counters of key at version: those of "unsupported" when the protocol does not
// serve it, nil when p is nil. It allocates nothing.
func (p *ProtocolMetrics) API(key, version int16) *APICounters {
	if p == nil {
		return nil
	}
	if key >= 0 && int(key) < len(p.byKey) {
		row := p.byKey[key]
		if i := int(version) - int(p.mins[key]); i >= 0 && i < len(row) {
			return row[i]
		}
	}
	return p.unsupported
}

// Unsupported returns the counters of requests the protocol does not serve (nil when p is).
func (p *ProtocolMetrics) Unsupported() *APICounters {
	if p == nil {
		return nil
	}
	return p.unsupported
}

// Start is when a request that ObserveProduce or ObserveFetch will time began; the zero Time,
// without reading the clock, when p is nil.
func (p *ProtocolMetrics) Start() time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.Now()
}

// ObserveProduce records a produce that began at start (Start).
func (p *ProtocolMetrics) ObserveProduce(start time.Time) {
	if p != nil && !start.IsZero() {
		p.produce.Observe(time.Since(start).Seconds())
	}
}

// ObserveFetch records a fetch that began at start (Start).
func (p *ProtocolMetrics) ObserveFetch(start time.Time) {
	if p != nil && !start.IsZero() {
		p.fetch.Observe(time.Since(start).Seconds())
	}
}

// CloseReason is why a connection closed, for thorstream_connections_closed_total.
type CloseReason int32

// Reasons a connection closes.
const (
	ClosedByClient        CloseReason = iota // the client closed it, or the socket failed
	ClosedBadFrame                           // a frame size below 0 or over the limit
	ClosedFrameTimeout                       // a frame begun did not arrive in time
	ClosedIdle                               // nothing sent, nothing waited for, too long
	ClosedUnreadResponses                    // responses left unread while the budget is short
	ClosedUnreadInput                        // too much input piled up while paused
	ClosedByRequest                          // the protocol closed it after a request
	ClosedShutdown                           // the broker stopped
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{"client", "bad_frame", "frame_timeout", "idle_timeout",
	"unread_responses", "unread_input", "request", "shutdown"}

// String is the reason's label value.
func (r CloseReason) String() string {
	if r >= 0 && r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "client"
}

// ListenerMetrics are one listener's connection metrics, resolved once. A nil *ListenerMetrics
// counts nothing.
type ListenerMetrics struct {
	open   prometheus.Gauge
	total  prometheus.Counter
	closed [numCloseReasons]prometheus.Counter
}

// Listener resolves the connection metrics of the listener named name. nil when m is.
func (m *Metrics) Listener(name string) *ListenerMetrics {
	if m == nil {
		return nil
	}
	l := &ListenerMetrics{open: m.connsOpen.WithLabelValues(name), total: m.connsTotal.WithLabelValues(name)}
	for r := range numCloseReasons {
		l.closed[r] = m.connsClosed.WithLabelValues(name, r.String())
	}
	return l
}

// Opened counts a connection accepted.
func (l *ListenerMetrics) Opened() {
	if l != nil {
		l.open.Inc()
		l.total.Inc()
	}
}

// Closed counts a connection closed for reason.
func (l *ListenerMetrics) Closed(reason CloseReason) {
	if l != nil {
		l.open.Dec()
		if reason < 0 || reason >= numCloseReasons {
			reason = ClosedByClient
		}
		l.closed[reason].Inc()
	}
}

// binaryAPIs is what the binary protocol serves, for Protocol.
func binaryAPIs() []API {
	apis := make([]API, 0, len(proto.Supported))
	for _, a := range proto.Supported {
		apis = append(apis, API{Key: a.Key, Name: proto.KeyName(a.Key), Min: a.MinVersion, Max: a.MaxVersion})
	}
	return apis
}

// countRequest counts a binary protocol request whose header parsed with err, binds the session
// to the protocol's metrics on its first frame, and returns the request's counters (those of
// "unsupported", counted as an error, when the header did not parse). On the loop.
func (s *Server) countRequest(sess *Session, hdr proto.RequestHeader, err error) *APICounters {
	p := s.Metrics
	if p == nil {
		return nil
	}
	if sess.protocol.Load() == nil {
		sess.protocol.Store(p)
	}
	if err != nil {
		p.unsupported.Request()
		p.unsupported.Error()
		return p.unsupported
	}
	api := p.API(hdr.APIKey, hdr.APIVersion)
	api.Request()
	return api
}

// CountFetch counts, once a fetch's response is final, the records it sends per partition (data
// holds them) and the request as an error when a partition failed. Either protocol's fetch.
func CountFetch(api *APICounters, replicas []*cluster.Replica, results []PartitionRead, data []byte) {
	failed := false
	for i := range results {
		res := &results[i]
		if res.Code != errcode.None {
			failed = true
		} else if res.HasRecords && i < len(replicas) && replicas[i] != nil {
			replicas[i].CountFetched(data[res.DataStart:res.DataEnd])
		}
	}
	if failed {
		api.Error()
	}
}

// CountProduce counts a produce as an error when a partition failed. Either protocol's produce.
func CountProduce(api *APICounters, results []cluster.AppendResult) {
	if api == nil {
		return
	}
	for i := range results {
		if results[i].Err != nil {
			api.Error()
			return
		}
	}
}
