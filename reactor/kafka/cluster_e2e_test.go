package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// Clients of both protocols against three in-process nodes: bootstrapped through one node, they
// learn every node from Metadata and send each partition's records to its leader; a node asked
// for another's partition answers with the leader, which franz-go (Produce v10+, Fetch v12) and
// the Go client follow.
func TestThreeNodesRouteToLeaders(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.Eventually(30*time.Second, "every node registered on every node", func() bool {
		for _, id := range c.Running() {
			if len(c.Node(id).Broker.Snapshot().LiveNodes()) != 3 {
				return false
			}
		}
		return true
	})

	const topic, partitions = "spread", 6
	kc, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()[0]), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, partitions, 1
	create.Topics = []kmsg.CreateTopicsRequestTopic{ct}
	for {
		resp, err := create.RequestWith(ctx, kc)
		if err == nil && resp.Topics[0].ErrorCode == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("CreateTopics: %v %+v", err, resp)
		}
		time.Sleep(50 * time.Millisecond) // a controller being elected: retry
	}
	leaders := map[int32]bool{}
	c.Eventually(30*time.Second, "the topic's partitions to have leaders on every node's metadata", func() bool {
		clear(leaders)
		for _, id := range c.Running() {
			tp := c.Node(id).Broker.Snapshot().Topics[topic]
			if tp == nil {
				return false
			}
			for _, p := range tp.Partitions {
				if p.Leader < 0 {
					return false
				}
				leaders[p.Leader] = true
			}
		}
		return true
	})
	if len(leaders) < 2 {
		t.Fatalf("the partitions are led by %v only: the test needs several leaders", leaders)
	}

	md := kmsg.NewPtrMetadataRequest()
	mresp, err := md.RequestWith(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range mresp.Brokers {
		got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	if len(got) != 3 {
		t.Fatalf("Metadata brokers %v, want the three nodes", got)
	}

	// franz-go: one record per partition, read back from every leader.
	for p := int32(0); p < partitions; p++ {
		if err := kc.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprint("kafka-", p))}).FirstErr(); err != nil {
			t.Fatalf("franz-go produce to partition %d: %v", p, err)
		}
	}
	var read []string
	for len(read) < partitions {
		fs := kc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("franz-go read %v: %v", read, err)
		}
		fs.EachRecord(func(r *kgo.Record) { read = append(read, string(r.Value)) })
	}
	slices.Sort(read)
	if want := []string{"kafka-0", "kafka-1", "kafka-2", "kafka-3", "kafka-4", "kafka-5"}; !slices.Equal(read, want) {
		t.Fatalf("franz-go read %v, want %v", read, want)
	}

	// The Go client over the binary protocol, bootstrapped through another node.
	gc, err := client.New(client.Options{Brokers: []string{c.Addrs()[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	prod := client.NewProducer(gc, client.ProducerOptions{})
	defer prod.Close()
	for p := int32(0); p < partitions; p++ {
		if err := prod.ProduceSync(ctx, &client.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprint("binary-", p))}); err != nil {
			t.Fatalf("Go client produce to partition %d: %v", p, err)
		}
	}
	for p := int32(0); p < partitions; p++ {
		if end, err := gc.ListOffsets(ctx, topic, p, client.TimestampLatest); err != nil || end != 2 {
			t.Fatalf("partition %d: end offset %d, %v; want 2", p, end, err)
		}
	}
	info, err := gc.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Leader < 0 || !slices.Equal(p.Replicas, []int32{p.Leader}) || !slices.Equal(p.ISR, []int32{p.Leader}) {
			t.Errorf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}

	// A raw Produce v10 to a node that does not lead the partition: the hint names the leader.
	var p0Leader int32 = -1
	for _, p := range info.Partitions {
		if p.Partition == 0 {
			p0Leader = p.Leader
		}
	}
	other := (p0Leader + 1) % 3
	raw, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()[other]))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 10, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	pr.Topics = []kmsg.ProduceRequestTopic{rt}
	presp, err := pr.RequestWith(ctx, raw.Broker(int(other)))
	if err != nil {
		t.Fatal(err)
	}
	part := presp.Topics[0].Partitions[0]
	if part.ErrorCode != 6 || part.CurrentLeader.LeaderID != p0Leader || len(presp.Brokers) != 1 ||
		presp.Brokers[0].NodeID != p0Leader || fmt.Sprintf("%s:%d", presp.Brokers[0].Host, presp.Brokers[0].Port) != c.KafkaAddrs()[p0Leader] {
		t.Fatalf("Produce v10 to node %d for a partition node %d leads: %+v, brokers %+v", other, p0Leader, part, presp.Brokers)
	}
}
