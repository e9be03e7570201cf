//go:build !race

package proto

import "testing"

// The hot paths allocate nothing in steady state: a broker decodes Produce and Fetch requests
// into a per-connection value it reuses, and encodes Produce responses into a reused buffer.
// (The race detector allocates, hence the build tag.)

func TestDecodeProduceRequestNoAllocs(t *testing.T) {
	body := apis[KeyProduce].request.AppendTo(nil)
	var req ProduceRequest
	allocs := testing.AllocsPerRun(100, func() {
		if err := req.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ProduceRequest.ReadFrom: %v allocations per run, want 0", allocs)
	}
}

func TestDecodeFetchRequestNoAllocs(t *testing.T) {
	body := apis[KeyFetch].request.AppendTo(nil)
	var req FetchRequest
	allocs := testing.AllocsPerRun(100, func() {
		if err := req.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("FetchRequest.ReadFrom: %v allocations per run, want 0", allocs)
	}
}

func TestParseRequestFrameNoAllocs(t *testing.T) {
	frame := goldenFrames()[0].frame
	allocs := testing.AllocsPerRun(100, func() {
		size, ok, err := FrameSize(frame, DefaultMaxFrame)
		if err != nil || !ok {
			t.Fatal(err)
		}
		if _, _, err := ParseRequestHeader(frame[SizeLen : SizeLen+size]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("FrameSize+ParseRequestHeader: %v allocations per run, want 0", allocs)
	}
}

func TestEncodeProduceResponseNoAllocs(t *testing.T) {
	resp := apis[KeyProduce].response.(*ProduceResponse)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		out, start := AppendResponseFrame(buf[:0], 1, 0, "")
		out = resp.AppendTo(out)
		FinishFrame(out, start, 0)
		buf = out
	})
	if allocs != 0 {
		t.Fatalf("ProduceResponse.AppendTo: %v allocations per run, want 0", allocs)
	}
}

func TestEncodeFetchResponseHeadNoAllocs(t *testing.T) {
	resp := apis[KeyFetch].response.(*FetchResponse)
	name := []byte(resp.Topics[0].Name)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		out, start := AppendResponseFrame(buf[:0], 1, 0, "")
		out = AppendFetchResponseStart(out, 0, 1)
		out = AppendFetchTopicStart(out, name, len(resp.Topics[0].Partitions))
		extra := 0
		for i := range resp.Topics[0].Partitions {
			p := &resp.Topics[0].Partitions[i]
			out = AppendFetchPartitionHead(out, p, len(p.Records))
			extra += len(p.Records)
		}
		FinishFrame(out, start, extra)
		buf = out
	})
	if allocs != 0 {
		t.Fatalf("Fetch response head: %v allocations per run, want 0", allocs)
	}
}
