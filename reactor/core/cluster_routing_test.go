package core

import (
	"fmt"
	"slices"
	"testing"

	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// newClusterEnv is a binary-protocol server on node clustertest.Self of the clustertest.Cluster image:
// it leads partition 0 of clustertest.Routed, nodes 2 and 0 lead partitions 1 and 3, and partition 2
// has no leader.
func newClusterEnv(t *testing.T) *env {
	t.Helper()
	store := clustertest.Fixed(clustertest.Cluster(), clustertest.Controller)
	b := clustertest.Open(t, clustertest.Self, store)
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = NewSession(e.tr, Limits{})
	return e
}

// The binary Metadata of a node of a cluster: every live node at its binary listener (this one
// at its own advertised address), the controller, each partition as the metadata has it.
func TestClusterBinaryMetadata(t *testing.T) {
	e := newClusterEnv(t)
	var resp proto.MetadataResponse
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{clustertest.Routed}}, &resp)
	var brokers []string
	for _, b := range resp.Brokers {
		brokers = append(brokers, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	// Node 3 is fenced; node 4 has a binary listener (and no Kafka one).
	if want := []string{"0@n0.bin:9000", "1@broker.local:9092", "2@n2.bin:9001", "4@n4.bin:9000"}; !slices.Equal(brokers, want) {
		t.Errorf("brokers %v, want %v", brokers, want)
	}
	if resp.ControllerID != clustertest.Controller || resp.ClusterID != "fake-cluster" {
		t.Errorf("controller %d cluster %q", resp.ControllerID, resp.ClusterID)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("topics %+v", resp.Topics)
	}
	mt := clustertest.Cluster().Topics[clustertest.Routed]
	got := resp.Topics[0].Partitions
	if len(got) != len(mt.Partitions) {
		t.Fatalf("%d partitions, want %d", len(got), len(mt.Partitions))
	}
	for p, mp := range mt.Partitions {
		g := got[p]
		wantCode := int16(0)
		if mp.Leader < 0 {
			wantCode = int16(errcode.LeaderNotAvailable)
		}
		if g.Partition != int32(p) || g.ErrorCode != wantCode || g.Leader != mp.Leader || g.LeaderEpoch != mp.LeaderEpoch ||
			!slices.Equal(g.Replicas, mp.Replicas) || !slices.Equal(g.ISR, mp.ISR) {
			t.Errorf("partition %d: %+v, want %+v (code %d)", p, g, mp, wantCode)
		}
	}
}

// Produce, Fetch and ListOffsets of the binary protocol on a partition another node leads:
// NOT_LEADER_OR_FOLLOWER with the leader's id and binary address, so the client re-sends there
// without asking for metadata; no leader: LEADER_NOT_AVAILABLE without a hint.
func TestClusterBinaryRouting(t *testing.T) {
	e := newClusterEnv(t)
	self := proto.LeaderHint{ID: clustertest.Self, Addr: "broker.local:9092"}
	type answer struct {
		code errcode.Code
		hint proto.LeaderHint
	}
	want := []answer{
		{errcode.None, self},
		{errcode.NotLeaderOrFollower, proto.LeaderHint{ID: 2, Addr: "n2.bin:9001"}},
		{errcode.LeaderNotAvailable, proto.NoLeader},
		{errcode.NotLeaderOrFollower, proto.LeaderHint{ID: 0, Addr: "n0.bin:9000"}},
		{errcode.UnknownTopicOrPartition, proto.NoLeader},
	}
	partitions := []int32{0, 1, 2, 3, 9}

	preq := &proto.ProduceRequest{Acks: proto.AcksAll, TimeoutMs: 1000, Topics: []proto.ProduceTopic{{Name: []byte(clustertest.Routed)}}}
	for _, p := range partitions {
		preq.Topics[0].Partitions = append(preq.Topics[0].Partitions, proto.ProducePartition{Partition: p, Records: makeBatch(2, testNow.UnixMilli(), 1)})
	}
	var presp proto.ProduceResponse
	e.call(proto.KeyProduce, preq, &presp)
	for i, p := range presp.Topics[0].Partitions {
		if got := (answer{errcode.Code(p.ErrorCode), p.Leader}); got != want[i] {
			t.Errorf("Produce partition %d: %+v, want %+v", p.Partition, got, want[i])
		}
		if i > 0 && p.BaseOffset != -1 {
			t.Errorf("Produce partition %d: base offset %d on an error", p.Partition, p.BaseOffset)
		}
	}

	// An error answers the fetch at once, whatever minBytes and maxWait ask.
	freq := &proto.FetchRequest{MaxWaitMs: 10_000, MinBytes: 1 << 20, MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte(clustertest.Routed)}}}
	for _, p := range partitions {
		freq.Topics[0].Partitions = append(freq.Topics[0].Partitions, proto.FetchPartition{Partition: p, PartitionMaxBytes: 1 << 20})
	}
	var fresp proto.FetchResponse
	e.call(proto.KeyFetch, freq, &fresp)
	for i, p := range fresp.Topics[0].Partitions {
		if got := (answer{errcode.Code(p.ErrorCode), p.Leader}); got != want[i] {
			t.Errorf("Fetch partition %d: %+v, want %+v", p.Partition, got, want[i])
		}
	}
	if p := fresp.Topics[0].Partitions[0]; p.HighWatermark != 2 || len(offsetsOf(t, p.Records)) != 2 {
		t.Errorf("Fetch partition 0: high watermark %d, %d record bytes", p.HighWatermark, len(p.Records))
	}

	lreq := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: clustertest.Routed}}}
	for _, p := range partitions {
		lreq.Topics[0].Partitions = append(lreq.Topics[0].Partitions, proto.ListOffsetsPartition{Partition: p, Timestamp: proto.TimestampLatest})
	}
	var lresp proto.ListOffsetsResponse
	e.call(proto.KeyListOffsets, lreq, &lresp)
	for i, p := range lresp.Topics[0].Partitions {
		if got := (answer{errcode.Code(p.ErrorCode), p.Leader}); got != want[i] {
			t.Errorf("ListOffsets partition %d: %+v, want %+v", p.Partition, got, want[i])
		}
	}
	if p := lresp.Topics[0].Partitions[0]; p.Offset != 2 {
		t.Errorf("ListOffsets partition 0: offset %d, want 2", p.Offset)
	}

	// BrokerStatus counts what this node hosts: one partition of the topic.
	var sresp proto.BrokerStatusResponse
	e.call(proto.KeyBrokerStatus, &proto.BrokerStatusRequest{}, &sresp)
	if sresp.Topics != 1 || sresp.Partitions != 1 || sresp.NodeID != clustertest.Self {
		t.Errorf("BrokerStatus: node %d, %d topics, %d partitions", sresp.NodeID, sresp.Topics, sresp.Partitions)
	}
}
