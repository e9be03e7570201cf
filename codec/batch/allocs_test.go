//go:build !race

package batch

import (
	"bytes"
	"testing"
)

// TestHotPathAllocs: the broker's per-batch work must not allocate in steady state.
func TestHotPathAllocs(t *testing.T) {
	b := sampleBatch(t)
	key, value := []byte("key"), bytes.Repeat([]byte("v"), 100)
	headers := []RecordHeader{{Key: "h", Value: []byte("x")}}
	var builder Builder
	cases := []struct {
		name string
		fn   func()
	}{
		{"Validate", func() {
			if _, err := Validate(b); err != nil {
				t.Fatal(err)
			}
		}},
		{"SetBaseOffset", func() { SetBaseOffset(b, 12345) }},
		{"SetPartitionLeaderEpoch", func() { SetPartitionLeaderEpoch(b, 3) }},
		{"SetLogAppendTime", func() { SetLogAppendTime(b, 1_800_000_000_000) }},
		{"ParseHeader", func() { _, _ = ParseHeader(b) }},
		{"Builder Append and Finish", func() {
			builder.Reset()
			for i := range 50 {
				builder.Append(key, value, int64(i), headers)
			}
			_ = builder.Finish()
		}},
	}
	for _, c := range cases {
		c.fn() // warm up: the Builder grows its buffers once
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
}
