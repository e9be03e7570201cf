//go:build !race

package core

import (
	"bytes"
	"testing"
)

// TestFrameFastPathAllocations: a frame arriving whole is allocated once from the pools, charged and
// released without allocating.
func TestFrameFastPathAllocations(t *testing.T) {
	b := NewBudget(1 << 20)
	body := bytes.Repeat([]byte{1}, 4096)
	var a Assembly
	one := func() {
		a.Start(len(body), 1)
		room := a.Room(len(body), b)
		copy(room, body)
		if !a.Filled(len(room)) {
			panic("incomplete")
		}
		f, _ := a.Take()
		f.Release()
	}
	for i := 0; i < 100; i++ {
		one()
	}
	if b.Used() != 0 {
		t.Fatalf("used %d", b.Used())
	}
	if allocs := testing.AllocsPerRun(1000, one); allocs > 0 {
		t.Errorf("a whole frame allocates %.1f times, want 0", allocs)
	}
}
