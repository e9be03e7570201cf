package batch

import (
	"bytes"
	"testing"
)

// batchOfSize builds a batch of 100-byte values that is at least size bytes long.
func batchOfSize(size int) []byte {
	var b Builder
	b.Reset()
	value := bytes.Repeat([]byte("v"), 100)
	for i := 0; b.Size() < size; i++ {
		b.Append([]byte("key"), value, int64(1_700_000_000_000+i), nil)
	}
	return bytes.Clone(b.Finish())
}

func BenchmarkValidate16KiB(b *testing.B) {
	batch := batchOfSize(16 << 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder100B appends 100-byte records; each op is one record, with a new batch every 160
// records (about 16 KiB), Finish included.
func BenchmarkBuilder100B(b *testing.B) {
	var builder Builder
	builder.Reset()
	key, value := []byte("key-0001"), bytes.Repeat([]byte("v"), 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	i := 0
	for b.Loop() {
		builder.Append(key, value, int64(i), nil)
		if i++; i%160 == 0 {
			_ = builder.Finish()
			builder.Reset()
		}
	}
}

func BenchmarkRecords16KiB(b *testing.B) {
	batch := batchOfSize(16 << 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if err := Records(batch, func(*Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
