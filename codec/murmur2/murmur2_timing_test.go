package murmur2

import (
	"fmt"
	"testing"
)

func BenchmarkHash(b *testing.B) {
	for _, size := range []int{8, 36, 256} {
		key := make([]byte, size)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				_ = Hash(key)
			}
		})
	}
}
