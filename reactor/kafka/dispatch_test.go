package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

// minimalRequest returns a small valid request of key at version, naming topic where it can.
func minimalRequest(t *testing.T, key, version int16, topic string) kmsg.Request {
	t.Helper()
	req := kmsg.RequestForKey(key)
	if req == nil {
		t.Fatalf("kmsg has no request for key %d", key)
	}
	req.SetVersion(version)
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		r.Acks, r.TimeoutMillis = -1, 5000
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = recordBatch(2, -1, -1, -1, time.Now().UnixMilli())
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.ProduceRequestTopicPartition{p}
		r.Topics = []kmsg.ProduceRequestTopic{rt}
	case *kmsg.FetchRequest:
		r.MaxWaitMillis, r.MaxBytes = 0, 1<<20
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.FetchRequestTopicPartition{p}
		r.Topics = []kmsg.FetchRequestTopic{rt}
	case *kmsg.ListOffsetsRequest:
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.ListOffsetsRequestTopicPartition{p}
		r.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	case *kmsg.MetadataRequest:
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		r.Topics = []kmsg.MetadataRequestTopic{rt}
	case *kmsg.FindCoordinatorRequest:
		r.CoordinatorKey = "group"
		r.CoordinatorKeys = []string{"group"}
	case *kmsg.ApiVersionsRequest:
		r.ClientSoftwareName, r.ClientSoftwareVersion = "unit-test", "1.0"
	case *kmsg.CreateTopicsRequest:
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("created-%d", version), 1, 1
		r.Topics = []kmsg.CreateTopicsRequestTopic{rt}
		r.TimeoutMillis = 5000
	case *kmsg.DeleteTopicsRequest:
		name := fmt.Sprintf("no-such-topic-%d", version)
		r.TopicNames = []string{name}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = &name
		r.Topics = []kmsg.DeleteTopicsRequestTopic{rt}
		r.TimeoutMillis = 5000
	case *kmsg.DeleteRecordsRequest:
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = 0
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.DeleteRecordsRequestTopicPartition{p}
		r.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
		r.TimeoutMillis = 5000
	case *kmsg.InitProducerIDRequest:
		r.TransactionTimeoutMillis = 60000
	case *kmsg.DescribeConfigsRequest:
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	default:
		t.Fatalf("no minimal request for key %d (%T): add one", key, req)
	}
	return req
}

// errorCodes lists the error codes of a response: the top-level one and every per-item one.
func errorCodes(resp kmsg.Response) []int16 {
	var codes []int16
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		codes = append(codes, r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.MetadataResponse:
		for _, t := range r.Topics {
			codes = append(codes, t.ErrorCode)
		}
	case *kmsg.FindCoordinatorResponse:
		codes = append(codes, r.ErrorCode)
		for _, c := range r.Coordinators {
			codes = append(codes, c.ErrorCode)
		}
	case *kmsg.ApiVersionsResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			codes = append(codes, t.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			codes = append(codes, t.ErrorCode)
		}
	case *kmsg.DeleteRecordsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.InitProducerIDResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.DescribeConfigsResponse:
		for _, rr := range r.Resources {
			codes = append(codes, rr.ErrorCode)
		}
	}
	return codes
}

// TestKafkaEveryAdvertisedVersionIsServed sends a minimal request of every advertised key at
// every advertised version: each must get a response that kmsg decodes at that version (and
// re-encodes to the same bytes), with no error except where one is expected.
func TestKafkaEveryAdvertisedVersionIsServed(t *testing.T) {
	e := newEnv(t)
	const topic = "dispatch"
	if err := e.broker.CreateTopic(cluster.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	for _, api := range advertised {
		for v := api.min; v <= api.max; v++ {
			name := fmt.Sprintf("%s/v%d", kmsg.NameForKey(api.key), v)
			t.Run(name, func(t *testing.T) {
				e.t = t
				resp := e.call(minimalRequest(t, api.key, v, topic))
				codes := errorCodes(resp)
				if len(codes) == 0 {
					t.Fatalf("response has nothing to check: %+v", resp)
				}
				wantCode := int16(0)
				switch {
				case api.key == kmsg.Produce.Int16() && v < 3:
					wantCode = int16(errcode.UnsupportedVersion)
				case api.key == kmsg.DeleteTopics.Int16():
					wantCode = int16(errcode.UnknownTopicOrPartition)
				}
				for _, c := range codes {
					if c != wantCode {
						t.Fatalf("error codes %v, want all %d: %+v", codes, wantCode, resp)
					}
				}
				if p, ok := resp.(*kmsg.ProduceResponse); ok && v >= 3 && p.Topics[0].Partitions[0].BaseOffset < 0 {
					t.Fatalf("produce v%d: base offset %d", v, p.Topics[0].Partitions[0].BaseOffset)
				}
				if m, ok := resp.(*kmsg.MetadataResponse); ok && (len(m.Topics) != 1 || len(m.Brokers) != 1 || m.Brokers[0].Port != 9092) {
					t.Fatalf("metadata v%d: %+v", v, m)
				}
			})
		}
	}
}

// TestKafkaUnsupportedRequestsCloseTheConnection: a key or version outside the table gets no
// answer and the connection is closed, as Kafka does.
func TestKafkaUnsupportedRequestsCloseTheConnection(t *testing.T) {
	f := func(name string, key, version int16, body []byte) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.sendRaw(requestFrame(key, version, 1, nil, false, body))
			e.tr.waitClosed(t)
			select {
			case b := <-e.tr.frames:
				t.Fatalf("unexpected response of %d bytes", len(b))
			default:
			}
		})
	}
	empty := []byte{0, 0, 0, 0}
	f("unknown key", 999, 0, empty)
	f("join group is not advertised", kmsg.JoinGroup.Int16(), 0, empty)
	f("fetch v3", kmsg.Fetch.Int16(), 3, empty)
	f("fetch v13", kmsg.Fetch.Int16(), 13, empty)
	f("metadata v13", kmsg.Metadata.Int16(), 13, empty)
	f("metadata v0 body cut short", kmsg.Metadata.Int16(), 0, []byte{0, 0, 0, 5})
	f("fetch v4 body cut short", kmsg.Fetch.Int16(), 4, []byte{0, 0, 0, 5})
	f("produce v9 body cut short", kmsg.Produce.Int16(), 9, []byte{0, 0, 0, 5})
}

// TestKafkaApiVersionsAboveMaxAnswersV0 checks the v0-format answer to ApiVersions v5 and the
// tag-less response header of the flexible versions.
func TestKafkaApiVersionsAboveMaxAnswersV0(t *testing.T) {
	e := newEnv(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(4)
	body := req.AppendTo(nil)
	e.corr++
	id := "franz-go"
	e.sendRaw(requestFrame(kmsg.ApiVersions.Int16(), 5, e.corr, &id, true, body))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(e.recv(e.corr, false)); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != int16(errcode.UnsupportedVersion) {
		t.Fatalf("error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.ApiVersions.Int16() && k.MinVersion == 0 && k.MaxVersion == 4 {
			found = true
		}
	}
	if !found || len(resp.ApiKeys) != len(advertised) {
		t.Fatalf("table %+v", resp.ApiKeys)
	}
}
