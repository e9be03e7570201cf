package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// deliveryTimeout fails a record that is not acknowledged in this long, so a stuck broker shows
// up as failures instead of a run that never ends.
const deliveryTimeout = 30 * time.Second

func baseOpts(o Options) []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID("thorload")}
}

// newProducer returns a client configured from o's producer fields (o is already validated).
func newProducer(o Options) (*kgo.Client, error) {
	acks, _ := parseAcks(o.Acks)
	codec, _ := parseCompression(o.Compression)
	opts := append(baseOpts(o),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(o.Linger),
		kgo.ProducerBatchMaxBytes(o.BatchBytes),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	)
	if !o.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(o.MaxInFlight))
	}
	return kgo.NewClient(opts...)
}

// ensureTopic creates topic with partitions partitions unless it exists (whatever its
// partition count then).
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = partitions
	t.ReplicationFactor = -1 // the broker's default
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("loadgen: creating topic %s: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("loadgen: creating topic %s: %w", topic, err)
		}
	}
	return nil
}

// ListOffsets timestamps: the log end offset (high watermark) and the log start offset.
const (
	offsetLatest   = -1
	offsetEarliest = -2
)

// listOffsets returns, for every partition of topic, the log end offset (at offsetLatest) or
// the log start offset (at offsetEarliest). With create, the Metadata request lets the broker
// auto-create the topic. It retries while the topic or its leaders are still coming up.
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, at int64, create bool) (map[int32]int64, error) {
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		offsets, err := listOffsetsOnce(ctx, cl, topic, at, create)
		if err == nil {
			return offsets, nil
		}
		lastErr = err
		var kafkaErr *kerr.Error
		if !errors.As(err, &kafkaErr) || !kafkaErr.Retriable {
			break
		}
	}
	return nil, fmt.Errorf("loadgen: offsets of %s: %w", topic, lastErr)
}

func listOffsetsOnce(ctx context.Context, cl *kgo.Client, topic string, at int64, create bool) (map[int32]int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = create
	metaResp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if len(metaResp.Topics) != 1 {
		return nil, fmt.Errorf("metadata answered %d topics", len(metaResp.Topics))
	}
	if err := kerr.ErrorForCode(metaResp.Topics[0].ErrorCode); err != nil {
		return nil, err
	}
	if len(metaResp.Topics[0].Partitions) == 0 {
		return nil, kerr.LeaderNotAvailable
	}
	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range metaResp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = at
		lt.Partitions = append(lt.Partitions, lp)
	}
	list.Topics = append(list.Topics, lt)
	listResp, err := list.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	offsets := make(map[int32]int64)
	for _, t := range listResp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			offsets[p.Partition] = p.Offset
		}
	}
	if len(offsets) != len(metaResp.Topics[0].Partitions) {
		return nil, kerr.LeaderNotAvailable
	}
	return offsets, nil
}

// runContext bounds ctx by d when d is positive.
func runContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}
