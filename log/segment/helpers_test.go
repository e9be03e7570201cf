package segment

import (
	"fmt"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// makeBatch builds a batch of records records at base offset base, the i-th record stamped
// ts+i, each value valueSize bytes.
func makeBatch(base int64, records int, ts int64, valueSize int) []byte {
	var b batch.Builder
	b.Reset()
	for i := 0; i < records; i++ {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte(base + int64(i) + int64(j))
		}
		b.Append([]byte(fmt.Sprintf("k%d", base+int64(i))), v, ts+int64(i), nil)
	}
	out := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(out, base)
	return out
}

// batchSpec describes one batch of a test segment.
type batchSpec struct {
	records int
	ts      int64
	size    int
}

// buildSegment creates a segment in fs/dir at base and appends the batches one Append each.
func buildSegment(t testing.TB, fs vfs.FS, dir string, base int64, interval int, specs []batchSpec) (*Segment, [][]byte) {
	t.Helper()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Create(fs, dir, base, Options{IndexIntervalBytes: interval})
	if err != nil {
		t.Fatal(err)
	}
	var all [][]byte
	next := base
	for _, sp := range specs {
		b := makeBatch(next, sp.records, sp.ts, sp.size)
		if err := s.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		all = append(all, b)
		next += int64(sp.records)
	}
	return s, all
}

func readFile(t testing.TB, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, fs vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fs.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// validPrefix is the reference for recovery: the length and next offset of the longest prefix
// of whole, valid, contiguous batches starting at base.
func validPrefix(data []byte, base int64) (int, int64) {
	pos, next := 0, base
	for pos < len(data) {
		n, err := batch.Size(data[pos:])
		if err != nil || n > len(data)-pos || int64(pos+n) > MaxSize {
			break
		}
		h, err := batch.Validate(data[pos : pos+n])
		if err != nil || h.BaseOffset != next || h.LastOffset()-base > MaxRelativeOffset {
			break
		}
		pos += n
		next = h.NextOffset()
	}
	return pos, next
}
