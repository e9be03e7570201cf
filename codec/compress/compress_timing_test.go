package compress

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
)

// benchPayload is a 64 KiB records section of 100-byte records, about as compressible as JSON.
func benchPayload(b *testing.B) []byte {
	return testBatch(b, 450)[batch.HeaderSize:]
}

func BenchmarkCompress(b *testing.B) {
	src := benchPayload(b)
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]byte, 0, 2*len(src))
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				var err error
				if dst, err = Compress(c.id, dst[:0], src, DefaultLevel); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(dst))/float64(len(src)), "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	src := benchPayload(b)
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			comp, _ := Compress(c.id, nil, src, DefaultLevel)
			dst := make([]byte, 0, 2*len(src))
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				var err error
				if dst, err = Decompress(c.id, dst[:0], comp, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
