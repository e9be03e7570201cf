package meta

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sampleCommands has one command of every kind.
func sampleCommands() []Command {
	return []Command{
		{Init: &InitCluster{ClusterID: "7b1e0c", NextProducerID: 4000}},
		{Register: &RegisterNode{ID: 2, Binary: Endpoint{Host: "10.0.0.2", Port: 9000}, Kafka: Endpoint{Host: "10.0.0.2", Port: 9092}}},
		{Fence: &FenceNode{ID: 2, Incarnation: 17}},
		{Unfence: &UnfenceNode{ID: 2, Incarnation: 17}},
		{CreateTopics: &CreateTopics{Topics: []NewTopic{
			{Name: "orders", ID: [16]byte{1, 2, 3, 255}, Partitions: 6, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "60000"}},
			{Name: "__consumer_offsets", ID: [16]byte{9}, Partitions: 50, ReplicationFactor: 1, Internal: true},
		}}},
		{DeleteTopic: &DeleteTopic{Name: "orders", ID: [16]byte{1, 2, 3, 255}}},
		{AlterConfigs: &AlterConfigs{Name: "orders", ID: [16]byte{1}, Configs: map[string]string{"cleanup.policy": "compact"}}},
		{CreatePartitions: &CreatePartitions{Name: "orders", ID: [16]byte{1}, From: 6, Count: 12}},
		{AllocProducerIDs: &AllocProducerIDs{Node: 1, Count: 1000}},
		{AlterPartition: &AlterPartition{Topic: "orders", ID: [16]byte{1}, Partition: 3, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 9,
			ISR: []ISRMember{{ID: 2, Incarnation: 17}, {ID: 0, Incarnation: 5}}}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, cmd := range sampleCommands() {
		b, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("EncodeCommand(%+v): %v", cmd, err)
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("DecodeCommand(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, cmd) {
			t.Fatalf("round trip of %s: %+v", b, got)
		}
	}
}

func TestEncodeCommandRefusesMalformed(t *testing.T) {
	for _, cmd := range []Command{{}, {Fence: &FenceNode{}, Unfence: &UnfenceNode{}}} {
		if _, err := EncodeCommand(cmd); !errors.Is(err, ErrBadCommand) {
			t.Errorf("EncodeCommand(%+v): %v, want ErrBadCommand", cmd, err)
		}
	}
}

func TestDecodeCommandRefusesMalformed(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{}`, `[]`, `"init"`, `{"init":null}`, `{"unknown_command":{"x":1}}`,
		`{"init":{"cluster_id":"a"},"fence":{"id":1}}`,
		`{"init":{"cluster_id":"a"}} trailing`,
		`{"fence":{"id":"one"}}`,
		`{"delete_topic":{"name":"a","id":[256]}}`,
		`{"init":{"cluster_id":"a"`,
		"\x00\xff",
	} {
		if cmd, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrBadCommand) {
			t.Errorf("DecodeCommand(%q) = %+v, %v; want ErrBadCommand", in, cmd, err)
		}
	}
}

// sampleImage is an image with nodes, topics, configs, a fenced node and an offline partition.
func sampleImage(t testing.TB) *Image {
	r := newCluster(t, 2, 0, 1)
	r.apply(Command{Init: &InitCluster{ClusterID: "c1", NextProducerID: 77}})
	r.createTopic("b", 3, 2)
	r.createTopic("a", 2, 1)
	r.apply(Command{AlterConfigs: &AlterConfigs{Name: "a", ID: r.img.Topic("a").ID, Configs: map[string]string{"x": "1", "y": "2"}}})
	r.apply(Command{Fence: &FenceNode{ID: 1, Incarnation: 3}})
	r.apply(Command{AllocProducerIDs: &AllocProducerIDs{Count: 10}})
	return r.img
}

func TestImageRoundTrip(t *testing.T) {
	for _, img := range []*Image{Empty(), sampleImage(t)} {
		b := mustEncodeImage(t, img)
		got, err := DecodeImage(b)
		if err != nil {
			t.Fatalf("DecodeImage(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, img) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, img)
		}
		// The encoding does not depend on map order.
		for range 10 {
			if again := mustEncodeImage(t, img.Clone()); !bytes.Equal(again, b) {
				t.Fatalf("two encodings of one image differ:\n%s\n%s", b, again)
			}
		}
	}
	if b := mustEncodeImage(t, nil); !bytes.Equal(b, mustEncodeImage(t, Empty())) {
		t.Fatal("EncodeImage(nil) is not the empty image")
	}
}

func TestEncodeImageRefusesInconsistent(t *testing.T) {
	img := sampleImage(t).Clone()
	img.Names = append(img.Names, "missing")
	if _, err := EncodeImage(img); !errors.Is(err, ErrBadImage) {
		t.Fatalf("EncodeImage with a listed but missing topic: %v", err)
	}
	img = sampleImage(t).Clone()
	img.Nodes[9] = &Node{ID: 9}
	if _, err := EncodeImage(img); !errors.Is(err, ErrBadImage) {
		t.Fatalf("EncodeImage with an unlisted node: %v", err)
	}
}

func TestDecodeImageRefusesBroken(t *testing.T) {
	good := string(mustEncodeImage(t, sampleImage(t)))
	if !strings.Contains(good, `"partitions":[{"replicas":[0],"isr":[0],"leader":0,`) {
		t.Fatalf("the sample encoding changed, update the cases: %s", good)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"null", `null`},
		{"garbage", "\x00\x01"},
		{"truncated", good[:len(good)/2]},
		{"no version", `{"index":1,"nodes":[],"topics":[]}`},
		{"future version", `{"version":2,"index":1,"nodes":[],"topics":[]}`},
		{"negative producer id", `{"version":1,"next_producer_id":-1}`},
		{"duplicate node", `{"version":1,"nodes":[{"id":1},{"id":1}]}`},
		{"negative node", `{"version":1,"nodes":[{"id":-1}]}`},
		{"unnamed topic", `{"version":1,"topics":[{"name":"","partitions":[{"replicas":[0],"isr":[0],"leader":0}]}]}`},
		{"duplicate topic", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0],"isr":[0],"leader":0}]},{"name":"a","partitions":[{"replicas":[0],"isr":[0],"leader":0}]}]}`},
		{"no partitions", `{"version":1,"topics":[{"name":"a","partitions":[]}]}`},
		{"no replicas", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[],"isr":[0],"leader":0}]}]}`},
		{"duplicate replica", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0,0],"isr":[0],"leader":0}]}]}`},
		{"negative replica", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[-1],"isr":[-1],"leader":-1}]}]}`},
		{"empty ISR", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0],"isr":[],"leader":0}]}]}`},
		{"ISR outside replicas", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0],"isr":[0,1],"leader":0}]}]}`},
		{"duplicate ISR member", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0,1],"isr":[1,1],"leader":1}]}]}`},
		{"leader not a replica", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0],"isr":[0],"leader":3}]}]}`},
		{"negative epoch", `{"version":1,"topics":[{"name":"a","partitions":[{"replicas":[0],"isr":[0],"leader":0,"leader_epoch":-2}]}]}`},
		{"leader not a replica in the sample", strings.Replace(good, `"leader":0,`, `"leader":5,`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if img, err := DecodeImage([]byte(tc.in)); !errors.Is(err, ErrBadImage) {
				t.Fatalf("DecodeImage = %+v, %v; want ErrBadImage", img, err)
			}
		})
	}
	img, err := DecodeImage([]byte(`{"version":1,"topics":[{"name":"a","configs":{},"partitions":[{"replicas":[0],"isr":[0],"leader":-1}]}]}`))
	if err != nil || img.Topic("a").Configs != nil || img.Partition("a", 0).Leader != NoLeader {
		t.Fatalf("a valid image with an empty config map: %+v, %v", img, err)
	}
}
