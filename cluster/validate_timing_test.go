package cluster

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// BenchmarkValidate measures the writer's per-batch validation of a 16 KiB batch of 100-byte
// records (each with one header), uncompressed and with each codec, in steady state.
func BenchmarkValidate(b *testing.B) {
	var bl batch.Builder
	bl.Reset()
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte(i % 7)
	}
	headers := []batch.RecordHeader{{Key: "h", Value: []byte("x")}}
	for bl.Size()+batch.EstimateRecordSize(nil, value, headers) <= 16<<10 {
		bl.Append(nil, value, testNow.UnixMilli(), headers)
	}
	plain := append([]byte(nil), bl.Finish()...)
	cfg, err := BuildTopicConfig(nil, DefaultDefaults)
	if err != nil {
		b.Fatal(err)
	}
	l, err := partition.Open(partition.Options{FS: vfs.NewMem(), Dir: "/bench", Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	r := NewReplica(ReplicaOptions{Topic: "t", Log: l, Config: cfg, Now: fixedNow})
	defer r.Close()
	for _, c := range []struct {
		name  string
		codec int
	}{{"none", batch.CodecNone}, {"gzip", batch.CodecGzip}, {"snappy", batch.CodecSnappy}, {"lz4", batch.CodecLZ4}, {"zstd", batch.CodecZstd}} {
		one, err := compress.CompressBatch(nil, plain, c.codec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				// The replica goroutine is idle (nothing submitted): calling validate here
				// uses its scratch as the writer would.
				if verr := r.validate(one, testNow.UnixMilli()); verr != nil {
					b.Fatal(verr)
				}
			}
		})
	}
}
