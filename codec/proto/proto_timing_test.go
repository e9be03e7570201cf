package proto

import "testing"

// Benchmarks of the hot paths. SetBytes is the encoded body size, so MB/s compares across
// message shapes.

// produceRequestOf builds a Produce request of topics×partitions, each with recordSize bytes.
func produceRequestOf(topics, partitions, recordSize int) *ProduceRequest {
	records := make([]byte, recordSize)
	req := &ProduceRequest{Acks: AcksAll, TimeoutMs: 30000}
	for i := 0; i < topics; i++ {
		t := ProduceTopic{Name: []byte("topic-" + string(rune('a'+i)))}
		for j := 0; j < partitions; j++ {
			t.Partitions = append(t.Partitions, ProducePartition{Partition: int32(j), Records: records})
		}
		req.Topics = append(req.Topics, t)
	}
	return req
}

func fetchRequestOf(topics, partitions int) *FetchRequest {
	req := &FetchRequest{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 50 << 20}
	for i := 0; i < topics; i++ {
		t := FetchTopic{Name: []byte("topic-" + string(rune('a'+i)))}
		for j := 0; j < partitions; j++ {
			t.Partitions = append(t.Partitions, FetchPartition{Partition: int32(j), FetchOffset: int64(j) << 20, PartitionMaxBytes: 1 << 20})
		}
		req.Topics = append(req.Topics, t)
	}
	return req
}

func BenchmarkProduceRequestDecode(b *testing.B) {
	for _, bc := range []struct {
		name                           string
		topics, partitions, recordSize int
	}{
		{"1x1x1KiB", 1, 1, 1 << 10},
		{"4x16x16KiB", 4, 16, 16 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := produceRequestOf(bc.topics, bc.partitions, bc.recordSize).AppendTo(nil)
			var req ProduceRequest
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := req.ReadFrom(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProduceRequestEncode(b *testing.B) {
	req := produceRequestOf(4, 16, 1<<10)
	buf := req.AppendTo(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = req.AppendTo(buf[:0])
	}
}

func BenchmarkFetchRequestDecode(b *testing.B) {
	body := fetchRequestOf(4, 16).AppendTo(nil)
	var req FetchRequest
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := req.ReadFrom(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProduceResponseEncode(b *testing.B) {
	resp := &ProduceResponse{}
	for i := 0; i < 4; i++ {
		t := ProduceTopicResponse{Name: "topic-" + string(rune('a'+i))}
		for j := 0; j < 16; j++ {
			t.Partitions = append(t.Partitions, ProducePartitionResponse{Partition: int32(j), BaseOffset: int64(j) << 20, LogAppendTime: -1, Leader: LeaderHint{ID: 1, Addr: "10.0.0.1:9092"}})
		}
		resp.Topics = append(resp.Topics, t)
	}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	b.SetBytes(int64(len(resp.AppendTo(nil)) + SizeLen + ResponseHeaderLen + 4))
	for b.Loop() {
		out, start := AppendResponseFrame(buf[:0], 1, 0, "")
		out = resp.AppendTo(out)
		FinishFrame(out, start, 0)
		buf = out
	}
}

func BenchmarkFetchResponseDecode(b *testing.B) {
	body := apis[KeyFetch].response.AppendTo(nil)
	var resp FetchResponse
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := resp.ReadFrom(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFrameHeader(b *testing.B) {
	frame := goldenFrames()[0].frame
	b.ReportAllocs()
	b.SetBytes(int64(SizeLen + RequestHeaderLen))
	for b.Loop() {
		size, _, err := FrameSize(frame, DefaultMaxFrame)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ParseRequestHeader(frame[SizeLen : SizeLen+size]); err != nil {
			b.Fatal(err)
		}
	}
}
