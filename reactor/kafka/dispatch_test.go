package kafka

import (
	"fmt"
	"reflect"
	"strings"
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
	case *kmsg.OffsetForLeaderEpochRequest:
		r.ReplicaID = -1
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.OffsetForLeaderEpochRequestTopicPartition{p}
		r.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{rt}
	case *kmsg.InitProducerIDRequest:
		r.TransactionTimeoutMillis = 60000
	case *kmsg.DescribeConfigsRequest:
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	case *kmsg.AlterConfigsRequest:
		rc := kmsg.NewAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = "retention.ms", kmsg.StringPtr("3600000")
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, []kmsg.AlterConfigsRequestResourceConfig{rc}
		r.Resources = []kmsg.AlterConfigsRequestResource{rr}
	case *kmsg.IncrementalAlterConfigsRequest:
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Op, rc.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("7200000")
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, []kmsg.IncrementalAlterConfigsRequestResourceConfig{rc}
		r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{rr}
	case *kmsg.DescribeLogDirsRequest:
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Topics = []kmsg.DescribeLogDirsRequestTopic{rt}
	case *kmsg.CreatePartitionsRequest:
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, 2
		r.Topics, r.ValidateOnly, r.TimeoutMillis = []kmsg.CreatePartitionsRequestTopic{rt}, true, 5000
	case *kmsg.DescribeClusterRequest:
		r.IncludeClusterAuthorizedOperations = true
	case *kmsg.DescribeProducersRequest:
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Topics = []kmsg.DescribeProducersRequestTopic{rt}
	case *kmsg.OffsetCommitRequest:
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.Metadata = 0, 1, kmsg.StringPtr("m")
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.OffsetCommitRequestTopicPartition{p}
		r.Group, r.Topics = "dispatch-group", []kmsg.OffsetCommitRequestTopic{rt}
	case *kmsg.OffsetFetchRequest:
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Group, r.Topics = "dispatch-group", []kmsg.OffsetFetchRequestTopic{rt}
		g := kmsg.NewOffsetFetchRequestGroup()
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = topic, []int32{0}
		g.Group, g.Topics = "dispatch-group", []kmsg.OffsetFetchRequestGroupTopic{gt}
		r.Groups = []kmsg.OffsetFetchRequestGroup{g}
	case *kmsg.JoinGroupRequest:
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 1}
		r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = fmt.Sprintf("join-%d", version), 10000, 10000
		r.ProtocolType, r.Protocols = "consumer", []kmsg.JoinGroupRequestProtocol{p}
	case *kmsg.SyncGroupRequest:
		r.Group, r.Generation, r.MemberID = "no-such-group", 1, "no-such-member"
	case *kmsg.HeartbeatRequest:
		r.Group, r.Generation, r.MemberID = "no-such-group", 1, "no-such-member"
	case *kmsg.LeaveGroupRequest:
		r.Group, r.MemberID = "no-such-group", "no-such-member"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "no-such-member"
		r.Members = []kmsg.LeaveGroupRequestMember{m}
	case *kmsg.DescribeGroupsRequest:
		r.Groups = []string{"dispatch-group"}
	case *kmsg.ListGroupsRequest:
	case *kmsg.DeleteGroupsRequest:
		r.Groups = []string{"no-such-group"}
	case *kmsg.OffsetDeleteRequest:
		p := kmsg.NewOffsetDeleteRequestTopicPartition()
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.OffsetDeleteRequestTopicPartition{p}
		r.Group, r.Topics = "no-such-group", []kmsg.OffsetDeleteRequestTopic{rt}
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
	case *kmsg.OffsetForLeaderEpochResponse:
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
	case *kmsg.AlterConfigsResponse:
		for _, rr := range r.Resources {
			codes = append(codes, rr.ErrorCode)
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, rr := range r.Resources {
			codes = append(codes, rr.ErrorCode)
		}
	case *kmsg.DescribeLogDirsResponse:
		codes = append(codes, r.ErrorCode)
		for _, d := range r.Dirs {
			codes = append(codes, d.ErrorCode)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			codes = append(codes, t.ErrorCode)
		}
	case *kmsg.DescribeClusterResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.DescribeProducersResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	case *kmsg.OffsetFetchResponse:
		if r.Version >= 2 && r.Version < 8 {
			codes = append(codes, r.ErrorCode)
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
		for _, g := range r.Groups {
			codes = append(codes, g.ErrorCode)
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					codes = append(codes, p.ErrorCode)
				}
			}
		}
	case *kmsg.JoinGroupResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.SyncGroupResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.HeartbeatResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.LeaveGroupResponse:
		codes = append(codes, r.ErrorCode)
		for _, m := range r.Members {
			codes = append(codes, m.ErrorCode)
		}
	case *kmsg.DescribeGroupsResponse:
		for _, g := range r.Groups {
			codes = append(codes, g.ErrorCode)
		}
	case *kmsg.ListGroupsResponse:
		codes = append(codes, r.ErrorCode)
	case *kmsg.DeleteGroupsResponse:
		for _, g := range r.Groups {
			codes = append(codes, g.ErrorCode)
		}
	case *kmsg.OffsetDeleteResponse:
		codes = append(codes, r.ErrorCode)
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
				case api.key == kmsg.JoinGroup.Int16() && v >= 4:
					wantCode = int16(errcode.MemberIDRequired) // a first join without a member id
				case api.key == kmsg.SyncGroup.Int16() || api.key == kmsg.Heartbeat.Int16() || api.key == kmsg.LeaveGroup.Int16():
					wantCode = int16(errcode.UnknownMemberID)
				case api.key == kmsg.DeleteGroups.Int16() || api.key == kmsg.OffsetDelete.Int16():
					wantCode = int16(errcode.GroupIDNotFound)
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
				if d, ok := resp.(*kmsg.DescribeLogDirsResponse); ok && (len(d.Dirs) != 1 || len(d.Dirs[0].Topics) != 1 || d.Dirs[0].Dir != "/data") {
					t.Fatalf("describe log dirs v%d: %+v", v, d)
				}
				if d, ok := resp.(*kmsg.DescribeClusterResponse); ok && (len(d.Brokers) != 1 || d.Brokers[0].Port != 9092 || d.ClusterAuthorizedOperations != clusterOperations) {
					t.Fatalf("describe cluster v%d: %+v", v, d)
				}
			})
		}
	}
}

// TestKafkaUnsupportedRequests: a key or version outside the table is answered with its
// response carrying UNSUPPORTED_VERSION when that response has a top-level error code at that
// version, and the connection keeps serving; otherwise (an unknown key, a response without one)
// and for a body that does not parse, the connection is closed with no answer, as Kafka does.
func TestKafkaUnsupportedRequests(t *testing.T) {
	closed := func(name string, key, version int16, body []byte) {
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
	closed("unknown key", 999, 0, empty)
	closed("negative version", kmsg.JoinGroup.Int16(), -1, empty)
	closed("join group v5 body cut short", kmsg.JoinGroup.Int16(), 5, []byte{0, 1, 'g'})
	closed("offset fetch v8 body cut short", kmsg.OffsetFetch.Int16(), 8, []byte{2})
	closed("fetch v3 has no top-level error code", kmsg.Fetch.Int16(), 3, empty)
	closed("offset commit v10 has no top-level error code", kmsg.OffsetCommit.Int16(), 10, empty)
	closed("metadata v0 body cut short", kmsg.Metadata.Int16(), 0, []byte{0, 0, 0, 5})
	closed("fetch v4 body cut short", kmsg.Fetch.Int16(), 4, []byte{0, 0, 0, 5})
	closed("produce v9 body cut short", kmsg.Produce.Int16(), 9, []byte{0, 0, 0, 5})

	answered := func(name string, req kmsg.Request) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.call(req) // decodes at the request's version, header flexible as the response
			code := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode").Int()
			if code != int64(errcode.UnsupportedVersion) {
				t.Fatalf("error %d, want UNSUPPORTED_VERSION: %+v", code, resp)
			}
			if m := reflect.ValueOf(resp).Elem().FieldByName("ErrorMessage"); m.IsValid() && m.Kind() == reflect.Pointer && req.GetVersion() > 0 {
				if m.IsNil() || !strings.Contains(m.Elem().String(), kmsg.NameForKey(req.Key())) {
					t.Fatalf("error message %v", m)
				}
			}
			if e.tr.closed.Load() {
				t.Fatal("the connection was closed")
			}
			// The connection still serves.
			if md := e.call(minimalRequest(t, kmsg.Metadata.Int16(), 12, "after")).(*kmsg.MetadataResponse); len(md.Brokers) != 1 {
				t.Fatalf("metadata after the unsupported request: %+v", md)
			}
		})
	}
	withVersion := func(req kmsg.Request, v int16) kmsg.Request { req.SetVersion(v); return req }
	answered("end txn v0", withVersion(kmsg.NewPtrEndTxnRequest(), 0))
	answered("consumer group heartbeat v0 (flexible)", withVersion(kmsg.NewPtrConsumerGroupHeartbeatRequest(), 0))
	answered("init producer id v5", withVersion(kmsg.NewPtrInitProducerIDRequest(), 5))
	answered("describe acls v3", withVersion(kmsg.NewPtrDescribeACLsRequest(), 3))
	answered("fetch v13", withVersion(kmsg.NewPtrFetchRequest(), 13))
	answered("describe cluster v2", withVersion(kmsg.NewPtrDescribeClusterRequest(), 2))
}

// TestUnsupportedResponseEveryKey builds the UNSUPPORTED_VERSION answer of every key and version
// kmsg knows: none panics, and each one built decodes at its version with that error code.
func TestUnsupportedResponseEveryKey(t *testing.T) {
	answerable := 0
	for key := int16(-1); key <= 200; key++ {
		req := kmsg.RequestForKey(key)
		maxVersion := int16(3)
		if req != nil {
			maxVersion = req.MaxVersion() + 1
		}
		for v := int16(-1); v <= maxVersion; v++ {
			resp, flexible, ok := unsupportedResponse(key, v)
			if !ok {
				continue
			}
			answerable++
			again := req.ResponseKind()
			again.SetVersion(v)
			if err := again.ReadFrom(resp.AppendTo(nil)); err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
			}
			if code := reflect.ValueOf(again).Elem().FieldByName("ErrorCode").Int(); code != int64(errcode.UnsupportedVersion) {
				t.Fatalf("%s v%d: error code %d", kmsg.NameForKey(key), v, code)
			}
			if flexible != again.IsFlexible() {
				t.Fatalf("%s v%d: flexible %v, response %v", kmsg.NameForKey(key), v, flexible, again.IsFlexible())
			}
		}
	}
	if answerable < 100 {
		t.Fatalf("only %d key/version pairs can be answered", answerable)
	}
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
