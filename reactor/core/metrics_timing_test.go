package core

import (
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/proto"
)

// BenchmarkRequestMetrics is what the request metrics cost a produce on the loop and at its
// completion: the counters' lookup, the request count, two clock readings, the error check and
// the latency histogram. One op is one request.
func BenchmarkRequestMetrics(b *testing.B) {
	p := NewMetrics().Protocol("binary", binaryAPIs())
	results := make([]cluster.AppendResult, 1)
	b.ReportAllocs()
	for range b.N {
		api := p.API(proto.KeyProduce, proto.Version)
		api.Request()
		start := p.Start()
		CountProduce(api, results)
		p.ObserveProduce(start)
	}
}
