package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// reference returns the value of rank ceil(q*n) (at least 1) in sorted, the definition
// Histogram.Quantile follows.
func reference(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestHistogramQuantilesMatchSortedReference(t *testing.T) {
	f := func(name string, values []int64) {
		t.Helper()
		var h Histogram
		for _, v := range values {
			h.Record(v)
		}
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
			want := reference(sorted, q)
			got := h.Quantile(q)
			// The reported value is the top of want's bucket: never below it, and at most one
			// bucket width (want/128) above it.
			if got < want || got-want > want>>subBucketBits {
				t.Errorf("%s: q=%v got %d, want %d (+%d at most)", name, q, got, want, want>>subBucketBits)
			}
		}
		if h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] {
			t.Errorf("%s: min/max %d/%d, want %d/%d", name, h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
		}
		if h.Count() != uint64(len(values)) {
			t.Errorf("%s: count %d, want %d", name, h.Count(), len(values))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, fn func() int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = fn()
		}
		return out
	}
	f("single", []int64{42})
	f("small exact", []int64{0, 1, 2, 3, 255, 256, 257})
	f("uniform 0-1e9", gen(100_000, func() int64 { return rng.Int64N(1e9) }))
	f("exponential ms", gen(100_000, func() int64 { return int64(rng.ExpFloat64() * 2e6) }))
	f("lognormal wide", gen(100_000, func() int64 { return int64(math.Exp(rng.NormFloat64()*3 + 12)) }))
	f("bimodal with outliers", gen(50_000, func() int64 {
		switch r := rng.IntN(1000); {
		case r == 0:
			return 5e9 + rng.Int64N(1e9)
		case r < 500:
			return 100_000 + rng.Int64N(1000)
		default:
			return 3_000_000 + rng.Int64N(100_000)
		}
	}))
	f("huge", []int64{math.MaxInt64, math.MaxInt64 - 1, 1 << 62, 1})
}

func TestBucketIndexBoundsRoundTrip(t *testing.T) {
	prevHi := int64(-1)
	for i := range bucketCount {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketIndex(lo) != i || bucketIndex(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps to %d/%d", i, lo, hi, bucketIndex(lo), bucketIndex(hi))
		}
		prevHi = hi
		if hi == math.MaxInt64 {
			if i != bucketCount-1 {
				t.Fatalf("int64 range ends at bucket %d of %d", i, bucketCount)
			}
			break
		}
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, all Histogram
	if a.Quantile(0.5) != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram should report 0")
	}
	for i := int64(1); i <= 1000; i++ {
		all.Record(i * 1000)
		if i%2 == 0 {
			a.Record(i * 1000)
		} else {
			b.Record(i * 1000)
		}
	}
	a.Merge(&b)
	if a.counts != all.counts || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatal("merged histogram differs from one fed every value")
	}
	a.Record(-5)
	if a.Min() != 0 {
		t.Fatalf("negative value should count as 0, min=%d", a.Min())
	}
}
