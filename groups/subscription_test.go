package groups

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSubscribedTopics(t *testing.T) {
	rack := "r1"
	for v := int16(0); v <= 3; v++ {
		m := kmsg.ConsumerMemberMetadata{Version: v, Topics: []string{"orders", "", "payments"}, UserData: []byte("sticky"),
			OwnedPartitions: []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "orders", Partitions: []int32{1, 2}}}, Generation: 7, Rack: &rack}
		b := m.AppendTo(nil)
		got, err := subscribedTopics(b)
		if err != nil || !slices.Equal(got, []string{"orders", "", "payments"}) {
			t.Errorf("v%d: %q %v", v, got, err)
		}
		// Every truncation inside the topics is refused without a panic.
		for n := range 6 + 2 + len("orders") + 2 + 2 + len("payments") {
			if _, err := subscribedTopics(b[:n]); !errors.Is(err, ErrBadSubscription) {
				t.Errorf("v%d truncated to %d: %v", v, n, err)
			}
		}
	}
	for name, b := range map[string][]byte{
		"negative version": {0xff, 0xff, 0, 0, 0, 0},
		"negative count":   {0, 0, 0xff, 0xff, 0xff, 0xff},
		"huge count":       {0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 'a'},
		"negative length":  {0, 0, 0, 0, 0, 1, 0xff, 0xff},
	} {
		if _, err := subscribedTopics(b); !errors.Is(err, ErrBadSubscription) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := subscribedTopics([]byte{0, 5, 0, 0, 0, 0}); err != nil || len(got) != 0 {
		t.Errorf("a future version with no topics: %q %v", got, err)
	}
}

func FuzzSubscribedTopics(f *testing.F) {
	f.Add(subscription(0, "t"))
	f.Add(subscription(3, "a", "b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		topics, err := subscribedTopics(b)
		if err == nil && len(topics) > len(b)/2 {
			t.Fatalf("%d topics from %d bytes", len(topics), len(b))
		}
	})
}
