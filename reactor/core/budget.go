package core

import "sync/atomic"

// DefaultMaxInflightBytes is the broker-wide budget for bytes in flight when none is configured:
// eight maximum-size (64 MiB) frames, or five hundred 1 MiB Kafka batches. With Go's collector
// letting the heap grow to twice its live size, it keeps the network's share of a 2-core
// broker's memory near 1 GiB at worst.
const DefaultMaxInflightBytes = 512 << 20

// Budget is the broker-wide count of bytes in flight: request frames being read or waiting to be
// served, fetch responses being built, and responses not yet written to their sockets. It is a
// single atomic counter, safe from any goroutine and free of allocations; every connection draws
// from the same one, each at most its share (Limits.MaxInFlightBytes).
//
// Memory the broker is about to allocate asks first (TryAcquire, AcquireUpTo) and waits or gets
// less when the budget is short; memory that already exists (a response the kernel did not take
// yet) is counted with Force, which may overshoot the limit so the count stays true. A nil
// *Budget is unlimited and counts nothing.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes (at least 1).
func NewBudget(limit int) *Budget {
	return &Budget{limit: max(int64(limit), 1)}
}

// TryAcquire takes n bytes if they all fit, and reports whether it did.
func (b *Budget) TryAcquire(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if used+int64(n) > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// AcquireUpTo takes as much of n bytes as is left, and returns how many it took (0 when the
// budget is spent).
func (b *Budget) AcquireUpTo(n int) int {
	if b == nil || n <= 0 {
		return max(n, 0)
	}
	for {
		used := b.used.Load()
		grant := min(int64(n), b.limit-used)
		if grant <= 0 {
			return 0
		}
		if b.used.CompareAndSwap(used, used+grant) {
			return int(grant)
		}
	}
}

// AcquireUpToBelow is AcquireUpTo that leaves the last limit−ceiling bytes untouched: fetch
// responses draw on the budget only up to a ceiling, so clients that do not read what they
// fetched cannot take the memory request frames need.
func (b *Budget) AcquireUpToBelow(n int, ceiling int64) int {
	if b == nil || n <= 0 {
		return max(n, 0)
	}
	ceiling = min(ceiling, b.limit)
	for {
		used := b.used.Load()
		grant := min(int64(n), ceiling-used)
		if grant <= 0 {
			return 0
		}
		if b.used.CompareAndSwap(used, used+grant) {
			return int(grant)
		}
	}
}

// ResponseCeiling is how far fetch responses may fill the budget: three quarters of it.
func (b *Budget) ResponseCeiling() int64 {
	if b == nil {
		return 0
	}
	return b.limit - b.limit/4
}

// Pressed reports whether half the budget or more is in use: connections stuck on responses
// their clients do not read are then cut off.
func (b *Budget) Pressed() bool {
	return b != nil && b.used.Load() >= b.limit/2
}

// Force counts n bytes that are already allocated, even past the limit.
func (b *Budget) Force(n int) {
	if b != nil && n > 0 {
		b.used.Add(int64(n))
	}
}

// Release returns n bytes taken earlier.
func (b *Budget) Release(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// Used is the bytes counted now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit is the budget's size; 0 for a nil (unlimited) budget.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
