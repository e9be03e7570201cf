package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// Errors of the client itself (protocol errors are *errcode.Error).
var (
	ErrClosed     = errors.New("client: closed")
	ErrNoBrokers  = errors.New("client: no broker reachable")
	errProtocol   = errors.New("client: protocol violation")
	ErrNoTopic    = errors.New("client: record has no topic")
	ErrBadOptions = errors.New("client: bad options")
)

// Options configures a Client. Zero fields take the documented defaults.
type Options struct {
	// Brokers are bootstrap addresses (host:port). The first reachable one is asked for metadata,
	// which names the others. Required.
	Brokers []string
	// ClientID names the client in logs. Default "thorstream-go".
	ClientID string
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration
	// RequestTimeout bounds the wait for a response, on top of any wait the request asks the
	// broker for (a Fetch's MaxWait). A request that times out closes its connection. Default 30s.
	RequestTimeout time.Duration
	// MetadataMaxAge is how long cached metadata is trusted. Default 5 minutes.
	MetadataMaxAge time.Duration
	// Logger receives debug logs about connections and metadata. Default: no logging.
	Logger *zap.Logger
}

func (o *Options) setDefaults() {
	if o.ClientID == "" {
		o.ClientID = "thorstream-go"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MetadataMaxAge <= 0 {
		o.MetadataMaxAge = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Client talks to a Thorstream cluster. It is safe for concurrent use.
type Client struct {
	opts Options
	log  *zap.Logger

	refreshMu sync.Mutex // serialises metadata requests; taken before mu

	mu      sync.Mutex             // guards the fields below
	conns   map[string]*brokerConn // by address
	brokers map[int32]string       // node id → address, from metadata and leader hints
	topics  map[string]*topicMeta
	closed  bool
}

// topicMeta is the cached metadata of one topic. Replaced whole on refresh; partitions' Leader
// fields are patched in place by leader hints (under Client.mu).
type topicMeta struct {
	info    TopicInfo
	err     error // the topic-level error of the last answer (UNKNOWN_TOPIC_OR_PARTITION)
	fetched time.Time
	stale   bool
}

// New returns a Client. It does not connect: the first request does.
func New(opts Options) (*Client, error) {
	if len(opts.Brokers) == 0 {
		return nil, fmt.Errorf("%w: no Brokers", ErrBadOptions)
	}
	opts.setDefaults()
	return &Client{
		opts:    opts,
		log:     opts.Logger.With(zap.String("client", opts.ClientID)),
		conns:   make(map[string]*brokerConn),
		brokers: make(map[int32]string),
		topics:  make(map[string]*topicMeta),
	}, nil
}

// Close closes every connection; requests in flight fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[string]*brokerConn{}
	c.mu.Unlock()
	for _, b := range conns {
		b.close()
	}
	return nil
}

// conn returns the connection object for addr, creating it (not dialing).
func (c *Client) conn(addr string) (*brokerConn, error) { return c.connFor(addr, addr) }

// connFor returns the connection object stored under key, to addr, creating it (not dialing).
func (c *Client) connFor(key, addr string) (*brokerConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	b := c.conns[key]
	if b == nil {
		b = newBrokerConn(c, addr)
		c.conns[key] = b
	}
	return b, nil
}

// candidates lists addresses to try for a request any broker can serve: brokers already
// connected first, then known brokers, then the bootstrap list.
func (c *Client) candidates() []string {
	c.mu.Lock()
	conns := make([]*brokerConn, 0, len(c.conns))
	for _, b := range c.conns {
		conns = append(conns, b)
	}
	known := make([]string, 0, len(c.opts.Brokers)+len(c.brokers))
	known = append(known, c.opts.Brokers...)
	for _, a := range c.brokers {
		known = append(known, a)
	}
	c.mu.Unlock()
	seen := make(map[string]bool)
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, b := range conns {
		if b.connected() {
			add(b.addr)
		}
	}
	for _, a := range known {
		add(a)
	}
	return out
}

// anyBroker returns a connected broker: the first reachable candidate.
func (c *Client) anyBroker(ctx context.Context) (*brokerConn, error) {
	var errs []error
	for _, addr := range c.candidates() {
		b, err := c.conn(addr)
		if err != nil {
			return nil, err
		}
		if err := b.ensure(ctx); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrNoBrokers, errors.Join(errs...))
}

// roundTripAny sends a request to any broker, moving to the next one if a connection fails
// before it answers.
func (c *Client) roundTripAny(ctx context.Context, apiKey int16, body func([]byte) []byte) ([]byte, *brokerConn, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		b, err := c.anyBroker(ctx)
		if err != nil {
			return nil, nil, err
		}
		resp, err := b.roundTrip(ctx, apiKey, body, 0)
		if err == nil || errcode.Of(err) != errcode.NetworkException {
			return resp, b, err
		}
		lastErr = err
	}
	return nil, nil, lastErr
}

// refreshMetadata asks for metadata of topics (nil: all topics) and updates the cache.
// With createMissing, the broker creates missing topics when its auto-creation is on (what a
// producer asks, as a Kafka producer does); admin calls and consumers never create topics.
func (c *Client) refreshMetadata(ctx context.Context, topics []string, createMissing bool) (*proto.MetadataResponse, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	req := proto.MetadataRequest{Topics: topics, AllowAutoCreate: createMissing && len(topics) > 0}
	if topics != nil && len(topics) == 0 {
		req.Topics = []string{}
	}
	body, b, err := c.roundTripAny(ctx, proto.KeyMetadata, req.AppendTo)
	if err != nil {
		return nil, err
	}
	var resp proto.MetadataResponse
	if err := resp.ReadFrom(body); err != nil {
		return nil, b.brokerError(fmt.Errorf("%w: metadata: %v", errProtocol, err))
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, br := range resp.Brokers {
		c.brokers[br.NodeID] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
	}
	if topics == nil {
		// A full answer: topics missing from it are gone.
		for name := range c.topics {
			c.topics[name].stale = true
		}
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		tm := &topicMeta{info: topicInfoFrom(t), fetched: now}
		if t.ErrorCode != 0 {
			tm.err = b.brokerError(&errcode.Error{Code: errcode.Code(t.ErrorCode), Message: t.ErrorMessage})
		}
		c.topics[t.Name] = tm
	}
	return &resp, nil
}

// topicMetadata returns a topic's cached metadata, loading it when missing or stale.
func (c *Client) topicMetadata(ctx context.Context, topic string, createMissing bool) (*topicMeta, error) {
	c.mu.Lock()
	tm := c.topics[topic]
	fresh := tm != nil && !tm.stale && time.Since(tm.fetched) < c.opts.MetadataMaxAge
	c.mu.Unlock()
	if !fresh {
		if _, err := c.refreshMetadata(ctx, []string{topic}, createMissing); err != nil {
			return nil, err
		}
		c.mu.Lock()
		tm = c.topics[topic]
		c.mu.Unlock()
		if tm == nil {
			return nil, &errcode.Error{Code: errcode.UnknownTopicOrPartition, Message: topic}
		}
	}
	if tm.err != nil {
		return nil, tm.err
	}
	return tm, nil
}

// partitionCount returns the number of partitions of topic.
func (c *Client) partitionCount(ctx context.Context, topic string, createMissing bool) (int32, error) {
	tm, err := c.topicMetadata(ctx, topic, createMissing)
	if err != nil {
		return 0, err
	}
	return int32(len(tm.info.Partitions)), nil
}

// leader returns the connection to the leader of topic/partition.
func (c *Client) leader(ctx context.Context, topic string, partition int32) (*brokerConn, error) {
	return c.leaderConn(ctx, topic, partition, "")
}

// fetchLeader returns a connection to the leader of topic/partition reserved for fetches. The
// broker answers each connection in request order, so a Fetch held in a long poll would delay
// every produce or admin request queued behind it on a shared connection; fetches get their own
// (as franz-go does).
func (c *Client) fetchLeader(ctx context.Context, topic string, partition int32) (*brokerConn, error) {
	return c.leaderConn(ctx, topic, partition, "fetch")
}

func (c *Client) leaderConn(ctx context.Context, topic string, partition int32, purpose string) (*brokerConn, error) {
	tm, err := c.topicMetadata(ctx, topic, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if partition < 0 || int(partition) >= len(tm.info.Partitions) {
		c.mu.Unlock()
		return nil, &errcode.Error{Code: errcode.UnknownTopicOrPartition, Message: fmt.Sprintf("%s/%d", topic, partition)}
	}
	id := tm.info.Partitions[partition].Leader
	addr, ok := c.brokers[id]
	c.mu.Unlock()
	if id < 0 || !ok {
		c.invalidate(topic)
		return nil, &errcode.Error{Code: errcode.LeaderNotAvailable, Message: fmt.Sprintf("%s/%d", topic, partition)}
	}
	if purpose != "" {
		return c.connFor(purpose+"|"+addr, addr)
	}
	return c.conn(addr)
}

// invalidate marks a topic's metadata stale so the next request reloads it.
func (c *Client) invalidate(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tm := c.topics[topic]; tm != nil {
		tm.stale = true
	}
}

// onPartitionError updates routing after a partition-level error: a leader hint moves the
// partition at once; without one, routing errors make the topic's metadata stale.
func (c *Client) onPartitionError(topic string, partition int32, code errcode.Code, hint proto.LeaderHint) {
	switch code {
	case errcode.NotLeaderOrFollower, errcode.LeaderNotAvailable, errcode.UnknownTopicOrPartition,
		errcode.FencedLeaderEpoch, errcode.UnknownLeaderEpoch, errcode.NetworkException:
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := c.topics[topic]
	if tm == nil {
		return
	}
	if code == errcode.NotLeaderOrFollower && hint.ID >= 0 && hint.Addr != "" &&
		partition >= 0 && int(partition) < len(tm.info.Partitions) {
		c.brokers[hint.ID] = hint.Addr
		tm.info.Partitions[partition].Leader = hint.ID
		return
	}
	tm.stale = true
}

// retry runs fn until it succeeds, fails with a non-retryable error, or attempts run out. Between
// attempts it waits a growing backoff (bounded by ctx).
func retry(ctx context.Context, attempts int, fn func() error) error {
	backoff := 20 * time.Millisecond
	for i := 0; ; i++ {
		err := fn()
		if err == nil || i+1 >= attempts || !retryable(err) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

// retryable reports whether err may go away by itself: a retryable code, or a network error.
func retryable(err error) bool {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Code.Retryable()
	}
	return false
}
