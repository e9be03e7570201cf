package core

import (
	"sync"
	"testing"
)

func TestBudgetAcquireRelease(t *testing.T) {
	b := NewBudget(100)
	if !b.TryAcquire(60) || b.Used() != 60 {
		t.Fatalf("TryAcquire(60): used %d", b.Used())
	}
	if b.TryAcquire(41) {
		t.Fatal("TryAcquire(41) with 40 left succeeded")
	}
	if !b.TryAcquire(40) || b.Used() != 100 {
		t.Fatalf("TryAcquire(40) with 40 left: used %d", b.Used())
	}
	if got := b.AcquireUpTo(10); got != 0 {
		t.Fatalf("AcquireUpTo on a spent budget = %d", got)
	}
	b.Release(30)
	if got := b.AcquireUpTo(50); got != 30 || b.Used() != 100 {
		t.Fatalf("AcquireUpTo(50) with 30 left = %d, used %d", got, b.Used())
	}
	b.Force(25) // memory that exists already is counted past the limit
	if b.Used() != 125 || b.TryAcquire(1) {
		t.Fatalf("after Force: used %d", b.Used())
	}
	b.Release(125)
	if b.Used() != 0 || b.Limit() != 100 {
		t.Fatalf("used %d, limit %d", b.Used(), b.Limit())
	}
	// Zero and negative amounts take and give nothing.
	if !b.TryAcquire(0) || b.AcquireUpTo(-5) != 0 || b.Used() != 0 {
		t.Fatalf("zero amounts: used %d", b.Used())
	}
	b.Release(-3)
	b.Force(-3)
	if b.Used() != 0 {
		t.Fatalf("negative amounts changed the count: %d", b.Used())
	}
}

func TestNilBudgetIsUnlimited(t *testing.T) {
	var b *Budget
	if !b.TryAcquire(1<<40) || b.AcquireUpTo(1<<30) != 1<<30 || b.Used() != 0 || b.Limit() != 0 {
		t.Fatal("a nil budget limits or counts")
	}
	b.Force(1)
	b.Release(1)
}

// TestBudgetConcurrent hammers one budget from many goroutines: the count never passes the
// limit through TryAcquire or AcquireUpTo, and ends at zero.
func TestBudgetConcurrent(t *testing.T) {
	const limit = 1000
	b := NewBudget(limit)
	var wg sync.WaitGroup
	var over sync.Once
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				n := 1 + (i+g)%97
				if g%2 == 0 {
					if !b.TryAcquire(n) {
						continue
					}
				} else if n = b.AcquireUpTo(n); n == 0 {
					continue
				}
				if b.Used() > limit {
					over.Do(func() { t.Errorf("used %d past the limit %d", b.Used(), limit) })
				}
				b.Release(n)
			}
		}(g)
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Fatalf("used %d after every release", b.Used())
	}
}
