package client

import (
	"context"
	"testing"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
)

// BenchmarkProduce measures asynchronous production of 100-byte records into one broker over
// loopback (the fake broker validates each batch's CRC and discards it).
func BenchmarkProduce(b *testing.B) {
	for _, bc := range []struct {
		name string
		acks int16
		keys bool
	}{
		{"acks=all", AcksAll, false},
		{"acks=1/keyed", AcksLeader, true},
		{"acks=0", AcksNone, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fc := newCluster(b, fakebroker.Options{DiscardRecords: true})
			mustCreate(b, fc, "bench", 4)
			c := newClient(b, fc)
			p := NewProducer(c, ProducerOptions{Acks: bc.acks})
			defer p.Close()
			ctx := context.Background()
			value := make([]byte, 100)
			keys := [][]byte{[]byte("alpha"), []byte("beta"), []byte("gamma"), []byte("delta")}
			failed := 0
			done := func(_ *Record, err error) {
				if err != nil {
					failed++ // callbacks of one connection run on one goroutine
				}
			}
			if err := p.ProduceSync(ctx, &Record{Topic: "bench", Partition: -1, Value: value}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := &Record{Topic: "bench", Partition: -1, Value: value} // the one allocation allowed
				if bc.keys {
					r.Key = keys[i&3]
				}
				p.Produce(ctx, r, done)
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if failed > 0 {
				b.Fatalf("%d records failed", failed)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
