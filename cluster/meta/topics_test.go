package meta

import (
	"reflect"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

func TestCreateTopics(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	r.createTopic("exists", 1, 1)
	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}}) // two live nodes

	configs := map[string]string{"retention.ms": "1000"}
	topics := []NewTopic{
		{Name: "ok", ID: [16]byte{1}, Partitions: 3, ReplicationFactor: 2, Internal: true, Configs: configs},
		{Name: "exists", ID: [16]byte{2}, Partitions: 1, ReplicationFactor: 1},
		{Name: "ok", ID: [16]byte{3}, Partitions: 1, ReplicationFactor: 1},
		{Name: "rf0", Partitions: 1, ReplicationFactor: 0},
		{Name: "rf3", Partitions: 1, ReplicationFactor: 3},
		{Name: "p0", Partitions: 0, ReplicationFactor: 1},
		{Name: "pneg", Partitions: -1, ReplicationFactor: 1},
		{Name: "huge", Partitions: MaxPartitionsPerTopic + 1, ReplicationFactor: 1},
		{Name: "", Partitions: 1, ReplicationFactor: 1},
		{Name: "rf3p0", Partitions: 0, ReplicationFactor: 3},
		{Name: "second", ID: [16]byte{4}, Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{}},
	}
	wantCodes := []errcode.Code{
		0, errcode.TopicAlreadyExists, errcode.TopicAlreadyExists, errcode.InvalidReplicationFactor,
		errcode.InvalidReplicationFactor, errcode.InvalidPartitions, errcode.InvalidPartitions,
		errcode.InvalidPartitions, errcode.InvalidTopic, errcode.InvalidReplicationFactor, 0,
	}
	res := r.apply(Command{CreateTopics: &CreateTopics{Topics: topics}})
	if res.Code != 0 || len(res.Codes) != len(topics) || len(res.Messages) != len(topics) {
		t.Fatalf("result %+v", res)
	}
	for i, want := range wantCodes {
		if res.Codes[i] != int16(want) || (want != 0) != (res.Messages[i] != "") {
			t.Errorf("topic %d %q: code %d message %q, want code %d", i, topics[i].Name, res.Codes[i], res.Messages[i], want)
		}
	}
	if msg := res.Messages[4]; !strings.Contains(msg, "2 available") {
		t.Errorf("replication factor message %q does not say how many nodes are available", msg)
	}
	if !reflect.DeepEqual(r.img.Names, []string{"exists", "ok", "second"}) {
		t.Fatalf("names %v", r.img.Names)
	}

	ok := r.img.Topic("ok")
	// One partition existed: the round robin over the live nodes [0 1] starts at 1.
	want := &Topic{Name: "ok", ID: [16]byte{1}, Internal: true, ReplicationFactor: 2, Configs: configs, Partitions: []Partition{
		{Replicas: []int32{1, 0}, ISR: []int32{1, 0}, Leader: 1},
		{Replicas: []int32{0, 1}, ISR: []int32{0, 1}, Leader: 0},
		{Replicas: []int32{1, 0}, ISR: []int32{1, 0}, Leader: 1},
	}}
	if !reflect.DeepEqual(ok, want) {
		t.Fatalf("topic ok:\n%+v\nwant\n%+v", ok, want)
	}
	configs["retention.ms"] = "changed"
	if ok.Configs["retention.ms"] != "1000" {
		t.Fatal("the topic shares its config map with the command")
	}
	if r.img.Topic("second").Configs != nil {
		t.Fatal("an empty config map is kept (it should be nil, the form that decodes)")
	}
	// "second" came after the four partitions of "exists" and "ok": it starts at 4 % 2.
	if p := r.img.Partition("second", 0); p.Leader != 0 {
		t.Fatalf("second/0 led by %d, want 0", p.Leader)
	}
}

func TestCreateTopicsWithoutNodes(t *testing.T) {
	r := newRunner(t)
	res := r.apply(Command{CreateTopics: &CreateTopics{Topics: []NewTopic{{Name: "a", Partitions: 1, ReplicationFactor: 1}}}})
	if res.Codes[0] != int16(errcode.InvalidReplicationFactor) || !strings.Contains(res.Messages[0], "0 available") {
		t.Fatalf("result %+v", res)
	}
	res = r.apply(Command{CreateTopics: &CreateTopics{}})
	if res.Code != 0 || len(res.Codes) != 0 {
		t.Fatalf("no topics: %+v", res)
	}
}

func TestDeleteTopic(t *testing.T) {
	r := newCluster(t, 0)
	a := r.createTopic("a", 1, 1)
	b := r.createTopic("b", 1, 1)
	for _, tc := range []struct {
		name     string
		cmd      DeleteTopic
		wantCode errcode.Code
		names    []string
	}{
		{"unknown", DeleteTopic{Name: "c", ID: a.ID}, errcode.UnknownTopicOrPartition, []string{"a", "b"}},
		{"other id", DeleteTopic{Name: "a", ID: b.ID}, errcode.UnknownTopicOrPartition, []string{"a", "b"}},
		{"a", DeleteTopic{Name: "a", ID: a.ID}, 0, []string{"b"}},
		{"a again", DeleteTopic{Name: "a", ID: a.ID}, errcode.UnknownTopicOrPartition, []string{"b"}},
		{"b", DeleteTopic{Name: "b", ID: b.ID}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.apply(Command{DeleteTopic: &tc.cmd})
			if res.Code != int16(tc.wantCode) || (tc.wantCode != 0) != (res.Message != "") {
				t.Fatalf("result %+v, want code %d", res, tc.wantCode)
			}
			if !reflect.DeepEqual(r.img.Names, tc.names) || len(r.img.Topics) != len(tc.names) {
				t.Fatalf("names %#v topics %d, want %#v", r.img.Names, len(r.img.Topics), tc.names)
			}
		})
	}
	// A topic created again under the name of a deleted one is a new topic.
	r.apply(Command{CreateTopics: &CreateTopics{Topics: []NewTopic{{Name: "a", ID: [16]byte{9}, Partitions: 2, ReplicationFactor: 1}}}})
	if res := r.apply(Command{DeleteTopic: &DeleteTopic{Name: "a", ID: a.ID}}); res.Code != int16(errcode.UnknownTopicOrPartition) {
		t.Fatalf("deleting the new topic with the old id: %+v", res)
	}
}

func TestAlterConfigs(t *testing.T) {
	r := newCluster(t, 0)
	a := r.createTopic("a", 2, 1)
	configs := map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024"}
	for _, tc := range []struct {
		name     string
		cmd      AlterConfigs
		wantCode errcode.Code
		want     map[string]string
	}{
		{"unknown", AlterConfigs{Name: "b", ID: a.ID, Configs: configs}, errcode.UnknownTopicOrPartition, nil},
		{"other id", AlterConfigs{Name: "a", ID: [16]byte{7}, Configs: configs}, errcode.UnknownTopicOrPartition, nil},
		{"set", AlterConfigs{Name: "a", ID: a.ID, Configs: configs}, 0, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024"}},
		{"replace", AlterConfigs{Name: "a", ID: a.ID, Configs: map[string]string{"retention.ms": "5"}}, 0, map[string]string{"retention.ms": "5"}},
		{"clear", AlterConfigs{Name: "a", ID: a.ID, Configs: map[string]string{}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.apply(Command{AlterConfigs: &tc.cmd})
			if res.Code != int16(tc.wantCode) {
				t.Fatalf("result %+v, want code %d", res, tc.wantCode)
			}
			if got := r.img.Topic("a"); !reflect.DeepEqual(got.Configs, tc.want) || !reflect.DeepEqual(got.Partitions, a.Partitions) {
				t.Fatalf("topic %+v, want configs %v", got, tc.want)
			}
		})
	}
	r.apply(Command{AlterConfigs: &AlterConfigs{Name: "a", ID: a.ID, Configs: configs}})
	configs["segment.bytes"] = "1"
	if r.img.Topic("a").Configs["segment.bytes"] != "1024" {
		t.Fatal("the topic shares its config map with the command")
	}
}

func TestCreatePartitions(t *testing.T) {
	r := newCluster(t, 0, 1, 2)
	a := r.createTopic("a", 2, 2) // start 0: [0 1], [1 2]
	r.createTopic("b", 2, 1)      // start 2: [2], [0]
	for _, tc := range []struct {
		name     string
		cmd      CreatePartitions
		wantCode errcode.Code
		count    int
	}{
		{"unknown", CreatePartitions{Name: "c", ID: a.ID, From: 2, Count: 3}, errcode.UnknownTopicOrPartition, 2},
		{"other id", CreatePartitions{Name: "a", ID: [16]byte{5}, From: 2, Count: 3}, errcode.UnknownTopicOrPartition, 2},
		{"stale count", CreatePartitions{Name: "a", ID: a.ID, From: 1, Count: 3}, errcode.InvalidPartitions, 2},
		{"not more", CreatePartitions{Name: "a", ID: a.ID, From: 2, Count: 2}, errcode.InvalidPartitions, 2},
		{"fewer", CreatePartitions{Name: "a", ID: a.ID, From: 2, Count: 1}, errcode.InvalidPartitions, 2},
		{"too many", CreatePartitions{Name: "a", ID: a.ID, From: 2, Count: MaxPartitionsPerTopic + 1}, errcode.InvalidPartitions, 2},
		{"raise", CreatePartitions{Name: "a", ID: a.ID, From: 2, Count: 4}, 0, 4},
		{"applied twice", CreatePartitions{Name: "a", ID: a.ID, From: 2, Count: 4}, errcode.InvalidPartitions, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.apply(Command{CreatePartitions: &tc.cmd})
			if res.Code != int16(tc.wantCode) || (tc.wantCode != 0) != (res.Message != "") {
				t.Fatalf("result %+v, want code %d", res, tc.wantCode)
			}
			if n := len(r.img.Topic("a").Partitions); n != tc.count {
				t.Fatalf("%d partitions, want %d", n, tc.count)
			}
		})
	}
	// Four partitions existed: the new ones start at node 4 % 3 = 1. The old ones are kept.
	got := r.img.Topic("a").Partitions
	want := append(append([]Partition(nil), a.Partitions...),
		Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1},
		Partition{Replicas: []int32{2, 0}, ISR: []int32{2, 0}, Leader: 2})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("partitions %+v, want %+v", got, want)
	}

	// With one live node, a topic of replication factor 2 cannot grow.
	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 2}})
	r.apply(Command{Fence: &FenceNode{ID: 2, Incarnation: 3}})
	res := r.apply(Command{CreatePartitions: &CreatePartitions{Name: "a", ID: a.ID, From: 4, Count: 5}})
	if res.Code != int16(errcode.InvalidReplicationFactor) || !strings.Contains(res.Message, "1 available") {
		t.Fatalf("result %+v, want INVALID_REPLICATION_FACTOR", res)
	}
}
