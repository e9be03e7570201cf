package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadSubscription is returned for consumer protocol metadata that is not a
// ConsumerProtocolSubscription.
var ErrBadSubscription = errors.New("groups: bad consumer subscription")

// subscribedTopics reads the topics of a consumer protocol subscription (Kafka's
// ConsumerProtocolSubscription, any version: every version starts with the same two fields):
//
//	version int16 (>= 0) | topics [string] | user data, owned partitions, generation, rack ...
//
// Strings are int16-length-prefixed, the array has an int32 count. What follows the topics is
// not read, so later versions decode as well.
func subscribedTopics(metadata []byte) ([]string, error) {
	if len(metadata) < 6 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSubscription, len(metadata))
	}
	if version := int16(binary.BigEndian.Uint16(metadata)); version < 0 {
		return nil, fmt.Errorf("%w: version %d", ErrBadSubscription, version)
	}
	n := int32(binary.BigEndian.Uint32(metadata[2:]))
	p := metadata[6:]
	// Each topic takes at least its 2-byte length: a count beyond that is a lie, refused before
	// anything is allocated.
	if n < 0 || int(n) > len(p)/2 {
		return nil, fmt.Errorf("%w: %d topics in %d bytes", ErrBadSubscription, n, len(p))
	}
	topics := make([]string, 0, n)
	for range n {
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: truncated", ErrBadSubscription)
		}
		l := int(int16(binary.BigEndian.Uint16(p)))
		if l < 0 || len(p)-2 < l {
			return nil, fmt.Errorf("%w: topic of %d bytes", ErrBadSubscription, l)
		}
		topics = append(topics, string(p[2:2+l]))
		p = p[2+l:]
	}
	return topics, nil
}
