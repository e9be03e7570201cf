package client

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// adminAttempts bounds retries of retryable errors in admin calls.
const adminAttempts = 5

// CreateTopic creates a topic. partitions -1 and replicationFactor -1 take the broker defaults.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, replicationFactor int16, configs map[string]string) error {
	req := proto.CreateTopicsRequest{
		Topics:    []proto.CreateTopic{{Name: name, NumPartitions: partitions, ReplicationFactor: replicationFactor}},
		TimeoutMs: int32(c.opts.RequestTimeout / time.Millisecond),
	}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		req.Topics[0].Configs = append(req.Topics[0].Configs, proto.ConfigEntry{Key: k, Value: configs[k]})
	}
	err := c.topicAdmin(ctx, proto.KeyCreateTopics, name, req.AppendTo)
	c.invalidate(name)
	return err
}

// DeleteTopic deletes a topic.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	req := proto.DeleteTopicsRequest{Names: []string{name}, TimeoutMs: int32(c.opts.RequestTimeout / time.Millisecond)}
	err := c.topicAdmin(ctx, proto.KeyDeleteTopics, name, req.AppendTo)
	c.mu.Lock()
	delete(c.topics, name)
	c.mu.Unlock()
	return err
}

// topicAdmin sends a CreateTopics or DeleteTopics request for one topic and returns its error.
func (c *Client) topicAdmin(ctx context.Context, apiKey int16, name string, body func([]byte) []byte) error {
	return retry(ctx, adminAttempts, func() error {
		resp, b, err := c.roundTripAny(ctx, apiKey, body)
		if err != nil {
			return err
		}
		var r proto.TopicErrorsResponse
		if err := r.ReadFrom(resp); err != nil {
			return b.brokerError(fmt.Errorf("%w: %s: %v", errProtocol, proto.KeyName(apiKey), err))
		}
		for _, t := range r.Topics {
			if t.Name == name && t.ErrorCode != 0 {
				return b.brokerError(&errcode.Error{Code: errcode.Code(t.ErrorCode), Message: t.ErrorMessage})
			}
		}
		return nil
	})
}

// ListTopics returns every topic, sorted by name.
func (c *Client) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	var resp *proto.MetadataResponse
	err := retry(ctx, adminAttempts, func() error {
		var err error
		resp, err = c.refreshMetadata(ctx, nil, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(resp.Topics))
	for i := range resp.Topics {
		if resp.Topics[i].ErrorCode == 0 {
			out = append(out, topicInfoFrom(&resp.Topics[i]))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DescribeTopic returns one topic's fresh metadata.
func (c *Client) DescribeTopic(ctx context.Context, name string) (TopicInfo, error) {
	var info TopicInfo
	err := retry(ctx, adminAttempts, func() error {
		c.invalidate(name)
		tm, err := c.topicMetadata(ctx, name, false)
		if err != nil {
			return err
		}
		c.mu.Lock()
		info = tm.info.clone()
		c.mu.Unlock()
		return nil
	})
	return info, err
}

// ListOffsets returns the offset of topic/partition at timestamp: TimestampEarliest (-2) gives
// the log start offset, TimestampLatest (-1) the high watermark, a time in ms the first offset
// whose timestamp is at or after it (-1 if none).
func (c *Client) ListOffsets(ctx context.Context, topic string, partition int32, timestamp int64) (int64, error) {
	var offset int64
	err := retry(ctx, adminAttempts, func() error {
		var err error
		offset, _, err = c.listOffset(ctx, topic, partition, timestamp)
		return err
	})
	return offset, err
}

// Timestamps understood by ListOffsets.
const (
	TimestampLatest   = proto.TimestampLatest
	TimestampEarliest = proto.TimestampEarliest
)

// listOffset is one ListOffsets attempt against the partition's leader.
func (c *Client) listOffset(ctx context.Context, topic string, partition int32, timestamp int64) (offset, ts int64, err error) {
	p, err := c.listOffsetVersion(ctx, topic, partition, timestamp, proto.Version)
	return p.Offset, p.Timestamp, err
}

// listOffsetVersion is one ListOffsets attempt at version against the partition's leader; it
// returns the partition's answer, without an error code.
func (c *Client) listOffsetVersion(ctx context.Context, topic string, partition int32, timestamp int64, version int16) (proto.ListOffsetsPartitionResponse, error) {
	var none proto.ListOffsetsPartitionResponse
	b, err := c.leader(ctx, topic, partition)
	if err != nil {
		return none, err
	}
	req := proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{
		Name: topic, Partitions: []proto.ListOffsetsPartition{{Partition: partition, Timestamp: timestamp}},
	}}}
	if version >= 2 && b.listOffsetsV1.Load() {
		version = 1
	}
	body, err := b.roundTripVersion(ctx, proto.KeyListOffsets, version, req.AppendTo, 0)
	if version >= 2 && errcode.Of(err) == errcode.UnsupportedVersion {
		// A broker older than version 2: ask it in version 1 from now on (until it reconnects).
		b.listOffsetsV1.Store(true)
		version = 1
		body, err = b.roundTripVersion(ctx, proto.KeyListOffsets, version, req.AppendTo, 0)
	}
	if err != nil {
		c.onPartitionError(topic, partition, errcode.Of(err), proto.NoLeader)
		return none, err
	}
	resp := proto.ListOffsetsResponse{Version: version}
	if err := resp.ReadFrom(body); err != nil {
		return none, b.brokerError(fmt.Errorf("%w: ListOffsets: %v", errProtocol, err))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Name != topic || p.Partition != partition {
				continue
			}
			if p.ErrorCode != 0 {
				code := errcode.Code(p.ErrorCode)
				c.onPartitionError(topic, partition, code, p.Leader)
				return none, b.brokerError(&errcode.Error{Code: code, Message: p.ErrorMessage})
			}
			if version < 2 {
				p.Replicas = nil
			}
			return p, nil
		}
	}
	return none, b.brokerError(fmt.Errorf("%w: ListOffsets: no answer for %s/%d", errProtocol, topic, partition))
}

// Ping measures a round trip to a broker and returns it with the node id that answered.
func (c *Client) Ping(ctx context.Context) (time.Duration, int32, error) {
	start := time.Now()
	req := proto.PingRequest{Echo: start.UnixNano()}
	body, b, err := c.roundTripAny(ctx, proto.KeyPing, req.AppendTo)
	if err != nil {
		return 0, -1, err
	}
	var resp proto.PingResponse
	if err := resp.ReadFrom(body); err != nil {
		return 0, -1, b.brokerError(fmt.Errorf("%w: Ping: %v", errProtocol, err))
	}
	return time.Since(start), resp.NodeID, nil
}

// APIVersions asks a broker which APIs and versions it serves.
func (c *Client) APIVersions(ctx context.Context) (*proto.APIVersionsResponse, error) {
	var req proto.APIVersionsRequest
	body, b, err := c.roundTripAny(ctx, proto.KeyAPIVersions, req.AppendTo)
	if err != nil {
		return nil, err
	}
	resp := new(proto.APIVersionsResponse)
	if err := resp.ReadFrom(body); err != nil {
		return nil, b.brokerError(fmt.Errorf("%w: ApiVersions: %v", errProtocol, err))
	}
	return resp, nil
}

// CommitOffsets commits offsets (the next offset to consume) for group.
func (c *Client) CommitOffsets(ctx context.Context, group string, offsets map[TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	byTopic := make(map[string][]proto.OffsetCommitPartition)
	for tp, off := range offsets {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], proto.OffsetCommitPartition{Partition: tp.Partition, Offset: off})
	}
	req := proto.OffsetCommitRequest{Group: group}
	for name, ps := range byTopic {
		req.Topics = append(req.Topics, proto.OffsetCommitTopic{Name: name, Partitions: ps})
	}
	return retry(ctx, adminAttempts, func() error {
		body, b, err := c.coordinatorRoundTrip(ctx, group, proto.KeyOffsetCommit, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.OffsetCommitResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: OffsetCommit: %v", errProtocol, err))
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return c.groupError(b, errcode.Code(p.ErrorCode), fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage))
				}
			}
		}
		return nil
	})
}

// FetchCommitted returns group's committed offsets for tps (-1 where none).
func (c *Client) FetchCommitted(ctx context.Context, group string, tps []TopicPartition) (map[TopicPartition]int64, error) {
	byTopic := make(map[string][]int32)
	var order []string
	for _, tp := range tps {
		if _, ok := byTopic[tp.Topic]; !ok {
			order = append(order, tp.Topic)
		}
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	req := proto.OffsetFetchRequest{Group: group, Topics: []proto.OffsetFetchTopic{}}
	for _, name := range order {
		req.Topics = append(req.Topics, proto.OffsetFetchTopic{Name: name, Partitions: byTopic[name]})
	}
	out := make(map[TopicPartition]int64, len(tps))
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.coordinatorRoundTrip(ctx, group, proto.KeyOffsetFetch, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.OffsetFetchResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: OffsetFetch: %v", errProtocol, err))
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return c.groupError(b, errcode.Code(p.ErrorCode), fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage))
				}
				out[TopicPartition{t.Name, p.Partition}] = p.Offset
			}
		}
		return nil
	})
	for _, tp := range tps {
		if _, ok := out[tp]; !ok {
			out[tp] = -1
		}
	}
	return out, err
}
