package tests

// The Kafka admin APIs that tools and UIs call, end to end through franz-go's kadm against the
// broker binary: DescribeCluster, DescribeLogDirs, CreatePartitions, AlterConfigs and
// IncrementalAlterConfigs, DescribeConfigs of the broker, DescribeProducers, and the answer to a
// request the broker does not serve.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newAdmin(t *testing.T, addr string, opts ...kgo.Opt) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl := newKafkaClient(t, addr, opts...)
	return kadm.NewClient(cl), cl
}

// segmentFiles lists the .log files of a partition's directory.
func segmentFiles(t *testing.T, dataDir, topic string, partition int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, topic+"-"+strconv.Itoa(partition), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// metaTopic reads one topic of the broker's meta.json.
func metaTopic(t *testing.T, dataDir, topic string) (partitions int, configs map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Topics []struct {
			Name       string            `json:"name"`
			Partitions int               `json:"partitions"`
			Configs    map[string]string `json:"configs"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	for _, tj := range meta.Topics {
		if tj.Name == topic {
			return tj.Partitions, tj.Configs
		}
	}
	t.Fatalf("meta.json has no topic %q", topic)
	return 0, nil
}

// topicConfig describes one topic's config key through kadm.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) *kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctx(t, 30*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	for i := range rc.Configs {
		if rc.Configs[i].Key == key {
			return &rc.Configs[i]
		}
	}
	t.Fatalf("topic %s has no config %s", topic, key)
	return nil
}

// partitionCount is a topic's partition count in fresh metadata.
func partitionCount(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	tds, err := adm.ListTopics(ctx(t, 30*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		t.Fatalf("list %s: %+v", topic, td)
	}
	for p, pd := range td.Partitions {
		if pd.Leader != 0 || pd.Err != nil || len(pd.Replicas) != 1 {
			t.Fatalf("%s/%d: %+v", topic, p, pd)
		}
	}
	return len(td.Partitions)
}

func TestKafkaAdminDescribe(t *testing.T) {
	b := startKafkaBroker(t)
	adm, cl := newAdmin(t, b.kafkaAddr)
	createTopic(t, cl, "logdirs", 2, nil)

	t.Run("DescribeCluster", func(t *testing.T) {
		md, err := adm.BrokerMetadata(ctx(t, 30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []int16{0, 1} {
			for _, asked := range []bool{false, true} {
				req := kmsg.NewPtrDescribeClusterRequest()
				req.SetVersion(v)
				req.IncludeClusterAuthorizedOperations = asked
				resp := dialKafka(t, b.kafkaAddr).do(req).(*kmsg.DescribeClusterResponse)
				wantOps := int32(-2147483648)
				if asked {
					wantOps = 8096 // every operation of the cluster resource
				}
				if resp.ErrorCode != 0 || resp.ClusterID != md.Cluster || resp.ControllerID != 0 || resp.ClusterAuthorizedOperations != wantOps {
					t.Fatalf("v%d asked=%v: %+v (cluster %s)", v, asked, resp, md.Cluster)
				}
				if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 0 || resp.Brokers[0].Host+":"+strconv.Itoa(int(resp.Brokers[0].Port)) != b.kafkaAddr {
					t.Fatalf("v%d brokers %+v, want node 0 at %s", v, resp.Brokers, b.kafkaAddr)
				}
			}
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.SetVersion(1)
		req.EndpointType = 2 // controllers
		if resp := dialKafka(t, b.kafkaAddr).do(req).(*kmsg.DescribeClusterResponse); resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
			t.Fatalf("controller endpoints: %+v", resp)
		}
		// Through kgo's negotiation too.
		resp := request[*kmsg.DescribeClusterResponse](t, cl, kmsg.NewPtrDescribeClusterRequest())
		if resp.GetVersion() != 1 || resp.ClusterID != md.Cluster {
			t.Fatalf("negotiated: v%d %+v", resp.GetVersion(), resp)
		}
	})

	t.Run("DescribeLogDirs", func(t *testing.T) {
		producer := newKafkaClient(t, b.kafkaAddr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
		for i := 0; i < 5; i++ {
			produceSync(t, producer, &kgo.Record{Topic: "logdirs", Partition: 1, Value: []byte(strings.Repeat("x", 1000))})
		}
		all, err := adm.DescribeAllLogDirs(ctx(t, 30*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		dirs := all.Sorted()
		if len(dirs) != 1 || dirs[0].Broker != 0 || dirs[0].Err != nil || dirs[0].Dir != b.dataDir {
			t.Fatalf("log dirs %+v, want one: %s", dirs, b.dataDir)
		}
		d := dirs[0]
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Fatalf("total %d, usable %d bytes", d.TotalBytes, d.UsableBytes)
		}
		for p := 0; p < 2; p++ {
			dp, ok := d.Topics.Lookup("logdirs", int32(p))
			if !ok {
				t.Fatalf("partition %d missing: %+v", p, d.Topics)
			}
			var onDisk int64
			for _, f := range segmentFiles(t, b.dataDir, "logdirs", p) {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				onDisk += st.Size()
			}
			if dp.Size != onDisk || dp.OffsetLag != 0 || dp.IsFuture || (p == 1) != (dp.Size > 5000) {
				t.Fatalf("partition %d: %+v, %d bytes on disk", p, dp, onDisk)
			}
		}
		if _, ok := d.Topics.Lookup("__consumer_offsets", 0); !ok {
			t.Fatalf("a null topic list describes every partition: %+v", d.Topics)
		}
		// One partition asked for: only it.
		one, err := adm.DescribeBrokerLogDirs(ctx(t, 30*time.Second), 0, kadm.TopicsSet{"logdirs": {1: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := one[b.dataDir].Topics; len(got) != 1 || len(got["logdirs"]) != 1 {
			t.Fatalf("one partition asked for: %+v", got)
		}
	})

	t.Run("DescribeProducers", func(t *testing.T) {
		createTopic(t, cl, "producers", 2, nil)
		idempotent := newKafkaClient(t, b.kafkaAddr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		before := time.Now().UnixMilli()
		for i := 0; i < 3; i++ { // one batch each: sequences 0, 1, 2
			produceSync(t, idempotent, &kgo.Record{Topic: "producers", Partition: 0, Value: []byte("v")})
		}
		after := time.Now().UnixMilli()
		id, epoch, err := idempotent.ProducerID(ctx(t, 30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		plain := newKafkaClient(t, b.kafkaAddr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite())
		produceSync(t, plain, &kgo.Record{Topic: "producers", Partition: 1, Value: []byte("v")})

		described, err := adm.DescribeProducers(ctx(t, 30*time.Second), kadm.TopicsSet{"producers": {0: {}, 1: {}}})
		if err != nil {
			t.Fatal(err)
		}
		parts := described["producers"].Partitions
		p0, p1 := parts[0], parts[1]
		if p0.Err != nil || p1.Err != nil || len(p1.ActiveProducers) != 0 || len(p0.ActiveProducers) != 1 {
			t.Fatalf("partitions %+v %+v", p0, p1)
		}
		got := p0.ActiveProducers[id]
		if got.ProducerID != id || got.ProducerEpoch != epoch || got.LastSequence != 2 || got.CoordinatorEpoch != -1 ||
			got.CurrentTxnStartOffset != -1 || got.LastTimestamp < before || got.LastTimestamp > after {
			t.Fatalf("producer %+v, want id %d epoch %d last sequence 2 at [%d, %d]", got, id, epoch, before, after)
		}
		// A partition the broker does not have (kadm would not route it): asked directly.
		req := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = "producers", []int32{7}
		req.Topics = []kmsg.DescribeProducersRequestTopic{rt}
		resp := dialKafka(t, b.kafkaAddr).do(req).(*kmsg.DescribeProducersResponse)
		if p := resp.Topics[0].Partitions[0]; p.Partition != 7 || p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("partition 7: %+v", p)
		}
	})

	t.Run("unsupported request answered", func(t *testing.T) {
		conn := dialKafka(t, b.kafkaAddr)
		end := kmsg.NewPtrEndTxnRequest()
		end.SetVersion(0)
		end.TransactionalID, end.ProducerID = "txn", 1
		resp := conn.do(end).(*kmsg.EndTxnResponse)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("EndTxn: %+v", resp)
		}
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(3)
		if r := conn.do(av).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("the connection no longer serves: %+v", r)
		}
	})
}

func TestKafkaAdminCreatePartitions(t *testing.T) {
	// The offsets topic's 12 partitions count against the broker's limit: 7 are left for the test.
	b := startKafkaBroker(t, "THORSTREAM_MAX_PARTITIONS=19", "THORSTREAM_MAX_PARTITIONS_PER_REQUEST=5")
	adm, cl := newAdmin(t, b.kafkaAddr)
	createTopic(t, cl, "cp", 2, map[string]string{"retention.ms": "3600000"})
	createTopic(t, cl, "cp-other", 1, nil)
	c := ctx(t, 60*time.Second)

	// one is the answer for the one topic of a request.
	one := func(rs kadm.CreatePartitionsResponses, err error) kadm.CreatePartitionsResponse {
		t.Helper()
		if err != nil || len(rs) != 1 {
			t.Fatalf("%v %+v", err, rs)
		}
		for _, r := range rs {
			return r
		}
		return kadm.CreatePartitionsResponse{}
	}
	if r := one(adm.ValidateCreatePartitions(c, 2, "cp")); r.Err != nil {
		t.Fatalf("validate only: %+v", r)
	}
	if n := partitionCount(t, adm, "cp"); n != 2 {
		t.Fatalf("validate only added partitions: %d", n)
	}
	if r := one(adm.CreatePartitions(c, 2, "cp")); r.Err != nil {
		t.Fatalf("add 2: %+v", r)
	}
	if n := partitionCount(t, adm, "cp"); n != 4 {
		t.Fatalf("after adding 2: %d partitions", n)
	}
	// The new partitions take records and keep the topic's config.
	producer := newKafkaClient(t, b.kafkaAddr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceSync(t, producer, &kgo.Record{Topic: "cp", Partition: 3, Value: []byte("in partition 3")})
	if recs := consume(t, b.kafkaAddr, 1, "cp"); recs[0].Partition != 3 || string(recs[0].Value) != "in partition 3" {
		t.Fatalf("consumed %+v", recs[0])
	}
	if c := topicConfig(t, adm, "cp", "retention.ms"); c.MaybeValue() != "3600000" {
		t.Fatalf("retention.ms %+v", c)
	}

	f := func(name string, r kadm.CreatePartitionsResponse, want *kerr.Error, inMessage string) {
		t.Helper()
		if !errors.Is(r.Err, want) || !strings.Contains(r.ErrMessage, inMessage) {
			t.Fatalf("%s: %v %q, want %v mentioning %q", name, r.Err, r.ErrMessage, want, inMessage)
		}
	}
	f("shrink", one(adm.UpdatePartitions(c, 3, "cp")), kerr.InvalidPartitions, "cannot be removed")
	f("same count", one(adm.UpdatePartitions(c, 4, "cp")), kerr.InvalidPartitions, "already has 4")
	f("unknown topic", one(adm.UpdatePartitions(c, 2, "cp-missing")), kerr.UnknownTopicOrPartition, "does not exist")
	f("per request", one(adm.CreatePartitions(c, 6, "cp")), kerr.PolicyViolation, "THORSTREAM_MAX_PARTITIONS_PER_REQUEST")
	// 1 (__consumer_offsets) + 4 + 1 hosted; 3 more would make 9.
	f("broker limit", one(adm.CreatePartitions(c, 3, "cp-other")), kerr.PolicyViolation, "THORSTREAM_MAX_PARTITIONS")
	f("internal topic", one(adm.UpdatePartitions(c, 2, "__consumer_offsets")), kerr.InvalidTopicException, "internal")

	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "cp-other", 2
	rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{5}}}
	req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
	if r := request[*kmsg.CreatePartitionsResponse](t, cl, req); r.Topics[0].ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("assignment to node 5: %+v", r.Topics[0])
	}
	rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}
	req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
	if r := request[*kmsg.CreatePartitionsResponse](t, cl, req); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("assignment to node 0: %+v", r.Topics[0])
	}

	// Persisted: meta.json names the partitions, and a restart serves them with their records.
	if n, _ := metaTopic(t, b.dataDir, "cp"); n != 4 {
		t.Fatalf("meta.json: %d partitions", n)
	}
	b.stop()
	b.restart()
	adm, _ = newAdmin(t, b.kafkaAddr)
	if n := partitionCount(t, adm, "cp"); n != 4 {
		t.Fatalf("after a restart: %d partitions", n)
	}
	if n := partitionCount(t, adm, "cp-other"); n != 2 {
		t.Fatalf("after a restart cp-other has %d partitions", n)
	}
	if rp := listOffset(t, b.kafkaAddr, "cp", 3, -1); rp.Offset != 1 {
		t.Fatalf("partition 3 after a restart: high watermark %d", rp.Offset)
	}
}

func TestKafkaAdminAlterConfigs(t *testing.T) {
	b := startKafkaBroker(t)
	adm, cl := newAdmin(t, b.kafkaAddr)
	createTopic(t, cl, "ac", 1, nil)
	c := ctx(t, 120*time.Second)
	str := kadm.StringPtr

	alter := func(ops ...kadm.AlterConfig) kadm.AlterConfigsResponse {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(c, ops, "ac")
		if err != nil || len(rs) != 1 {
			t.Fatalf("alter: %v %+v", err, rs)
		}
		return rs[0]
	}
	if r := alter(
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: str("3600000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.message.bytes", Value: str("2000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: str("LogAppendTime")},
	); r.Err != nil {
		t.Fatalf("set: %+v", r)
	}
	rc := topicConfig(t, adm, "ac", "retention.ms")
	if rc.MaybeValue() != "3600000" || rc.Source != kmsg.ConfigSourceDynamicTopicConfig || len(rc.Synonyms) != 2 ||
		rc.Synonyms[1].Key != "log.retention.ms" || rc.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig || *rc.Synonyms[1].Value != "604800000" {
		t.Fatalf("retention.ms %+v", rc)
	}

	// The live partition takes the new config: max.message.bytes and LogAppendTime. (Records are
	// sent uncompressed, so their sizes are what the broker sees.)
	producer := newKafkaClient(t, b.kafkaAddr, kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := &kgo.Record{Topic: "ac", Value: []byte(strings.Repeat("b", 3000))}
	if err := producer.ProduceSync(c, big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 3000-byte record after max.message.bytes=2000: %v", err)
	}
	start := time.Now()
	produceSync(t, producer, &kgo.Record{Topic: "ac", Value: []byte("stamped"), Timestamp: time.Unix(1_000_000_000, 0)})
	recs := consume(t, b.kafkaAddr, 1, "ac")
	if got := recs[0]; got.Attrs.TimestampType() != 1 || got.Timestamp.Before(start.Add(-time.Minute)) {
		t.Fatalf("record after LogAppendTime: timestamp %v type %d", got.Timestamp, got.Attrs.TimestampType())
	}
	if r := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"}); r.Err != nil {
		t.Fatalf("delete: %+v", r)
	}
	produceSync(t, producer, big)

	// List configs: APPEND and SUBTRACT.
	if r := alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: str("compact")}); r.Err != nil {
		t.Fatalf("append: %+v", r)
	}
	if v := topicConfig(t, adm, "ac", "cleanup.policy").MaybeValue(); v != "compact,delete" {
		t.Fatalf("cleanup.policy after APPEND compact: %q", v)
	}
	if r := alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: str("compact")}); r.Err != nil {
		t.Fatalf("subtract: %+v", r)
	}
	if v := topicConfig(t, adm, "ac", "cleanup.policy").MaybeValue(); v != "delete" {
		t.Fatalf("cleanup.policy after SUBTRACT compact: %q", v)
	}

	// Refusals, and validate_only.
	f := func(name string, r kadm.AlterConfigsResponse, want *kerr.Error, inMessage string) {
		t.Helper()
		if !errors.Is(r.Err, want) || !strings.Contains(r.ErrMessage, inMessage) {
			t.Fatalf("%s: %v %q, want %v mentioning %q", name, r.Err, r.ErrMessage, want, inMessage)
		}
	}
	f("bad value", alter(kadm.AlterConfig{Name: "retention.ms", Value: str("soon")}), kerr.InvalidConfig, "retention.ms")
	f("unknown key", alter(kadm.AlterConfig{Name: "no.such.config", Value: str("1")}), kerr.InvalidConfig, "no.such.config")
	f("append to a number", alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: str("1")}), kerr.InvalidRequest, "not a list")
	f("no value", alter(kadm.AlterConfig{Name: "retention.ms"}), kerr.InvalidRequest, "needs a value")
	vs, err := adm.ValidateAlterTopicConfigs(c, []kadm.AlterConfig{{Name: "retention.ms", Value: str("1")}}, "ac")
	if err != nil || vs[0].Err != nil {
		t.Fatalf("validate only: %v %+v", err, vs)
	}
	if v := topicConfig(t, adm, "ac", "retention.ms").MaybeValue(); v != "3600000" {
		t.Fatalf("validate only changed retention.ms to %s", v)
	}
	missing, err := adm.AlterTopicConfigs(c, []kadm.AlterConfig{{Name: "retention.ms", Value: str("1")}}, "ac-missing")
	if err != nil || !errors.Is(missing[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %+v", err, missing)
	}

	// segment.bytes on the live partition: the active segment, past 1 MiB, is sealed at the next
	// append.
	for i := 0; i < 12; i++ {
		produceSync(t, producer, &kgo.Record{Topic: "ac", Value: []byte(strings.Repeat("s", 100<<10))})
	}
	if n := len(segmentFiles(t, b.dataDir, "ac", 0)); n != 1 {
		t.Fatalf("%d segments with 1 GiB segments", n)
	}
	// AlterConfigs states the whole set: retention.ms and message.timestamp.type go back to the
	// defaults.
	rs, err := adm.AlterTopicConfigsState(c, []kadm.AlterConfig{{Name: "segment.bytes", Value: str("1048576")}}, "ac")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("AlterConfigs: %v %+v", err, rs)
	}
	produceSync(t, producer, &kgo.Record{Topic: "ac", Value: []byte("after the roll")})
	if n := len(segmentFiles(t, b.dataDir, "ac", 0)); n != 2 {
		t.Fatalf("%d segments after segment.bytes=1 MiB and one more append, want 2", n)
	}
	if rc := topicConfig(t, adm, "ac", "retention.ms"); rc.MaybeValue() != "604800000" || rc.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after AlterConfigs: %+v", rc)
	}

	// Broker configs are static.
	brs, err := adm.AlterBrokerConfigs(c, []kadm.AlterConfig{{Name: "log.retention.ms", Value: str("1000")}}, 0)
	if err != nil || len(brs) != 1 {
		t.Fatalf("broker: %v %+v", err, brs)
	}
	f("broker config", brs[0], kerr.InvalidRequest, "THORSTREAM_RETENTION_MS")
	brs, err = adm.AlterBrokerConfigsState(c, []kadm.AlterConfig{{Name: "num.partitions", Value: str("3")}}, 0)
	if err != nil || len(brs) != 1 {
		t.Fatalf("broker: %v %+v", err, brs)
	}
	f("broker config, whole set", brs[0], kerr.InvalidRequest, "THORSTREAM_DEFAULT_PARTITIONS")

	// Persisted in meta.json, and served after a restart.
	if _, configs := metaTopic(t, b.dataDir, "ac"); len(configs) != 1 || configs["segment.bytes"] != "1048576" {
		t.Fatalf("meta.json configs %v", configs)
	}
	b.stop()
	b.restart()
	adm, _ = newAdmin(t, b.kafkaAddr)
	if rc := topicConfig(t, adm, "ac", "segment.bytes"); rc.MaybeValue() != "1048576" || rc.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("segment.bytes after a restart: %+v", rc)
	}
}

func TestKafkaAdminBrokerConfigs(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_RETENTION_MS=3600000", "THORSTREAM_DEFAULT_PARTITIONS=3")
	adm, cl := newAdmin(t, b.kafkaAddr)
	c := ctx(t, 60*time.Second)
	for _, brokers := range [][]int32{{0}, nil} {
		rcs, err := adm.DescribeBrokerConfigs(c, brokers...)
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("describe broker %v: %v %+v", brokers, err, rcs)
		}
		got := map[string]kadm.Config{}
		for _, cfg := range rcs[0].Configs {
			got[cfg.Key] = cfg
		}
		for key, want := range map[string]struct {
			value  string
			source kmsg.ConfigSource
		}{
			"log.retention.ms":          {"3600000", kmsg.ConfigSourceStaticBrokerConfig},
			"num.partitions":            {"3", kmsg.ConfigSourceStaticBrokerConfig},
			"log.dirs":                  {b.dataDir, kmsg.ConfigSourceStaticBrokerConfig},
			"log.segment.bytes":         {"1073741824", kmsg.ConfigSourceDefaultConfig},
			"message.max.bytes":         {"1048588", kmsg.ConfigSourceDefaultConfig},
			"auto.create.topics.enable": {"true", kmsg.ConfigSourceDefaultConfig},
			"log.roll.ms":               {"604800000", kmsg.ConfigSourceDefaultConfig},
			"broker.id":                 {"0", kmsg.ConfigSourceDefaultConfig},
			"log.cleanup.policy":        {"delete", kmsg.ConfigSourceDefaultConfig},
		} {
			if g, ok := got[key]; !ok || g.MaybeValue() != want.value || g.Source != want.source {
				t.Fatalf("broker %v: %s = %+v, want %s from %v", brokers, key, g, want.value, want.source)
			}
		}
	}
	rcs, err := adm.DescribeBrokerConfigs(c, 7)
	if err == nil && (len(rcs) != 1 || rcs[0].Err == nil) {
		t.Fatalf("broker 7: %+v", rcs)
	}

	// A topic without overrides takes the broker's configured value, and says so.
	createTopic(t, cl, "bc", 1, nil)
	rc := topicConfig(t, adm, "bc", "retention.ms")
	if rc.MaybeValue() != "3600000" || rc.Source != kmsg.ConfigSourceStaticBrokerConfig || len(rc.Synonyms) != 1 || rc.Synonyms[0].Key != "log.retention.ms" {
		t.Fatalf("topic retention.ms %+v", rc)
	}
	if rc := topicConfig(t, adm, "bc", "segment.bytes"); rc.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("topic segment.bytes %+v", rc)
	}
	// v3+ gives each config its type.
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "bc", []string{"retention.ms", "cleanup.policy"}
	req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	resp := request[*kmsg.DescribeConfigsResponse](t, cl, req)
	types := map[string]kmsg.ConfigType{}
	for _, cfg := range resp.Resources[0].Configs {
		types[cfg.Name] = cfg.ConfigType
	}
	if types["retention.ms"] != kmsg.ConfigTypeLong || types["cleanup.policy"] != kmsg.ConfigTypeList {
		t.Fatalf("types %v", types)
	}
}

// TestThorctlTopicAlterAndAddPartitions drives `thorctl topic alter` and `thorctl topic
// add-partitions` (the binary protocol) and checks the result through the Kafka listener.
func TestThorctlTopicAlterAndAddPartitions(t *testing.T) {
	b := startKafkaBroker(t)
	adm, _ := newAdmin(t, b.kafkaAddr)
	cli := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := runCLI(t, b.addr, "", args...)
		if code != wantCode {
			t.Fatalf("thorctl %q: exit %d, want %d\nstdout %s\nstderr %s", args, code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	cli(0, "topic", "create", "tc", "--partitions", "2")

	out, _ := cli(0, "topic", "alter", "tc", "--config", "retention.ms=3600000", "--config", "max.message.bytes=5000")
	if out != "altered topic tc: set max.message.bytes=5000, set retention.ms=3600000\n" {
		t.Fatalf("alter: %q", out)
	}
	for key, want := range map[string]string{"retention.ms": "3600000", "max.message.bytes": "5000"} {
		if c := topicConfig(t, adm, "tc", key); c.MaybeValue() != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("%s after thorctl alter: %+v", key, c)
		}
	}
	cli(0, "topic", "alter", "tc", "--delete-config", "max.message.bytes")
	if c := topicConfig(t, adm, "tc", "max.message.bytes"); c.MaybeValue() != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("max.message.bytes after --delete-config: %+v", c)
	}
	if out, _ := cli(0, "topic", "alter", "tc", "--validate-only", "--config", "retention.ms=1"); !strings.Contains(out, "nothing changed") {
		t.Fatalf("validate only: %q", out)
	}
	if c := topicConfig(t, adm, "tc", "retention.ms"); c.MaybeValue() != "3600000" {
		t.Fatalf("--validate-only changed retention.ms: %+v", c)
	}
	if _, stderr := cli(1, "topic", "alter", "tc", "--config", "retention.ms=soon"); !strings.Contains(stderr, "INVALID_CONFIG") || !strings.Contains(stderr, "retention.ms") {
		t.Fatalf("bad value: %s", stderr)
	}
	if _, stderr := cli(1, "topic", "alter", "tc-missing", "--config", "retention.ms=1"); !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("unknown topic: %s", stderr)
	}

	if out, _ := cli(0, "topic", "add-partitions", "tc", "--count", "5"); out != "topic tc now has 5 partitions\n" {
		t.Fatalf("add-partitions: %q", out)
	}
	if n := partitionCount(t, adm, "tc"); n != 5 {
		t.Fatalf("%d partitions after add-partitions --count 5", n)
	}
	if _, stderr := cli(1, "topic", "add-partitions", "tc", "--count", "3"); !strings.Contains(stderr, "INVALID_PARTITIONS") || !strings.Contains(stderr, "cannot be removed") {
		t.Fatalf("shrink: %s", stderr)
	}
	if out, _ := cli(0, "topic", "describe", "tc"); !strings.Contains(out, "Partitions: 5\n") || !strings.Contains(out, "retention.ms=3600000") {
		t.Fatalf("describe:\n%s", out)
	}
}
