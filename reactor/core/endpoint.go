package core

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
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
	return e, nil
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

// ServeFetch runs the read-and-wait loop of one fetch for either protocol and returns the
// response to encode. read fills a fresh response's data buffer from every partition and reports
// the record bytes it read and whether a partition failed; the fetch is answered once minBytes
// are there, a partition failed, maxWaitMs has passed, or closed reports the connection gone.
// Responses of reads that came up short go back to their pools.
func (e *Endpoint) ServeFetch(replicas []*cluster.Replica, maxWaitMs, minBytes int32, closed func() bool,
	read func(*Response) (total int, errored bool)) *Response {
	var resp *Response
	WaitForData(replicas, e.FetchDeadline(maxWaitMs), e.Now, closed, func(last bool) bool {
		if resp != nil {
			resp.Written(nil) // not enough data last time: give the buffers back
		}
		resp = NewResponse()
		total, errored := read(resp)
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
