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

// FuzzSalvage: whatever a file of cut-off bytes holds, Salvage reports only whole valid batches,
// at increasing, non-overlapping positions, and never fails on the content.
func FuzzSalvage(f *testing.F) {
	var b batch.Builder
	b.Reset()
	b.Append([]byte("k"), []byte("v"), 1_700_000_000_000, nil)
	one := append([]byte(nil), b.Finish()...)
	f.Add(one)
	f.Add(append(append([]byte{1, 2, 3}, one...), one[:20]...))
	f.Add(append(append(append([]byte(nil), one[5:]...), make([]byte, 100)...), one...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("/p", 0o755); err != nil {
			t.Fatal(err)
		}
		path := "/p/00000000000000000000.log.dropped-1"
		writeFile(t, fs, path, data)
		end := int64(0)
		err := Salvage(fs, path, func(pos int64, h batch.Header, err error) error {
			if pos < end {
				t.Fatalf("position %d before the end %d of what was reported", pos, end)
			}
			if err != nil {
				end = pos + 1
				return nil
			}
			if _, verr := batch.Validate(data[pos : pos+int64(h.Size())]); verr != nil {
				t.Fatalf("reported batch at %d does not validate: %v", pos, verr)
			}
			end = pos + int64(h.Size())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
