package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/thorstream/thorstream/codec/proto"
)

// Kafka's consumer protocol, as far as `group describe` reads it: what a member of a group of
// protocol type "consumer" was assigned. The broker keeps these bytes opaque; Kafka consumers and
// the Go client write them.
//
//	ConsumerProtocolAssignment: version int16 | partitions [ topic string | partitions [ int32 ] ] |
//	                            userData bytes | … (later versions append fields)

// errAssignment is wrapped by every assignment decoding error.
var errAssignment = errors.New("thorctl: not a consumer protocol assignment")

// assignedTopic is one topic of a member's assignment, partitions sorted.
type assignedTopic struct {
	Topic      string
	Partitions []int32
}

// decodeAssignment reads a ConsumerProtocolAssignment of any version: the fields of version 0,
// which every later version starts with; what follows them is ignored. Empty bytes are no
// assignment (a member that has not been assigned yet). Topics come sorted by name.
func decodeAssignment(b []byte) ([]assignedTopic, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := proto.NewReader(b)
	version := r.Int16()
	if r.Err() == nil && version < 0 {
		return nil, fmt.Errorf("%w: version %d", errAssignment, version)
	}
	n := r.ArrayLen(2 + 4)
	var out []assignedTopic
	for range max(n, 0) {
		t := assignedTopic{Topic: r.String()}
		np := r.ArrayLen(4)
		for range max(np, 0) {
			t.Partitions = append(t.Partitions, r.Int32())
		}
		if r.Err() != nil {
			break
		}
		sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i] < t.Partitions[j] })
		out = append(out, t)
	}
	// userData (version 0 on) is not needed; a field cut short before it is an error.
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errAssignment, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// formatAssignment is "orders(0,1,2) audit(0)", as Kafka's tool writes assignments; "-" for none.
func formatAssignment(ts []assignedTopic) string {
	var parts []string
	for _, t := range ts {
		ids := make([]string, len(t.Partitions))
		for i, p := range t.Partitions {
			ids[i] = fmt.Sprint(p)
		}
		parts = append(parts, t.Topic+"("+strings.Join(ids, ",")+")")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
