package core

import (
	"slices"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

func TestAlterConfigsAndCreatePartitions(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("a", 1, proto.ConfigEntry{Key: cluster.ConfigRetentionMs, Value: "60000"})

	codes := func(resp proto.TopicErrorsResponse) []errcode.Code {
		var out []errcode.Code
		for _, tp := range resp.Topics {
			out = append(out, errcode.Code(tp.ErrorCode))
		}
		return out
	}

	var altered proto.TopicErrorsResponse
	e.call(proto.KeyAlterConfigs, &proto.AlterConfigsRequest{Topics: []proto.AlterConfigsTopic{
		{Name: "a", Configs: []proto.ConfigOp{
			{Op: proto.ConfigOpSet, Key: cluster.ConfigMaxMessageBytes, Value: "100"},
			{Op: proto.ConfigOpDelete, Key: cluster.ConfigRetentionMs},
		}},
		{Name: "missing", Configs: []proto.ConfigOp{{Op: proto.ConfigOpSet, Key: cluster.ConfigRetentionMs, Value: "1"}}},
		{Name: "a", Configs: nil},
	}}, &altered)
	if got := codes(altered); !slices.Equal(got, []errcode.Code{errcode.None, errcode.UnknownTopicOrPartition, errcode.InvalidRequest}) {
		t.Fatalf("alter: %+v", altered)
	}
	cfg := e.broker.Snapshot().Topics["a"].Config
	if cfg.MaxMessageBytes != 100 || cfg.RetentionMs != cluster.DefaultDefaults.RetentionMs {
		t.Fatalf("config after alter: %+v", cfg)
	}
	if p := e.produce("a", 0, makeBatch(1, 0, 1)); errcode.Code(p.ErrorCode) != errcode.None {
		t.Fatalf("small batch: %+v", p)
	}
	if p := e.produce("a", 0, makeBatch(20, 0, 1)); errcode.Code(p.ErrorCode) != errcode.MessageTooLarge {
		t.Fatalf("a batch over max.message.bytes=100: %+v", p)
	}
	e.call(proto.KeyAlterConfigs, &proto.AlterConfigsRequest{ValidateOnly: true, Topics: []proto.AlterConfigsTopic{
		{Name: "a", Configs: []proto.ConfigOp{{Op: proto.ConfigOpSet, Key: cluster.ConfigMaxMessageBytes, Value: "9000"}}},
		{Name: "a-bad", Configs: []proto.ConfigOp{{Op: proto.ConfigOpAppend, Key: cluster.ConfigRetentionMs, Value: "1"}}},
	}}, &altered)
	if got := codes(altered); !slices.Equal(got, []errcode.Code{errcode.None, errcode.UnknownTopicOrPartition}) || e.broker.Snapshot().Topics["a"].Config.MaxMessageBytes != 100 {
		t.Fatalf("validate only: %+v", altered)
	}

	var grown proto.TopicErrorsResponse
	e.call(proto.KeyCreatePartitions, &proto.CreatePartitionsRequest{ValidateOnly: true, Topics: []proto.CreatePartitionsTopic{{Name: "a", Count: 3}}}, &grown)
	if got := codes(grown); !slices.Equal(got, []errcode.Code{errcode.None}) || len(e.broker.Snapshot().Topics["a"].Replicas) != 1 {
		t.Fatalf("validate only: %+v", grown)
	}
	e.call(proto.KeyCreatePartitions, &proto.CreatePartitionsRequest{Topics: []proto.CreatePartitionsTopic{
		{Name: "a", Count: 3}, {Name: "missing", Count: 2},
	}}, &grown)
	if got := codes(grown); !slices.Equal(got, []errcode.Code{errcode.None, errcode.UnknownTopicOrPartition}) {
		t.Fatalf("grow: %+v", grown)
	}
	e.call(proto.KeyCreatePartitions, &proto.CreatePartitionsRequest{Topics: []proto.CreatePartitionsTopic{{Name: "a", Count: 2}}}, &grown)
	if got := codes(grown); !slices.Equal(got, []errcode.Code{errcode.InvalidPartitions}) || grown.Topics[0].ErrorMessage == "" {
		t.Fatalf("shrink: %+v", grown)
	}
	var md proto.MetadataResponse
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"a"}}, &md)
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 || md.Topics[0].Partitions[2].Leader != e.broker.NodeID() {
		t.Fatalf("metadata after growing: %+v", md.Topics)
	}
	if p := e.produce("a", 2, makeBatch(1, 0, 1)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce to the new partition: %+v", p)
	}

	// A body that does not decode.
	corr := e.send(proto.KeyCreatePartitions, proto.Version, []byte{0, 0, 0, 9})
	if h, _ := e.recv(corr); errcode.Code(h.ErrorCode) != errcode.InvalidRequest {
		t.Fatalf("malformed: %+v", h)
	}
}
