package tests

// Kafka control-plane APIs end to end: ApiVersions, Metadata, ListOffsets, CreateTopics,
// DeleteTopics, DescribeConfigs, DeleteRecords and InitProducerId, as kmsg requests (the admin
// APIs tools call, through kadm, are in kafka_admin_more_test.go).

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wantAPIs is the table KAFKA.md says to advertise.
var wantAPIs = map[int16][2]int16{
	0: {0, 12}, 1: {4, 12}, 2: {1, 7}, 3: {0, 12}, 8: {0, 9}, 9: {0, 9}, 10: {0, 4}, 11: {0, 9},
	12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 5}, 16: {0, 5}, 18: {0, 4},
	19: {0, 7}, 20: {0, 5}, 21: {0, 2}, 22: {0, 4}, 23: {0, 4}, 32: {0, 4}, 33: {0, 2}, 35: {0, 4}, 37: {0, 3},
	42: {0, 2}, 44: {0, 1}, 47: {0, 0}, 60: {0, 1}, 61: {0, 0},
}

func checkAPITable(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	got := map[int16][2]int16{}
	for _, k := range keys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, want := range wantAPIs {
		if got[key] != want {
			t.Errorf("%s: advertised %v, want %v", kmsg.NameForKey(key), got[key], want)
		}
	}
	for key := range got {
		if _, ok := wantAPIs[key]; !ok {
			t.Errorf("%s (%d) is advertised but not in the table to serve", kmsg.NameForKey(key), key)
		}
	}
}

func TestKafkaApiVersions(t *testing.T) {
	b := startKafkaBroker(t)
	conn := dialKafka(t, b.kafkaAddr)

	t.Run("v0", func(t *testing.T) {
		conn.t = t
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		resp := conn.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("error %d", resp.ErrorCode)
		}
		checkAPITable(t, resp.ApiKeys)
	})

	t.Run("v3 and v4 headers carry no tag byte", func(t *testing.T) {
		for _, v := range []int16{3, 4} {
			conn.t = t
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(v)
			req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0.0"
			resp := conn.do(req).(*kmsg.ApiVersionsResponse) // do skips no tag byte for ApiVersions
			if resp.ErrorCode != 0 {
				t.Fatalf("v%d: error %d", v, resp.ErrorCode)
			}
			checkAPITable(t, resp.ApiKeys)
		}
	})

	t.Run("v5 gets a v0 reply with UNSUPPORTED_VERSION", func(t *testing.T) {
		conn.t = t
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(4) // v5's body is unknown: franz-go sends v4's with version 5
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0.0"
		corr := conn.write(kmsg.ApiVersions.Int16(), 5, true, req.AppendTo(nil))
		got, body := conn.read()
		if got != corr {
			t.Fatalf("correlation id %d, want %d", got, corr)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if len(resp.AppendTo(nil)) != len(body) {
			t.Fatalf("v0 body of %d bytes, received %d", len(resp.AppendTo(nil)), len(body))
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
		}
		checkAPITable(t, resp.ApiKeys)
	})

	t.Run("the connection keeps serving", func(t *testing.T) {
		conn.t = t
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(2)
		if resp := conn.do(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("error %d", resp.ErrorCode)
		}
	})

	t.Run("kgo negotiates", func(t *testing.T) {
		cl := newKafkaClient(t, b.kafkaAddr)
		resp := request[*kmsg.ApiVersionsResponse](t, cl, kmsg.NewPtrApiVersionsRequest())
		if resp.ErrorCode != 0 || resp.GetVersion() != 4 {
			t.Fatalf("error %d at v%d", resp.ErrorCode, resp.GetVersion())
		}
		checkAPITable(t, resp.ApiKeys)
	})
}

// metadataTopics returns the names of the non-internal topics in a Metadata response, with their
// error codes.
func metadataTopics(resp *kmsg.MetadataResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.Topics {
		if t.Topic != nil && !t.IsInternal && *t.Topic != "__consumer_offsets" { // v0 has no IsInternal
			out[*t.Topic] = t.ErrorCode
		}
	}
	return out
}

func metadataRequest(version int16, topics []string, null bool, allowCreate bool) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	req.AllowAutoTopicCreation = allowCreate
	if !null {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, name := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
	}
	return req
}

func TestKafkaMetadataTopicLists(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, cl, "md-a", 2, nil)
	createTopic(t, cl, "md-b", 3, nil)
	conn := dialKafka(t, b.kafkaAddr)
	all := map[string]int16{"md-a": 0, "md-b": 0}

	f := func(name string, req *kmsg.MetadataRequest, want map[string]int16) {
		t.Run(name, func(t *testing.T) {
			conn.t = t
			resp := conn.do(req).(*kmsg.MetadataResponse)
			got := metadataTopics(resp)
			if len(got) != len(want) {
				t.Fatalf("topics %v, want %v", got, want)
			}
			for k, v := range want {
				if c, ok := got[k]; !ok || c != v {
					t.Fatalf("topics %v, want %v", got, want)
				}
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].Host+":"+strconv.Itoa(int(resp.Brokers[0].Port)) != b.kafkaAddr {
				t.Fatalf("brokers %+v, want one at %s", resp.Brokers, b.kafkaAddr)
			}
			for _, rt := range resp.Topics {
				if rt.Topic != nil && *rt.Topic == "md-b" && len(rt.Partitions) != 3 {
					t.Fatalf("md-b has %d partitions, want 3", len(rt.Partitions))
				}
			}
		})
	}
	f("v0 empty list is all topics", metadataRequest(0, nil, false, false), all)
	f("v1 empty list is no topics", metadataRequest(1, nil, false, false), map[string]int16{})
	f("v1 null list is all topics", metadataRequest(1, nil, true, false), all)
	f("v12 empty list is no topics", metadataRequest(12, nil, false, false), map[string]int16{})
	f("v12 null list is all topics", metadataRequest(12, nil, true, false), all)
	f("v1 named topic", metadataRequest(1, []string{"md-b"}, false, false), map[string]int16{"md-b": 0})
	f("v9 unknown topic, no auto-creation", metadataRequest(9, []string{"md-missing"}, false, false),
		map[string]int16{"md-missing": kerr.UnknownTopicOrPartition.Code})
	f("v9 still unknown", metadataRequest(9, nil, true, false), all)
	f("v9 unknown topic with auto-creation", metadataRequest(9, []string{"md-auto"}, false, true), map[string]int16{"md-auto": 0})
}

func TestKafkaListOffsets(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "list-offsets"
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)

	empty := listOffset(t, b.kafkaAddr, topic, 0, -3)
	if empty.Offset != -1 || empty.Timestamp != -1 {
		t.Fatalf("max timestamp of an empty log: offset %d timestamp %d, want -1 -1", empty.Offset, empty.Timestamp)
	}
	// Ten records in two batches, a second apart, except offset 7, which is the newest.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	ts := func(i int) time.Time {
		if i == 7 {
			return base.Add(100 * time.Second)
		}
		return base.Add(time.Duration(i) * time.Second)
	}
	for _, batch := range [][2]int{{0, 5}, {5, 10}} {
		var records []*kgo.Record
		for i := batch[0]; i < batch[1]; i++ {
			records = append(records, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: ts(i)})
		}
		produceSync(t, cl, records...)
	}
	ms := func(tm time.Time) int64 { return tm.UnixMilli() }

	f := func(name string, query int64, wantOffset, wantTimestamp int64) {
		t.Run(name, func(t *testing.T) {
			got := listOffset(t, b.kafkaAddr, topic, 0, query)
			if got.Offset != wantOffset || (wantTimestamp != 0 && got.Timestamp != wantTimestamp) {
				t.Fatalf("query %d: offset %d timestamp %d, want %d %d", query, got.Offset, got.Timestamp, wantOffset, wantTimestamp)
			}
		})
	}
	f("earliest", -2, 0, 0)
	f("latest", -1, 10, 0)
	f("exact timestamp", ms(ts(2)), 2, ms(ts(2)))
	f("between timestamps", ms(ts(2))+500, 3, ms(ts(3)))
	f("in the second batch", ms(ts(6))+1, 7, ms(ts(7)))
	f("before everything", ms(base)-10_000, 0, ms(ts(0)))
	f("after everything", ms(ts(7))+1, -1, -1)
	f("max timestamp", -3, 7, ms(ts(7)))

	t.Run("v7 is negotiated", func(t *testing.T) {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -3
		rt.Partitions = append(rt.Partitions, p)
		req.Topics = append(req.Topics, rt)
		resp := request[*kmsg.ListOffsetsResponse](t, cl, req)
		if resp.GetVersion() != 7 || resp.Topics[0].Partitions[0].Offset != 7 {
			t.Fatalf("v%d: %+v", resp.GetVersion(), resp.Topics)
		}
	})
	t.Run("unknown partition", func(t *testing.T) {
		if c := listOffsetRaw(t, b.kafkaAddr, topic, 5, -1).ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("error %d, want UNKNOWN_TOPIC_OR_PARTITION", c)
		}
	})
}

func TestKafkaCreateTopics(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr)
	create := func(validateOnly bool, spec kmsg.CreateTopicsRequestTopic) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		resp := request[*kmsg.CreateTopicsResponse](t, cl, createTopicsRequest(validateOnly, spec))
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != spec.Topic {
			t.Fatalf("create %s: %+v", spec.Topic, resp.Topics)
		}
		return resp.Topics[0]
	}
	existing := func() map[string]int {
		t.Helper()
		resp := request[*kmsg.MetadataResponse](t, cl, metadataRequest(12, nil, true, false))
		out := map[string]int{}
		for _, rt := range resp.Topics {
			out[*rt.Topic] = len(rt.Partitions)
		}
		return out
	}

	created := create(false, topicSpec("ct-three", 3, map[string]string{"retention.ms": "3600000"}))
	if created.ErrorCode != 0 || created.NumPartitions != 3 || created.ReplicationFactor != 1 {
		t.Fatalf("create: %+v", created)
	}
	if i := slices.IndexFunc(created.Configs, func(c kmsg.CreateTopicsResponseTopicConfig) bool { return c.Name == "retention.ms" }); i < 0 ||
		*created.Configs[i].Value != "3600000" || created.Configs[i].Source != 1 {
		t.Fatalf("create response configs %+v", created.Configs)
	}
	if got := existing()["ct-three"]; got != 3 {
		t.Fatalf("ct-three has %d partitions in Metadata, want 3", got)
	}

	// -1 partitions and replication factor (v4+): the broker's defaults.
	if r := create(false, topicSpec("ct-defaults", -1, nil)); r.ErrorCode != 0 || r.NumPartitions != 1 || r.ReplicationFactor != 1 {
		t.Fatalf("create with the defaults: %+v", r)
	}
	if r := create(false, topicSpec("ct-zero", 0, nil)); r.ErrorCode != kerr.InvalidPartitions.Code {
		t.Fatalf("create with 0 partitions: error %d, want INVALID_PARTITIONS", r.ErrorCode)
	}

	if r := create(true, topicSpec("ct-validate", 4, nil)); r.ErrorCode != 0 {
		t.Fatalf("validate-only: error %d", r.ErrorCode)
	}
	if _, ok := existing()["ct-validate"]; ok {
		t.Fatal("a validate-only create made the topic")
	}
	if r := create(true, topicSpec("ct-three", 1, nil)); r.ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("validate-only create of an existing topic: error %d, want TOPIC_ALREADY_EXISTS", r.ErrorCode)
	}
	if r := create(false, topicSpec("ct-three", 5, nil)); r.ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("duplicate: error %d, want TOPIC_ALREADY_EXISTS", r.ErrorCode)
	}
	if got := existing()["ct-three"]; got != 3 {
		t.Fatalf("after the duplicate, ct-three has %d partitions, want 3", got)
	}
	for name, configs := range map[string]map[string]string{
		"ct-bad-value":  {"retention.ms": "soon"},
		"ct-bad-key":    {"no.such.config": "1"},
		"ct-bad-policy": {"cleanup.policy": "shred"},
	} {
		for _, validateOnly := range []bool{true, false} {
			if r := create(validateOnly, topicSpec(name, 1, configs)); r.ErrorCode != kerr.InvalidConfig.Code {
				t.Fatalf("%s (validate only %v): error %d, want INVALID_CONFIG", name, validateOnly, r.ErrorCode)
			}
		}
		if _, ok := existing()[name]; ok {
			t.Fatalf("%s was created despite its bad config", name)
		}
	}
}

func TestKafkaDeleteTopics(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic("dt"))
	createTopic(t, cl, "dt", 2, nil)
	createTopic(t, cl, "dt-kept", 1, nil)
	produceSync(t, cl, valueRecords("dt", "x", 10)...)
	del := func(name string) int16 {
		t.Helper()
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 30000
		req.TopicNames = []string{name}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = []kmsg.DeleteTopicsRequestTopic{rt}
		resp := request[*kmsg.DeleteTopicsResponse](t, cl, req)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != name {
			t.Fatalf("delete %s: %+v", name, resp.Topics)
		}
		return resp.Topics[0].ErrorCode
	}
	if c := del("dt"); c != 0 {
		t.Fatalf("delete: error %d", c)
	}
	md := metadataTopics(request[*kmsg.MetadataResponse](t, cl, metadataRequest(12, []string{"dt", "dt-kept"}, false, false)))
	if md["dt"] != kerr.UnknownTopicOrPartition.Code || md["dt-kept"] != 0 {
		t.Fatalf("after the delete, metadata %v", md)
	}
	if c := del("dt"); c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("second delete: error %d, want UNKNOWN_TOPIC_OR_PARTITION", c)
	}
	// The name can be used again, from an empty log.
	createTopic(t, cl, "dt", 1, nil)
	if got := listOffset(t, b.kafkaAddr, "dt", 0, -1).Offset; got != 0 {
		t.Fatalf("re-created topic has high watermark %d", got)
	}
}

func TestKafkaDescribeConfigs(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, cl, "dc", 1, map[string]string{"retention.ms": "3600000", "max.message.bytes": "5000"})
	describe := func(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, keys
		req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
		resp := request[*kmsg.DescribeConfigsResponse](t, cl, req)
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe %v %s: %+v", typ, name, resp.Resources)
		}
		return resp.Resources[0]
	}
	topic := describe(kmsg.ConfigResourceTypeTopic, "dc")
	byName := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range topic.Configs {
		byName[c.Name] = c
	}
	for name, want := range map[string]string{"retention.ms": "3600000", "max.message.bytes": "5000"} {
		c, ok := byName[name]
		if !ok || c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("%s: %+v, want %s from DYNAMIC_TOPIC_CONFIG", name, c, want)
		}
	}
	if c, ok := byName["segment.bytes"]; !ok || c.Source != kmsg.ConfigSourceDefaultConfig || *c.Value != "1073741824" {
		t.Fatalf("segment.bytes: %+v, want the default", c)
	}
	if only := describe(kmsg.ConfigResourceTypeTopic, "dc", "retention.ms"); len(only.Configs) != 1 || only.Configs[0].Name != "retention.ms" {
		t.Fatalf("asking for retention.ms only: %+v", only.Configs)
	}

	broker := describe(kmsg.ConfigResourceTypeBroker, "0")
	if len(broker.Configs) == 0 {
		t.Fatal("no broker configs")
	}
	for _, c := range broker.Configs {
		source := kmsg.ConfigSourceDefaultConfig // the test broker sets nothing else
		if c.Name == "log.dirs" {
			source = kmsg.ConfigSourceStaticBrokerConfig
		}
		if c.Source != source || !c.ReadOnly || c.Value == nil {
			t.Fatalf("broker config %+v, want a read-only %v", c, source)
		}
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "dc-missing"
	req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	if resp := request[*kmsg.DescribeConfigsResponse](t, cl, req); resp.Resources[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: error %d", resp.Resources[0].ErrorCode)
	}
}

// fetchOnce sends one Fetch for a partition at offset with no wait and returns its answer.
func fetchOnce(t *testing.T, cl *kgo.Client, topic string, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 0, 1<<20
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition, p.FetchOffset, p.PartitionMaxBytes = partition, offset, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	resp := request[*kmsg.FetchResponse](t, cl, req)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func TestKafkaDeleteRecords(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "delete-records"
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)
	for i := range 4 {
		produceSync(t, cl, valueRecords(topic, strconv.Itoa(i), 5)...)
	}
	deleteBelow := func(offset int64) kmsg.DeleteRecordsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = 30000
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = offset
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.DeleteRecordsRequestTopicPartition{p}
		req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
		resp := request[*kmsg.DeleteRecordsResponse](t, cl, req)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("delete records: %+v", resp)
		}
		return resp.Topics[0].Partitions[0]
	}

	// Mid-batch: the low watermark need not be a batch boundary.
	if r := deleteBelow(7); r.ErrorCode != 0 || r.LowWatermark != 7 {
		t.Fatalf("delete below 7: %+v", r)
	}
	if got := listOffset(t, b.kafkaAddr, topic, 0, -2).Offset; got != 7 {
		t.Fatalf("earliest offset %d, want 7", got)
	}
	if p := fetchOnce(t, cl, topic, 0, 3); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 7 {
		t.Fatalf("fetch below the low watermark: error %d log start %d, want OFFSET_OUT_OF_RANGE and 7", p.ErrorCode, p.LogStartOffset)
	}
	if p := fetchOnce(t, cl, topic, 0, 7); p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != 20 {
		t.Fatalf("fetch at the low watermark: error %d, %d bytes, high watermark %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	got := consume(t, b.kafkaAddr, 13, topic)
	if got[0].Offset != 7 || got[12].Offset != 19 {
		t.Fatalf("a consumer from the start reads offsets %d to %d, want 7 to 19", got[0].Offset, got[12].Offset)
	}
	if r := deleteBelow(3); r.ErrorCode != 0 || r.LowWatermark != 7 {
		t.Fatalf("deleting below an older offset: %+v, want no change", r)
	}
	if r := deleteBelow(21); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("deleting beyond the high watermark: %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	if r := deleteBelow(-1); r.ErrorCode != 0 || r.LowWatermark != 20 {
		t.Fatalf("delete below -1 (the high watermark): %+v", r)
	}
}

func TestKafkaInitProducerID(t *testing.T) {
	b := startKafkaBroker(t)
	cl := newKafkaClient(t, b.kafkaAddr)
	seen := map[int64]bool{}
	for range 3 {
		resp := request[*kmsg.InitProducerIDResponse](t, cl, kmsg.NewPtrInitProducerIDRequest())
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("init producer id: error %d id %d epoch %d (seen %v)", resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch, seen)
		}
		seen[resp.ProducerID] = true
	}
	// Over a plain connection: kgo would first look for a transaction coordinator, which this
	// broker (rightly) does not offer.
	conn := dialKafka(t, b.kafkaAddr)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(v)
		req.TransactionalID = kmsg.StringPtr("txn-1")
		req.TransactionTimeoutMillis = 60000
		resp := conn.do(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || resp.ProducerID != -1 {
			t.Fatalf("transactional init producer id v%d: error %d id %d, want a refusal", v, resp.ErrorCode, resp.ProducerID)
		}
	}
	// The metadata also lists the internal offsets topic as internal.
	internal := request[*kmsg.MetadataResponse](t, cl, metadataRequest(12, nil, true, false))
	for _, rt := range internal.Topics {
		if *rt.Topic == "__consumer_offsets" && !rt.IsInternal {
			t.Fatal("__consumer_offsets is not marked internal")
		}
	}

	// Ids stay fresh across a restart.
	b.stop()
	b.restart()
	cl2 := newKafkaClient(t, b.kafkaAddr)
	after := request[*kmsg.InitProducerIDResponse](t, cl2, kmsg.NewPtrInitProducerIDRequest())
	if after.ErrorCode != 0 || seen[after.ProducerID] || after.ProducerID < 0 {
		t.Fatalf("after a restart: error %d id %d (seen %v)", after.ErrorCode, after.ProducerID, seen)
	}
}
