//go:build !race

package proto

import "testing"

// A leader decodes every ReplicaFetch and a follower every ReplicaData into a value it keeps per
// peer, so in steady state neither decode allocates. A fresh value costs the partitions slice
// and one string per run of partitions of the same topic; records are never copied.

func TestDecodeReplicaFetchRequestNoAllocs(t *testing.T) {
	fetch, _ := manyReplicaPartitions(300)
	body := (&ReplicaFetchRequest{FetchID: 1, Partitions: fetch}).AppendTo(nil)
	var req ReplicaFetchRequest
	allocs := testing.AllocsPerRun(100, func() {
		if err := req.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReplicaFetchRequest.ReadFrom into a used value: %v allocations per run, want 0", allocs)
	}
}

func TestDecodeReplicaDataResponseAllocs(t *testing.T) {
	_, data := manyReplicaPartitions(300) // 3 topics of 100 partitions
	body := (&ReplicaDataResponse{FetchID: 1, Partitions: data}).AppendTo(nil)
	var resp ReplicaDataResponse
	allocs := testing.AllocsPerRun(100, func() {
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReplicaDataResponse.ReadFrom into a used value: %v allocations per run, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		var fresh ReplicaDataResponse
		if err := fresh.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
	})
	if want := 1.0 + 3; allocs != want {
		t.Fatalf("ReplicaDataResponse.ReadFrom into a fresh value: %v allocations per run, want %v (the partitions and 3 topic names)", allocs, want)
	}
}

func TestEncodeReplicaDataHeadNoAllocs(t *testing.T) {
	resp := sampleReplicaData()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		out := AppendReplicaDataStart(buf[:0], resp.FetchID, resp.ErrorCode, len(resp.Partitions))
		for i := range resp.Partitions {
			p := &resp.Partitions[i]
			out = AppendReplicaDataPartitionHead(out, p, len(p.Records))
			out = append(out, p.Records...)
		}
		buf = out
	})
	if allocs != 0 {
		t.Fatalf("ReplicaData start and heads: %v allocations per run, want 0", allocs)
	}
}
