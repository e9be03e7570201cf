package murmur2

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestHashKafkaVectors uses the expected values of Apache Kafka's UtilsTest.testMurmur2.
func TestHashKafkaVectors(t *testing.T) {
	cases := []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
		// Keys of 1 to 5 bytes, so every tail length is covered (values from Kafka's murmur2 as
		// checked in by Akka's Murmur2Spec, which tests against it).
		{"1", -1993445489},
		{"12", 126087238},
		{"123", -267702483},
		{"1234", -1614185708},
		{"12345", -1188365604},
	}
	for _, c := range cases {
		if got := Hash([]byte(c.key)); got != c.want {
			t.Errorf("Hash(%q) = %d, want %d", c.key, got, c.want)
		}
	}
}

// kgoPartition asks franz-go's default key partitioner, which implements Kafka's murmur2 placement.
func kgoPartition(tp kgo.TopicPartitioner, key []byte, n int) int32 {
	return int32(tp.Partition(&kgo.Record{Key: key}, n))
}

// TestPartitionMatchesFranzGo compares Partition with kgo.StickyKeyPartitioner(nil) on random keys
// of every length up to 300 bytes and many partition counts.
func TestPartitionMatchesFranzGo(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(7, 8))
	counts := []int{1, 2, 3, 6, 7, 12, 16, 100, 1000, 1 << 20, 1<<31 - 1}
	for length := 0; length <= 300; length++ {
		for range 20 {
			key := make([]byte, length)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			for _, n := range counts {
				if got, want := Partition(key, int32(n)), kgoPartition(tp, key, n); got != want {
					t.Fatalf("Partition(%x, %d) = %d, franz-go says %d", key, n, got, want)
				}
			}
			// With 2^31-1 partitions the partition is almost the whole masked hash, so this also
			// checks Hash itself (all but the hash value 2^31-1, which maps to 0).
			if masked := Hash(key) & 0x7fffffff; masked != 1<<31-1 && masked != kgoPartition(tp, key, 1<<31-1) {
				t.Fatalf("Hash(%x) masked %d disagrees with franz-go", key, masked)
			}
		}
	}
}

func TestPartitionEdges(t *testing.T) {
	f := func(key []byte, n, want int32) {
		t.Helper()
		if got := Partition(key, n); got != want {
			t.Fatalf("Partition(%q, %d) = %d, want %d", key, n, got, want)
		}
	}
	f([]byte("foobar"), 0, -1)
	f([]byte("foobar"), -3, -1)
	f([]byte("foobar"), 1, 0)
	// -790332482 & 0x7fffffff = 1357151166.
	f([]byte("foobar"), 1000, 1357151166%1000)
	if Hash(nil) != Hash([]byte{}) {
		t.Fatal("nil and empty keys must hash alike")
	}
	for _, n := range []int32{1, 2, 5, 1 << 30} {
		for _, k := range []string{"", "a", "ab", "abc", "abcd", "abcde"} {
			if p := Partition([]byte(k), n); p < 0 || p >= n {
				t.Fatalf("Partition(%q, %d) = %d out of range", k, n, p)
			}
		}
	}
}

func TestHashAllocs(t *testing.T) {
	key := []byte("some-key-of-moderate-length")
	if n := testing.AllocsPerRun(100, func() { _ = Partition(key, 12) }); n != 0 {
		t.Fatalf("Partition allocates %v times", n)
	}
}
