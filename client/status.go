package client

import (
	"context"
	"fmt"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// BrokerStatus asks a broker about itself: node id, build, uptime, what it hosts and its
// listeners. A broker that predates the call answers UNSUPPORTED_VERSION.
func (c *Client) BrokerStatus(ctx context.Context) (*proto.BrokerStatusResponse, error) {
	var req proto.BrokerStatusRequest
	body, b, err := c.roundTripAny(ctx, proto.KeyBrokerStatus, req.AppendTo)
	if err != nil {
		return nil, err
	}
	resp := new(proto.BrokerStatusResponse)
	if err := resp.ReadFrom(body); err != nil {
		return nil, b.brokerError(fmt.Errorf("%w: BrokerStatus: %v", errProtocol, err))
	}
	return resp, nil
}

// EnsureTopic is DescribeTopic for a producer: a missing topic is asked for with auto-creation
// allowed, as the Producer asks (and as Kafka producers do), so the broker creates it with its
// default partitions and replication when its auto-creation is on. wasMissing reports that the
// topic did not exist when first asked for. When the broker does not create it, the error is
// UNKNOWN_TOPIC_OR_PARTITION.
func (c *Client) EnsureTopic(ctx context.Context, name string) (info TopicInfo, wasMissing bool, err error) {
	err = retry(ctx, adminAttempts, func() error {
		c.invalidate(name)
		tm, err := c.topicMetadata(ctx, name, wasMissing)
		if err != nil && !wasMissing && errcode.Of(err) == errcode.UnknownTopicOrPartition {
			wasMissing = true
			c.invalidate(name)
			tm, err = c.topicMetadata(ctx, name, true)
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		info = tm.info.clone()
		c.mu.Unlock()
		return nil
	})
	return info, wasMissing, err
}
