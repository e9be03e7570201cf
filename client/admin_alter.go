package client

import (
	"context"
	"time"

	"github.com/thorstream/thorstream/codec/proto"
)

// ConfigOpType says what a ConfigOp does to its key.
type ConfigOpType int8

// Config operations (the binary protocol's AlterConfigs operations).
const (
	ConfigSet      = ConfigOpType(proto.ConfigOpSet)      // the key takes Value
	ConfigDelete   = ConfigOpType(proto.ConfigOpDelete)   // the override goes: the topic takes the broker's default again
	ConfigAppend   = ConfigOpType(proto.ConfigOpAppend)   // Value's comma-separated items join a list config
	ConfigSubtract = ConfigOpType(proto.ConfigOpSubtract) // Value's items leave a list config
)

// ConfigOp is one change of a topic's configuration.
type ConfigOp struct {
	Op    ConfigOpType
	Key   string
	Value string // ignored by ConfigDelete
}

// AlterTopicConfig changes a topic's configuration overrides: the operations apply together or
// not at all, and the topic's partitions run with the result when it returns. With validateOnly
// the broker only checks them.
func (c *Client) AlterTopicConfig(ctx context.Context, name string, ops []ConfigOp, validateOnly bool) error {
	req := proto.AlterConfigsRequest{ValidateOnly: validateOnly, Topics: []proto.AlterConfigsTopic{{Name: name}}}
	for _, op := range ops {
		req.Topics[0].Configs = append(req.Topics[0].Configs, proto.ConfigOp{Op: int8(op.Op), Key: op.Key, Value: op.Value})
	}
	err := c.topicAdmin(ctx, proto.KeyAlterConfigs, name, req.AppendTo)
	c.invalidate(name)
	return err
}

// CreatePartitions grows a topic to count partitions (the total, not the number to add). With
// validateOnly the broker only checks that it could.
func (c *Client) CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error {
	req := proto.CreatePartitionsRequest{
		Topics:       []proto.CreatePartitionsTopic{{Name: name, Count: count}},
		TimeoutMs:    int32(c.opts.RequestTimeout / time.Millisecond),
		ValidateOnly: validateOnly,
	}
	err := c.topicAdmin(ctx, proto.KeyCreatePartitions, name, req.AppendTo)
	c.invalidate(name)
	return err
}
