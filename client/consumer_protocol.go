package client

import (
	"errors"
	"fmt"
	"sort"

	"github.com/thorstream/thorstream/codec/proto"
)

// Kafka's consumer protocol: what members of a group of protocol type "consumer" put in their
// JoinGroup metadata (ConsumerProtocolSubscription) and what the leader hands out in SyncGroup
// (ConsumerProtocolAssignment). Thorstream's consumer writes these exactly as Kafka's Java
// consumer does, so Kafka tools describe its groups, and Kafka consumers on the Kafka listener
// may share a group with it.
//
//	subscription: version int16 | topics [ string ] | userData bytes |
//	              ownedPartitions [ topic string | partitions [ int32 ] ] (v1+) |
//	              generationId int32 (v2+) | rackId string (v3+)
//	assignment:   version int16 | assignedPartitions [ topic string | partitions [ int32 ] ] |
//	              userData bytes
//
// Primitives are those of the binary protocol (Kafka's non-flexible encoding). A reader takes the
// fields of the versions it knows and ignores what a newer version adds after them, as Kafka's
// does.

// Consumer protocol names.
const (
	ConsumerProtocolType = "consumer"
	RangeAssignor        = "range"
)

// consumerProtocolVersion is the version of the subscriptions and assignments the consumer
// writes: the highest Kafka defines (an assignment's versions all have the same fields).
const consumerProtocolVersion int16 = 3

// errConsumerProtocol wraps a subscription or assignment that does not decode.
var errConsumerProtocol = errors.New("client: malformed consumer protocol data")

// subscription is a decoded ConsumerProtocolSubscription.
type subscription struct {
	Topics     []string
	UserData   []byte
	Owned      []TopicPartition // v1+
	Generation int32            // v2+, -1 when unknown
	RackID     *string          // v3+
}

func appendSubscription(dst []byte, s *subscription) []byte {
	dst = proto.AppendInt16(dst, consumerProtocolVersion)
	dst = proto.AppendArrayLen(dst, len(s.Topics))
	for _, t := range s.Topics {
		dst = proto.AppendString(dst, t)
	}
	dst = proto.AppendBytes(dst, s.UserData)
	dst = appendTopicPartitions(dst, s.Owned)
	dst = proto.AppendInt32(dst, s.Generation)
	if s.RackID == nil {
		return proto.AppendInt16(dst, -1)
	}
	return proto.AppendString(dst, *s.RackID)
}

func readSubscription(b []byte) (subscription, error) {
	s := subscription{Generation: -1}
	r := proto.NewReader(b)
	version := r.Int16()
	if r.Err() == nil && version < 0 {
		return s, fmt.Errorf("%w: subscription version %d", errConsumerProtocol, version)
	}
	n := r.ArrayLen(2)
	for i := 0; i < n; i++ {
		s.Topics = append(s.Topics, r.String())
	}
	s.UserData = r.Bytes()
	if version >= 1 {
		s.Owned = readTopicPartitions(&r)
	}
	if version >= 2 {
		s.Generation = r.Int32()
	}
	if version >= 3 {
		if rack, ok := r.NullableString(); ok {
			s.RackID = &rack
		}
	}
	if err := r.Err(); err != nil {
		return subscription{Generation: -1}, fmt.Errorf("%w: subscription: %v", errConsumerProtocol, err)
	}
	return s, nil
}

func appendAssignment(dst []byte, tps []TopicPartition) []byte {
	dst = proto.AppendInt16(dst, consumerProtocolVersion)
	dst = appendTopicPartitions(dst, tps)
	return proto.AppendBytes(dst, nil)
}

// readAssignment decodes a ConsumerProtocolAssignment. Zero bytes are an empty assignment, as
// Kafka's consumer reads them.
func readAssignment(b []byte) ([]TopicPartition, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := proto.NewReader(b)
	version := r.Int16()
	if r.Err() == nil && version < 0 {
		return nil, fmt.Errorf("%w: assignment version %d", errConsumerProtocol, version)
	}
	tps := readTopicPartitions(&r)
	_ = r.Bytes() // user data: the range assignor has none
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: assignment: %v", errConsumerProtocol, err)
	}
	return tps, nil
}

// appendTopicPartitions writes tps grouped by topic, topics in first-seen order.
func appendTopicPartitions(dst []byte, tps []TopicPartition) []byte {
	var topics []string
	byTopic := map[string][]int32{}
	for _, tp := range tps {
		if _, ok := byTopic[tp.Topic]; !ok {
			topics = append(topics, tp.Topic)
		}
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	dst = proto.AppendArrayLen(dst, len(topics))
	for _, t := range topics {
		dst = proto.AppendString(dst, t)
		ps := byTopic[t]
		dst = proto.AppendArrayLen(dst, len(ps))
		for _, p := range ps {
			dst = proto.AppendInt32(dst, p)
		}
	}
	return dst
}

func readTopicPartitions(r *proto.Reader) []TopicPartition {
	var out []TopicPartition
	n := r.ArrayLen(2 + 4)
	for i := 0; i < n; i++ {
		topic := r.String()
		m := r.ArrayLen(4)
		for j := 0; j < m; j++ {
			out = append(out, TopicPartition{Topic: topic, Partition: r.Int32()})
		}
	}
	return out
}

// rangeMember is one member as the range assignor sees it.
type rangeMember struct {
	MemberID   string
	InstanceID *string
	Topics     []string
}

// rangeAssign is Kafka's RangeAssignor: for each topic, the members subscribed to it in order
// (static members by instance id first, then the others by member id) take consecutive ranges of
// its partitions, the first partitions%members of them one partition more. partitions gives each
// topic's partition count (a topic missing from it has none). Every member gets an entry, empty
// when it is assigned nothing.
func rangeAssign(members []rangeMember, partitions map[string]int32) map[string][]TopicPartition {
	out := make(map[string][]TopicPartition, len(members))
	byTopic := map[string][]*rangeMember{}
	for i := range members {
		m := &members[i]
		out[m.MemberID] = nil
		seen := map[string]bool{}
		for _, t := range m.Topics {
			if !seen[t] {
				seen[t] = true
				byTopic[t] = append(byTopic[t], m)
			}
		}
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		ms := byTopic[t]
		sort.Slice(ms, func(i, j int) bool { return memberLess(ms[i], ms[j]) })
		n := int(partitions[t])
		per, extra := n/len(ms), n%len(ms)
		for i, m := range ms {
			start := per*i + min(i, extra)
			length := per
			if i < extra {
				length++
			}
			for p := start; p < start+length; p++ {
				out[m.MemberID] = append(out[m.MemberID], TopicPartition{Topic: t, Partition: int32(p)})
			}
		}
	}
	return out
}

// memberLess is the order of Kafka's MemberInfo: static members (by instance id) before dynamic
// ones (by member id).
func memberLess(a, b *rangeMember) bool {
	switch {
	case a.InstanceID != nil && b.InstanceID != nil:
		if *a.InstanceID != *b.InstanceID {
			return *a.InstanceID < *b.InstanceID
		}
		return a.MemberID < b.MemberID
	case a.InstanceID != nil:
		return true
	case b.InstanceID != nil:
		return false
	}
	return a.MemberID < b.MemberID
}
