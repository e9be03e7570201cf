package kafka

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
)

// A node of a cluster lists every live node with a Kafka listener, the controller, and each
// partition's leader, epoch, replicas, in-sync and offline replicas as the metadata has them.
func TestClusterMetadata(t *testing.T) {
	e, _ := newClusterEnv(t)
	for _, v := range []int16{1, 5, 9, 12} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = v
			rt := kmsg.NewMetadataRequestTopic()
			name := clustertest.Routed
			rt.Topic = &name
			req.Topics = []kmsg.MetadataRequestTopic{rt}
			resp := e.call(req).(*kmsg.MetadataResponse)

			type broker struct {
				id   int32
				host string
				port int32
			}
			var brokers []broker
			for _, b := range resp.Brokers {
				brokers = append(brokers, broker{b.NodeID, b.Host, b.Port})
			}
			// Node 3 is fenced and node 4 has no Kafka listener; this node is at its own
			// advertised address.
			want := []broker{{0, "n0.kafka", 9092}, {1, "broker.local", 9092}, {2, "n2.kafka", 9093}}
			if !slices.Equal(brokers, want) {
				t.Errorf("brokers %v, want %v", brokers, want)
			}
			if resp.ControllerID != clustertest.Controller {
				t.Errorf("controller %d, want %d", resp.ControllerID, clustertest.Controller)
			}
			if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
				t.Fatalf("topics %+v", resp.Topics)
			}
			img := clustertest.Cluster()
			mt := img.Topics[clustertest.Routed]
			got := resp.Topics[0].Partitions
			if len(got) != len(mt.Partitions) {
				t.Fatalf("%d partitions, want %d", len(got), len(mt.Partitions))
			}
			for p, mp := range mt.Partitions {
				g := got[p]
				wantCode := int16(0)
				var wantOffline []int32
				if mp.Leader == meta.NoLeader {
					wantCode = int16(errcode.LeaderNotAvailable)
					wantOffline = []int32{3}
				}
				wantEpoch := mp.LeaderEpoch
				if v < 7 {
					wantEpoch = -1 // not in the response before v7: kmsg's default
				}
				if g.Partition != int32(p) || g.ErrorCode != wantCode || g.Leader != mp.Leader || g.LeaderEpoch != wantEpoch ||
					!slices.Equal(g.Replicas, mp.Replicas) || !slices.Equal(g.ISR, mp.ISR) {
					t.Errorf("partition %d: %+v, want leader %d epoch %d replicas %v isr %v code %d",
						p, g, mp.Leader, wantEpoch, mp.Replicas, mp.ISR, wantCode)
				}
				if v >= 5 && !slices.Equal(g.OfflineReplicas, wantOffline) {
					t.Errorf("partition %d: offline replicas %v, want %v", p, g.OfflineReplicas, wantOffline)
				}
			}
		})
	}
}

func TestClusterDescribeCluster(t *testing.T) {
	e, _ := newClusterEnv(t)
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = endpointTypeBrokers
	resp := e.call(req).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || resp.ControllerID != clustertest.Controller || resp.ClusterID != "fake-cluster" {
		t.Fatalf("error %d controller %d cluster %q", resp.ErrorCode, resp.ControllerID, resp.ClusterID)
	}
	var got []string
	for _, b := range resp.Brokers {
		got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
	}
	if want := []string{"0@n0.kafka:9092", "1@broker.local:9092", "2@n2.kafka:9093"}; !slices.Equal(got, want) {
		t.Fatalf("brokers %v, want %v", got, want)
	}
}

// produceTo sends one batch to each of partitions of the routed topic at version v.
func produceTo(e *env, v int16, partitions ...int32) *kmsg.ProduceResponse {
	req := kmsg.NewPtrProduceRequest()
	req.Version = v
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = clustertest.Routed
	for _, p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = recordBatch(2, -1, -1, -1, time.Now().UnixMilli())
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return e.call(req).(*kmsg.ProduceResponse)
}

// Produce to a partition another node leads: NOT_LEADER_OR_FOLLOWER, and from v10 the KIP-951
// hint (the leader and its epoch, the leader's endpoint); the partition led here is appended.
func TestClusterProduceRouting(t *testing.T) {
	e, _ := newClusterEnv(t)
	for _, v := range []int16{3, 9, 10, 12} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := produceTo(e, v, 0, 1, 2, 3, 9)
			ps := resp.Topics[0].Partitions
			want := []errcode.Code{errcode.None, errcode.NotLeaderOrFollower, errcode.LeaderNotAvailable, errcode.NotLeaderOrFollower, errcode.UnknownTopicOrPartition}
			for i, p := range ps {
				if errcode.Code(p.ErrorCode) != want[i] {
					t.Errorf("partition %d: %s, want %s", p.Partition, errcode.Code(p.ErrorCode), want[i])
				}
				if i > 0 && p.BaseOffset != -1 {
					t.Errorf("partition %d: base offset %d on an error", p.Partition, p.BaseOffset)
				}
			}
			if ps[0].BaseOffset < 0 {
				t.Errorf("partition 0: base offset %d", ps[0].BaseOffset)
			}
			type leader struct{ id, epoch int32 }
			var leaders []leader
			for _, p := range ps {
				leaders = append(leaders, leader{p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch})
			}
			none := leader{-1, -1}
			wantLeaders := []leader{none, none, none, none, none}
			var wantBrokers []string
			if v >= 10 {
				wantLeaders = []leader{none, {2, 7}, none, {0, 2}, none}
				wantBrokers = []string{"2@n2.kafka:9093", "0@n0.kafka:9092"}
			}
			if !slices.Equal(leaders, wantLeaders) {
				t.Errorf("current leaders %v, want %v", leaders, wantLeaders)
			}
			var brokers []string
			for _, b := range resp.Brokers {
				brokers = append(brokers, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
			}
			if !slices.Equal(brokers, wantBrokers) {
				t.Errorf("node endpoints %v, want %v", brokers, wantBrokers)
			}
		})
	}
}

// fetchFrom fetches the routed topic's partitions from offset 0 at version v, with the given
// current leader epochs (-1: none).
func fetchFrom(e *env, v int16, partitions []int32, epochs []int32) *kmsg.FetchResponse {
	req := kmsg.NewPtrFetchRequest()
	req.Version = v
	req.ReplicaID = -1
	req.MaxWaitMillis = 10_000 // an error answers at once: the test would time out otherwise
	req.MinBytes = 1 << 20
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = clustertest.Routed
	for i, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch = epochs[i]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	return e.call(req).(*kmsg.FetchResponse)
}

// Fetch from a partition another node leads: NOT_LEADER_OR_FOLLOWER at once, with the v12 tagged
// CurrentLeader; the leader epoch a client sends is checked against the metadata's.
func TestClusterFetchRouting(t *testing.T) {
	e, _ := newClusterEnv(t)
	if r := produceTo(e, 9, 0); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	for _, v := range []int16{4, 11, 12} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := fetchFrom(e, v, []int32{0, 1, 2, 3}, []int32{-1, -1, -1, -1})
			ps := resp.Topics[0].Partitions
			want := []errcode.Code{errcode.None, errcode.NotLeaderOrFollower, errcode.LeaderNotAvailable, errcode.NotLeaderOrFollower}
			for i, p := range ps {
				if errcode.Code(p.ErrorCode) != want[i] {
					t.Errorf("partition %d: %s, want %s", p.Partition, errcode.Code(p.ErrorCode), want[i])
				}
			}
			if ps[0].HighWatermark != 2 || len(ps[0].RecordBatches) == 0 {
				t.Errorf("partition 0: high watermark %d, %d record bytes", ps[0].HighWatermark, len(ps[0].RecordBatches))
			}
			type leader struct{ id, epoch int32 }
			var leaders []leader
			for _, p := range ps {
				leaders = append(leaders, leader{p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch})
			}
			none := leader{-1, -1}
			wantLeaders := []leader{none, none, none, none}
			if v >= 12 {
				wantLeaders = []leader{none, {2, 7}, none, {0, 2}}
			}
			if !slices.Equal(leaders, wantLeaders) {
				t.Errorf("current leaders %v, want %v", leaders, wantLeaders)
			}
		})
	}
	t.Run("leader epochs", func(t *testing.T) {
		// Partition 0's epoch is 4 in the metadata.
		resp := fetchFrom(e, 12, []int32{0, 0, 0}, []int32{3, 5, 4})
		var got []errcode.Code
		for _, p := range resp.Topics[0].Partitions {
			got = append(got, errcode.Code(p.ErrorCode))
		}
		if want := []errcode.Code{errcode.FencedLeaderEpoch, errcode.UnknownLeaderEpoch, errcode.None}; !slices.Equal(got, want) {
			t.Fatalf("codes %v, want %v", got, want)
		}
	})
}

// ListOffsets, DeleteRecords and DescribeProducers are the leader's: another node's partition is
// answered NOT_LEADER_OR_FOLLOWER.
func TestClusterPartitionAdminRouting(t *testing.T) {
	e, _ := newClusterEnv(t)
	if r := produceTo(e, 9, 0); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	codes := func(resp kmsg.Response) []errcode.Code {
		var out []errcode.Code
		for _, c := range errorCodes(resp) {
			out = append(out, errcode.Code(c))
		}
		return out
	}
	want := []errcode.Code{errcode.None, errcode.NotLeaderOrFollower, errcode.LeaderNotAvailable, errcode.NotLeaderOrFollower}

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = clustertest.Routed
	for p := int32(0); p < 4; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, rp)
	}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}
	resp := e.call(lo).(*kmsg.ListOffsetsResponse)
	if got := codes(resp); !slices.Equal(got, want) {
		t.Errorf("ListOffsets: %v, want %v", got, want)
	}
	if p := resp.Topics[0].Partitions[0]; p.Offset != 2 || p.LeaderEpoch != 4 {
		t.Errorf("ListOffsets partition 0: offset %d epoch %d, want 2 and 4", p.Offset, p.LeaderEpoch)
	}
	// Leader epochs against the metadata's (4): older fenced, newer unknown.
	for _, c := range []struct {
		epoch int32
		want  errcode.Code
	}{{3, errcode.FencedLeaderEpoch}, {5, errcode.UnknownLeaderEpoch}, {4, errcode.None}} {
		lt.Partitions = lt.Partitions[:1]
		lt.Partitions[0].CurrentLeaderEpoch = c.epoch
		lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}
		if got := codes(e.call(lo)); !slices.Equal(got, []errcode.Code{c.want}) {
			t.Errorf("ListOffsets with epoch %d: %v, want %s", c.epoch, got, c.want)
		}
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 2
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = clustertest.Routed
	for p := int32(0); p < 4; p++ {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, 1
		dt.Partitions = append(dt.Partitions, rp)
	}
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{dt}
	if got := codes(e.call(dr)); !slices.Equal(got, want) {
		t.Errorf("DeleteRecords: %v, want %v", got, want)
	}

	dp := kmsg.NewPtrDescribeProducersRequest()
	pt := kmsg.NewDescribeProducersRequestTopic()
	pt.Topic = clustertest.Routed
	pt.Partitions = []int32{0, 1, 2, 3}
	dp.Topics = []kmsg.DescribeProducersRequestTopic{pt}
	if got := codes(e.call(dp)); !slices.Equal(got, want) {
		t.Errorf("DescribeProducers: %v, want %v", got, want)
	}

	// DescribeLogDirs lists the partitions this node hosts only.
	ld := kmsg.NewPtrDescribeLogDirsRequest()
	ld.Version = 4
	ldr := e.call(ld).(*kmsg.DescribeLogDirsResponse)
	var hosted []string
	for _, d := range ldr.Dirs {
		for _, dt := range d.Topics {
			for _, p := range dt.Partitions {
				hosted = append(hosted, fmt.Sprintf("%s-%d", dt.Topic, p.Partition))
			}
		}
	}
	if want := []string{clustertest.Routed + "-0"}; !slices.Equal(hosted, want) {
		t.Errorf("DescribeLogDirs: %v, want %v", hosted, want)
	}
}

// A partition whose leadership moves to this node is served here from the next image on; one
// that moves away is answered NOT_LEADER_OR_FOLLOWER naming its new leader.
func TestClusterLeaderMoves(t *testing.T) {
	e, store := newClusterEnv(t)
	img := clustertest.Cluster()
	mt := *img.Topics[clustertest.Routed]
	mt.Partitions = slices.Clone(mt.Partitions)
	mt.Partitions[0] = meta.Partition{Replicas: []int32{0}, ISR: []int32{0}, Leader: 0, LeaderEpoch: 5}
	mt.Partitions[3] = meta.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3}
	var nodes []meta.Node
	for _, id := range img.NodeIDs {
		nodes = append(nodes, *img.Nodes[id])
	}
	next := clustertest.Image(img.Index+1, nodes, &mt)
	store.Set(next)
	clustertest.WaitApplied(t, e.broker, next.Index)

	ps := produceTo(e, 12, 0, 3).Topics[0].Partitions
	if ps[0].ErrorCode != int16(errcode.NotLeaderOrFollower) || ps[0].CurrentLeader.LeaderID != 0 || ps[0].CurrentLeader.LeaderEpoch != 5 {
		t.Errorf("partition 0 after moving to node 0: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].BaseOffset != 0 {
		t.Errorf("partition 3 after moving here: %+v", ps[1])
	}
}
