package segment

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestSalvageFindsBatchesAfterDamage: garbage before, between and after batches (one over
// 1 MiB, so that it crosses the resync window) is reported, and every whole batch is found.
func TestSalvageFindsBatchesAfterDamage(t *testing.T) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/p", 0o755); err != nil {
		t.Fatal(err)
	}
	a := batchOfSize(t, 10, 300)
	b := batchOfSize(t, 11, 1<<20+500)
	c := batchOfSize(t, 12, walkerBufferBytes+1)
	junk := func(n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(i*31 + 7)
		}
		return out
	}
	var data []byte
	data = append(data, a[40:]...) // a torn batch: its head is missing
	data = append(data, a...)
	data = append(data, junk(1000)...)
	data = append(data, b...)
	data = append(data, c...)
	data = append(data, c[:100]...) // torn tail
	path := "/p/00000000000000000010.log.dropped-1700000000000"
	writeFile(t, fs, path, data)
	var found []int64
	bad := 0
	err := Salvage(fs, path, func(pos int64, h batch.Header, err error) error {
		if err != nil {
			bad++
			return nil
		}
		found = append(found, h.BaseOffset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 || found[0] != 10 || found[1] != 11 || found[2] != 12 || bad != 3 {
		t.Fatalf("found %v with %d bad stretches, want [10 11 12] and 3", found, bad)
	}
	if ms, ok := IsDroppedFile("00000000000000000010.log.dropped-1700000000000"); !ok || ms != 1700000000000 {
		t.Fatalf("IsDroppedFile: %d %v", ms, ok)
	}
	if _, ok := IsDroppedFile("00000000000000000010.log"); ok {
		t.Fatal("a segment is not a dropped file")
	}
}
