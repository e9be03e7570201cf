package client

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerProtocolMatchesKafka: the subscription and assignment bytes are Kafka's, as
// franz-go encodes and decodes Kafka's ConsumerProtocolSubscription and Assignment schemas.
func TestConsumerProtocolMatchesKafka(t *testing.T) {
	rack := "eu-1"
	sub := subscription{Topics: []string{"orders", "audit"}, UserData: []byte("u"),
		Owned: []TopicPartition{{"orders", 0}, {"orders", 2}, {"audit", 1}}, Generation: 7, RackID: &rack}
	ours := appendSubscription(nil, &sub)
	var km kmsg.ConsumerMemberMetadata
	if err := km.ReadFrom(ours); err != nil {
		t.Fatal(err)
	}
	want := kmsg.ConsumerMemberMetadata{Version: 3, Topics: sub.Topics, UserData: []byte("u"), Generation: 7, Rack: &rack,
		OwnedPartitions: []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "orders", Partitions: []int32{0, 2}}, {Topic: "audit", Partitions: []int32{1}}}}
	if !reflect.DeepEqual(km, want) {
		t.Fatalf("franz-go reads our subscription as %+v\nwant %+v", km, want)
	}
	if kafka := want.AppendTo(nil); !bytes.Equal(kafka, ours) {
		t.Fatalf("subscription bytes\n ours % x\nkafka % x", ours, kafka)
	}

	// Every version Kafka's consumers write reads back; a version newer than 3 keeps its known
	// fields and ignores the rest.
	for version := int16(0); version <= 4; version++ {
		km := kmsg.ConsumerMemberMetadata{Version: version, Topics: []string{"t"}, Generation: 3,
			OwnedPartitions: []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "t", Partitions: []int32{4}}}}
		b := km.AppendTo(nil)
		if version == 4 {
			v3 := kmsg.ConsumerMemberMetadata{Version: 3, Topics: []string{"t"}, Generation: 3, OwnedPartitions: km.OwnedPartitions}
			b = append(v3.AppendTo(nil), "future"...)
			b[1] = 4
		}
		got, err := readSubscription(b)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if !reflect.DeepEqual(got.Topics, []string{"t"}) || (version >= 1) != (len(got.Owned) == 1) || (version >= 2) != (got.Generation == 3) {
			t.Fatalf("version %d read as %+v", version, got)
		}
	}

	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"audit", 3}}
	assignment := appendAssignment(nil, tps)
	var ka kmsg.ConsumerMemberAssignment
	if err := ka.ReadFrom(assignment); err != nil {
		t.Fatal(err)
	}
	wantA := kmsg.ConsumerMemberAssignment{Version: 3, Topics: []kmsg.ConsumerMemberAssignmentTopic{
		{Topic: "orders", Partitions: []int32{0, 1}}, {Topic: "audit", Partitions: []int32{3}}}}
	if !reflect.DeepEqual(ka, wantA) {
		t.Fatalf("franz-go reads our assignment as %+v", ka)
	}
	for version := int16(0); version <= 3; version++ {
		wantA.Version = version
		got, err := readAssignment(wantA.AppendTo(nil))
		if err != nil || !reflect.DeepEqual(got, tps) {
			t.Fatalf("version %d assignment read as %v, %v", version, got, err)
		}
	}
	// The coordinator's assignment for a member the leader left out, and zero bytes.
	for _, empty := range [][]byte{{0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, nil} {
		if got, err := readAssignment(empty); err != nil || len(got) != 0 {
			t.Fatalf("empty assignment % x: %v, %v", empty, got, err)
		}
	}
}

func TestConsumerProtocolMalformed(t *testing.T) {
	good := appendSubscription(nil, &subscription{Topics: []string{"orders"}, Generation: -1})
	for n := 0; n < len(good); n++ {
		if _, err := readSubscription(good[:n]); !errors.Is(err, errConsumerProtocol) {
			t.Fatalf("subscription cut to %d bytes: %v", n, err)
		}
	}
	goodA := appendAssignment(nil, []TopicPartition{{"orders", 1}})
	for n := 1; n < len(goodA); n++ {
		if _, err := readAssignment(goodA[:n]); !errors.Is(err, errConsumerProtocol) {
			t.Fatalf("assignment cut to %d bytes: %v", n, err)
		}
	}
	for _, b := range [][]byte{{0xff, 0xff}, {0x00, 0x00, 0x7f, 0xff, 0xff, 0xff}} {
		if _, err := readSubscription(b); !errors.Is(err, errConsumerProtocol) {
			t.Errorf("subscription % x: %v", b, err)
		}
		if _, err := readAssignment(b); !errors.Is(err, errConsumerProtocol) {
			t.Errorf("assignment % x: %v", b, err)
		}
	}
}

// TestRangeAssign follows Kafka's RangeAssignor: per topic, members in order, consecutive
// ranges, the first members one partition more.
func TestRangeAssign(t *testing.T) {
	s := func(v string) *string { return &v }
	f := func(name string, members []rangeMember, partitions map[string]int32, want map[string]string) {
		t.Helper()
		got := rangeAssign(members, partitions)
		for id, w := range want {
			if g := fmt.Sprint(got[id]); g != w {
				t.Errorf("%s: member %s got %s, want %s", name, id, g, w)
			}
		}
		if len(got) != len(members) {
			t.Errorf("%s: %d entries for %d members", name, len(got), len(members))
		}
	}
	f("two topics of three partitions, two members (Kafka's example)",
		[]rangeMember{{MemberID: "c1", Topics: []string{"t0", "t1"}}, {MemberID: "c0", Topics: []string{"t1", "t0"}}},
		map[string]int32{"t0": 3, "t1": 3},
		map[string]string{"c0": "[{t0 0} {t0 1} {t1 0} {t1 1}]", "c1": "[{t0 2} {t1 2}]"})
	f("six partitions, three members",
		[]rangeMember{{MemberID: "b", Topics: []string{"t"}}, {MemberID: "c", Topics: []string{"t"}}, {MemberID: "a", Topics: []string{"t"}}},
		map[string]int32{"t": 6},
		map[string]string{"a": "[{t 0} {t 1}]", "b": "[{t 2} {t 3}]", "c": "[{t 4} {t 5}]"})
	f("more members than partitions, a topic only some subscribe to, an unknown topic",
		[]rangeMember{{MemberID: "a", Topics: []string{"t", "only-a", "missing"}}, {MemberID: "b", Topics: []string{"t"}}, {MemberID: "c", Topics: []string{"t", "t"}}},
		map[string]int32{"t": 2, "only-a": 1},
		map[string]string{"a": "[{only-a 0} {t 0}]", "b": "[{t 1}]", "c": "[]"})
	f("static members first, by instance id",
		[]rangeMember{{MemberID: "a", Topics: []string{"t"}}, {MemberID: "z", InstanceID: s("i2"), Topics: []string{"t"}}, {MemberID: "y", InstanceID: s("i1"), Topics: []string{"t"}}},
		map[string]int32{"t": 4},
		map[string]string{"y": "[{t 0} {t 1}]", "z": "[{t 2}]", "a": "[{t 3}]"})
	f("no members", nil, map[string]int32{"t": 4}, nil)
}

// TestGroupPartition places groups as Kafka does: abs(String.hashCode()) % partitions.
func TestGroupPartition(t *testing.T) {
	f := func(group string, partitions, want int) {
		t.Helper()
		if got := groupPartition(group, partitions); got != want {
			t.Errorf("groupPartition(%q, %d) = %d, want %d", group, partitions, got, want)
		}
	}
	f("", 50, 0)
	f("a", 50, 97%50)
	f("hello", 50, 99162322%50)               // "hello".hashCode() = 99162322
	f("polygenelubricants", 50, 0)            // hashCode() = Integer.MIN_VALUE, which Kafka's abs maps to 0
	f("Aa", 12, 2112%12)                      // "Aa" and "BB" collide in Java
	f("BB", 12, 2112%12)                      //
	f("\U0001F600", 50, 1772899%50)           // a surrogate pair: 0xD83D*31 + 0xDE00
	f("billing-consumers", 12, 2045010539%12) //
	f("zz", 12, 3904%12)                      // 'z'*31 + 'z'
	f("ÿÿÿÿÿÿÿÿÿÿÿÿ", 7, 346441920%7)         // the hash overflows to -346441920
}
