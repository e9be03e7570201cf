package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records non-negative int64 values (nanoseconds here) in log-linear buckets, the
// layout HdrHistogram uses: values below 2*subBuckets are counted exactly, and each power of two
// above is split into subBuckets equal buckets, so any reported value is within 1/subBuckets
// (0.8 %) of the recorded one. Memory is fixed (bucketCount counters, 59 KiB) whatever the
// range or the number of values.
//
//	index:   0 .. 255          256 .. 383          384 .. 511        ...
//	values:  0 .. 255 (exact)  256 .. 511 step 2   512 .. 1023 step 4 ...
//
// A Histogram is not safe for concurrent use; Recorder wraps one with a lock.
type Histogram struct {
	counts   [bucketCount]uint64
	total    uint64
	min, max int64
	sum      float64
}

const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // buckets per power of two above the exact range
	// bucketCount covers every int64: the largest shift is 63-subBucketBits.
	bucketCount = (64 - subBucketBits) * subBuckets
)

// bucketIndex returns the bucket of v (v >= 0).
func bucketIndex(v int64) int {
	u := uint64(v)
	if u < 2*subBuckets {
		return int(u)
	}
	shift := bits.Len64(u) - subBucketBits - 1 // u>>shift is in [subBuckets, 2*subBuckets)
	return (shift+1)*subBuckets + int(u>>shift) - subBuckets
}

// bucketBounds returns the smallest and largest value that fall in bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < 2*subBuckets {
		return int64(i), int64(i)
	}
	shift := uint(i/subBuckets - 1)
	mantissa := uint64(i%subBuckets + subBuckets)
	lo64 := mantissa << shift
	hi64 := lo64 + (1 << shift) - 1
	if hi64 > math.MaxInt64 {
		hi64 = math.MaxInt64
	}
	return int64(lo64), int64(hi64)
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketIndex(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min and Max return the exact extremes (0 when empty).
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the exact mean (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 <= q <= 1): the value of rank ceil(q*count) in
// sorted order (at least rank 1), reported as the highest value of its bucket, clamped to the
// recorded min and max. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			_, hi := bucketBounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Latency summarises a histogram of nanosecond values in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summary returns h's count, mean, p50, p90, p99, p99.9 and max in milliseconds.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count:  h.total,
		MeanMs: h.Mean() / float64(time.Millisecond),
		P50Ms:  nsToMs(h.Quantile(0.50)),
		P90Ms:  nsToMs(h.Quantile(0.90)),
		P99Ms:  nsToMs(h.Quantile(0.99)),
		P999Ms: nsToMs(h.Quantile(0.999)),
		MaxMs:  nsToMs(h.max),
	}
}
