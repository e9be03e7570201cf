package segment

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// FuzzRecover treats arbitrary bytes as a .log file: Recover must not panic and must keep exactly
// the longest prefix of valid, contiguous batches.
func FuzzRecover(f *testing.F) {
	for _, seed := range recoverSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll("/p", 0o755)
		writeFile(t, fs, FileName("/p", 0, LogSuffix), data)
		s, rep, err := Recover(fs, "/p", 0, Options{IndexIntervalBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wantSize, wantNext := validPrefix(data, 0)
		if s.Size() != int64(wantSize) || s.NextOffset() != wantNext || rep.BytesDropped != int64(len(data)-wantSize) {
			t.Fatalf("size %d next %d dropped %d; want %d %d", s.Size(), s.NextOffset(), rep.BytesDropped, wantSize, wantNext)
		}
		if got := readFile(t, fs, FileName("/p", 0, LogSuffix)); !bytes.Equal(got, data[:wantSize]) {
			t.Fatal("file does not hold the valid prefix")
		}
		if wantSize > 0 {
			out, err := s.Read(nil, 0, wantSize, 1<<62, false)
			if err != nil || !bytes.Equal(out, data[:wantSize]) {
				t.Fatalf("read back: %d bytes, %v", len(out), err)
			}
		}
		// A second recovery finds nothing to do.
		s.Close()
		s2, rep2, err := Recover(fs, "/p", 0, Options{IndexIntervalBytes: 64})
		if err != nil || rep2.BytesDropped != 0 || rep2.IndexRebuilt || rep2.TimeIndexRebuilt {
			t.Fatalf("second recovery: %+v %v", rep2, err)
		}
		s2.Close()
	})
}

// FuzzIndexLoad opens a valid segment with arbitrary .index and .timeindex contents: Open must
// not panic, decoded entries must be consistent, and offset lookups must stay correct.
func FuzzIndexLoad(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0xd4}, []byte{0, 0, 0, 0, 0, 0, 7, 0xd0, 0, 0, 0, 2})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, index, timeIndex []byte) {
		if entries, err := DecodeIndex(index, 1<<20); err == nil && len(entries) != len(index)/IndexEntrySize {
			t.Fatal("DecodeIndex lost entries without an error")
		}
		if _, err := DecodeTimeIndex(timeIndex, 1<<40); err == nil && len(timeIndex)%TimeIndexEntrySize != 0 {
			t.Fatal("DecodeTimeIndex accepted a torn entry")
		}
		fs := vfs.NewMem()
		s, batches := buildSegment(t, fs, "/p", 0, 150, goldenSpecs)
		s.Close()
		writeFile(t, fs, FileName("/p", 0, IndexSuffix), index)
		writeFile(t, fs, FileName("/p", 0, TimeIndexSuffix), timeIndex)
		o, _, err := Open(fs, "/p", 0, Options{IndexIntervalBytes: 150})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		pos := int64(0)
		for _, b := range batches {
			h, _ := batch.ParseHeader(b)
			for off := h.BaseOffset; off <= h.LastOffset(); off++ {
				if p, base, err := o.Find(off); err != nil || p != pos || base != h.BaseOffset {
					t.Fatalf("Find(%d) = %d %d %v; want %d", off, p, base, err, pos)
				}
			}
			pos += int64(len(b))
		}
	})
}

// recoverSeeds are the checked-in corpus of FuzzRecover (testdata/fuzz/FuzzRecover).
func recoverSeeds() [][]byte {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	b0, b1, b2 := makeBatch(0, 2, 100, 10), makeBatch(2, 1, 200, 30), makeBatch(3, 3, 150, 5)
	corrupt := cat(b0, b1, b2)
	corrupt[len(b0)+40] ^= 1
	gap := cat(b0, makeBatch(5, 1, 1, 1))
	return [][]byte{
		{},
		cat(b0, b1, b2),
		cat(b0, b1, b2[:len(b2)-1]),
		cat(b0, b1[:30]),
		corrupt,
		gap,
		cat(b0, make([]byte, 100)),
	}
}

// TestWriteFuzzSeeds regenerates the checked-in seed corpus with -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	os.MkdirAll(dir, 0o755)
	for i, seed := range recoverSeeds() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzIndexLoad")
	os.MkdirAll(dir, 0o755)
	seeds := [][2][]byte{
		{{0, 0, 0, 3, 0, 0, 0, 0xd4, 0, 0, 0, 6, 0, 0, 1, 0x6b}, {0, 0, 0, 0, 0, 0, 7, 0xd0, 0, 0, 0, 2}},
		{{0, 0, 0, 2, 0, 0, 0, 0x65}, {}},
		{{0, 0, 0, 3, 0, 0, 0, 0xd5}, {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9}},
		{{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, {1}},
	}
	for i, s := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s[0], s[1])
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
