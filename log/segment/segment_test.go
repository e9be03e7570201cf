package segment

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSpecs: small batches, a 150-byte index interval so the indexes get a few entries, and a
// timestamp that goes down once (the time index must not follow it).
var goldenSpecs = []batchSpec{
	{records: 2, ts: 1000, size: 10},
	{records: 1, ts: 2000, size: 40},
	{records: 3, ts: 1500, size: 20},
	{records: 1, ts: 3000, size: 30},
	{records: 2, ts: 2500, size: 10},
	{records: 1, ts: 4000, size: 60},
}

func TestGoldenSegmentFormat(t *testing.T) {
	fs := vfs.NewMem()
	s, _ := buildSegment(t, fs, "/p", 42, 150, goldenSpecs)
	defer s.Close()
	var got strings.Builder
	for _, suffix := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		name := FileName("/p", 42, suffix)
		got.WriteString("# " + filepath.Base(name) + "\n")
		got.WriteString(hex.Dump(readFile(t, fs, name)))
	}
	golden := filepath.Join("testdata", "golden_segment.hex")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Fatalf("on-disk format changed (run with -update if intended):\n%s", got.String())
	}
	// The documented entries, decoded.
	if got, want := s.IndexEntries(), []IndexEntry{{RelativeOffset: 3, Position: 212}, {RelativeOffset: 6, Position: 363}, {RelativeOffset: 9, Position: 565}}; !equalIndex(got, want) {
		t.Errorf("index = %+v, want %+v", got, want)
	}
}

func equalIndex(a, b []IndexEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFileNames(t *testing.T) {
	if got := filepath.Base(FileName("/d", 0, LogSuffix)); got != "00000000000000000000.log" {
		t.Fatalf("got %q", got)
	}
	for _, tc := range []struct {
		name string
		base int64
		suf  string
		ok   bool
	}{
		{"00000000000000001234.index", 1234, IndexSuffix, true},
		{"00000000000000001234.timeindex", 1234, TimeIndexSuffix, true},
		{"1234.log", 0, "", false},
		{"leader-epoch-checkpoint", 0, "", false},
		{"0000000000000000000x.log", 0, "", false},
	} {
		base, suf, ok := ParseFileName(tc.name)
		if ok != tc.ok || base != tc.base || suf != tc.suf {
			t.Errorf("%s: got %d %q %v", tc.name, base, suf, ok)
		}
	}
}

func TestFindAndRead(t *testing.T) {
	fs := vfs.NewMem()
	var specs []batchSpec
	for i := 0; i < 200; i++ {
		specs = append(specs, batchSpec{records: 1 + i%3, ts: int64(1000 + i*10), size: 50 + i%7*30})
	}
	s, batches := buildSegment(t, fs, "/p", 100, 512, specs)
	defer s.Close()
	if len(s.IndexEntries()) < 10 {
		t.Fatalf("expected a sparse index, got %d entries", len(s.IndexEntries()))
	}
	pos := int64(0)
	for _, b := range batches {
		h, _ := batch.ParseHeader(b)
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			gotPos, gotBase, err := s.Find(off)
			if err != nil || gotPos != pos || gotBase != h.BaseOffset {
				t.Fatalf("Find(%d) = %d, %d, %v; want %d, %d", off, gotPos, gotBase, err, pos, h.BaseOffset)
			}
		}
		// Read one batch exactly.
		out, err := s.Read(nil, h.BaseOffset, len(b), 1<<62, false)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("Read(%d) = %d bytes, %v", h.BaseOffset, len(out), err)
		}
		pos += int64(len(b))
	}
	if _, _, err := s.Find(99); !errors.Is(err, ErrNotInSegment) {
		t.Fatalf("Find below base: %v", err)
	}
	if _, _, err := s.Find(s.NextOffset()); !errors.Is(err, ErrNotInSegment) {
		t.Fatalf("Find at end: %v", err)
	}
}

func TestReadLimits(t *testing.T) {
	fs := vfs.NewMem()
	s, batches := buildSegment(t, fs, "/p", 0, 4096, []batchSpec{
		{records: 2, ts: 1, size: 100}, {records: 2, ts: 2, size: 100}, {records: 2, ts: 3, size: 100},
	})
	defer s.Close()
	n0, n1 := len(batches[0]), len(batches[1])
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name      string
		offset    int64
		maxBytes  int
		maxOffset int64
		minOne    bool
		want      []byte
	}{
		{"all", 0, 1 << 20, 100, false, cat(batches...)},
		{"from middle of batch", 3, 1 << 20, 100, false, cat(batches[1], batches[2])},
		{"maxBytes cuts", 0, n0 + n1 + 10, 100, false, cat(batches[0], batches[1])},
		{"maxOffset cuts", 0, 1 << 20, 4, false, cat(batches[0], batches[1])},
		{"maxOffset inside batch keeps it", 0, 1 << 20, 3, false, cat(batches[0], batches[1])},
		{"too small without minOne", 0, 10, 100, false, nil},
		{"too small with minOne", 2, 10, 100, true, batches[1]},
		{"zero maxBytes with minOne", 4, 0, 100, true, batches[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Read([]byte("prefix"), tc.offset, tc.maxBytes, tc.maxOffset, tc.minOne)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), tc.want...)) {
				t.Fatalf("got %d bytes, want %d", len(got)-6, len(tc.want))
			}
		})
	}
}

func TestFindTimestamp(t *testing.T) {
	fs := vfs.NewMem()
	// Timestamps go up and down; each batch's maxTimestamp is ts+records-1.
	specs := []batchSpec{}
	tss := []int64{100, 300, 200, 500, 400, 400, 900, 700, 1200, 1100}
	for _, ts := range tss {
		for k := 0; k < 5; k++ {
			specs = append(specs, batchSpec{records: 1, ts: ts + int64(k), size: 80})
		}
	}
	s, batches := buildSegment(t, fs, "/p", 10, 300, specs)
	defer s.Close()
	if len(s.TimeIndexEntries()) == 0 {
		t.Fatal("expected time index entries")
	}
	// Reference: linear scan.
	ref := func(ts int64) (int64, int64, bool) {
		for _, b := range batches {
			h, _ := batch.ParseHeader(b)
			if h.MaxTimestamp >= ts {
				return h.BaseOffset, h.MaxTimestamp, true
			}
		}
		return 0, 0, false
	}
	for ts := int64(0); ts < 1300; ts += 7 {
		gb, gm, gf, err := s.FindTimestamp(ts)
		wb, wm, wf := ref(ts)
		if err != nil || gb != wb || gm != wm || gf != wf {
			t.Fatalf("FindTimestamp(%d) = %d %d %v %v; want %d %d %v", ts, gb, gm, gf, err, wb, wm, wf)
		}
	}
	prev := int64(-1)
	for _, e := range s.TimeIndexEntries() {
		if e.Timestamp <= prev {
			t.Fatalf("time index not increasing: %+v", s.TimeIndexEntries())
		}
		prev = e.Timestamp
	}
}

func TestTruncateTo(t *testing.T) {
	fs := vfs.NewMem()
	var specs []batchSpec
	for i := 0; i < 50; i++ {
		specs = append(specs, batchSpec{records: 2, ts: int64(i * 10), size: 100})
	}
	s, batches := buildSegment(t, fs, "/p", 0, 400, specs)
	if err := s.TruncateTo(31); !errors.Is(err, ErrNotBoundary) {
		t.Fatalf("mid-batch truncate: %v", err)
	}
	if err := s.TruncateTo(30); err != nil {
		t.Fatal(err)
	}
	if s.NextOffset() != 30 || s.MaxTimestamp() != 14*10+1 {
		t.Fatalf("after truncate: next %d max ts %d", s.NextOffset(), s.MaxTimestamp())
	}
	var want int64
	for _, b := range batches[:15] {
		want += int64(len(b))
	}
	if s.Size() != want {
		t.Fatalf("size %d want %d", s.Size(), want)
	}
	// Append again, then compare with a segment built straight.
	for i := 15; i < 20; i++ {
		if err := s.Append([][]byte{makeBatch(int64(i*2), 2, int64(i*10), 100)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	straight, _ := buildSegment(t, fs, "/q", 0, 400, specs[:20])
	straight.Close()
	for _, suffix := range []string{LogSuffix, IndexSuffix} {
		if !bytes.Equal(readFile(t, fs, FileName("/p", 0, suffix)), readFile(t, fs, FileName("/q", 0, suffix))) {
			t.Errorf("%s differs after truncate+append", suffix)
		}
	}
	r, rep, err := Recover(fs, "/p", 0, Options{IndexIntervalBytes: 400})
	if err != nil || rep.BytesDropped != 0 || r.NextOffset() != 40 {
		t.Fatalf("recover after truncate: %+v %v", rep, err)
	}
	r.Close()
}

func TestRecoverTornTailEveryByte(t *testing.T) {
	fs := vfs.NewMem()
	specs := []batchSpec{{3, 10, 50}, {2, 20, 70}, {4, 30, 40}}
	s, batches := buildSegment(t, fs, "/src", 5, 64, specs)
	s.Close()
	full := readFile(t, fs, FileName("/src", 5, LogSuffix))
	last := len(batches[2])
	prefix := len(full) - last
	for cut := prefix; cut <= len(full); cut++ {
		dir := "/cut"
		fs.MkdirAll(dir, 0o755)
		writeFile(t, fs, FileName(dir, 5, LogSuffix), full[:cut])
		writeFile(t, fs, FileName(dir, 5, IndexSuffix), readFile(t, fs, FileName("/src", 5, IndexSuffix)))
		r, rep, err := Recover(fs, dir, 5, Options{IndexIntervalBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		wantSize, wantNext := int64(prefix), int64(10)
		if cut == len(full) {
			wantSize, wantNext = int64(len(full)), 14
		}
		if r.Size() != wantSize || r.NextOffset() != wantNext || rep.BytesDropped != int64(cut)-wantSize {
			t.Fatalf("cut %d: size %d next %d dropped %d", cut, r.Size(), r.NextOffset(), rep.BytesDropped)
		}
		if cut > prefix && cut < len(full) && !errors.Is(rep.Reason, ErrTorn) {
			t.Fatalf("cut %d: reason %v", cut, rep.Reason)
		}
		if got := readFile(t, fs, FileName(dir, 5, LogSuffix)); !bytes.Equal(got, full[:wantSize]) {
			t.Fatalf("cut %d: file not truncated to the valid prefix", cut)
		}
		r.Close()
	}
}

func TestRecoverCorruptMiddle(t *testing.T) {
	fs := vfs.NewMem()
	specs := []batchSpec{{1, 1, 50}, {1, 2, 50}, {1, 3, 50}, {1, 4, 50}}
	s, batches := buildSegment(t, fs, "/p", 0, 64, specs)
	s.Close()
	data := readFile(t, fs, FileName("/p", 0, LogSuffix))
	at := len(batches[0]) + len(batches[1]) + 70 // inside batch 2's records
	data[at] ^= 0xff
	writeFile(t, fs, FileName("/p", 0, LogSuffix), data)
	res, err := Verify(fs, FileName("/p", 0, LogSuffix))
	if err != nil || res.BadPosition != int64(len(batches[0])+len(batches[1])) || !errors.Is(res.Reason, ErrCorrupt) || !errors.Is(res.Reason, batch.ErrCRC) {
		t.Fatalf("verify: %+v %v", res, err)
	}
	r, rep, err := Recover(fs, "/p", 0, Options{IndexIntervalBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NextOffset() != 2 || rep.BytesDropped != int64(len(batches[2])+len(batches[3])) || !rep.IndexRebuilt {
		t.Fatalf("next %d report %+v", r.NextOffset(), rep)
	}
}

func TestOpenRebuildsBadIndexes(t *testing.T) {
	var specs []batchSpec
	for i := 0; i < 40; i++ {
		specs = append(specs, batchSpec{records: 1, ts: int64(i), size: 100})
	}
	for _, tc := range []struct {
		name   string
		mangle func(index, timeIndex []byte) ([]byte, []byte)
	}{
		{"missing", func(i, ti []byte) ([]byte, []byte) { return nil, nil }},
		{"short index", func(i, ti []byte) ([]byte, []byte) { return i[:len(i)-IndexEntrySize], ti }},
		{"torn entry", func(i, ti []byte) ([]byte, []byte) { return i[:len(i)-3], ti }},
		{"position past log", func(i, ti []byte) ([]byte, []byte) {
			j := append([]byte(nil), i...)
			j[len(j)-4] = 0x7f
			return j, ti
		}},
		{"not increasing", func(i, ti []byte) ([]byte, []byte) {
			j := append([]byte(nil), i...)
			copy(j[8:16], j[0:8])
			return j, ti
		}},
		{"time index offset past index", func(i, ti []byte) ([]byte, []byte) {
			j := append([]byte(nil), ti...)
			j[len(j)-1] = 0xff
			j[len(j)-2] = 0xff
			return i, j
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s, _ := buildSegment(t, fs, "/p", 7, 300, specs)
			s.Close()
			wantIndex := readFile(t, fs, FileName("/p", 7, IndexSuffix))
			wantTime := readFile(t, fs, FileName("/p", 7, TimeIndexSuffix))
			i, ti := tc.mangle(wantIndex, wantTime)
			writeFile(t, fs, FileName("/p", 7, IndexSuffix), i)
			writeFile(t, fs, FileName("/p", 7, TimeIndexSuffix), ti)
			o, rep, err := Open(fs, "/p", 7, Options{IndexIntervalBytes: 300})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if !rep.IndexRebuilt && !rep.TimeIndexRebuilt {
				t.Fatalf("no rebuild reported: %+v", rep)
			}
			if !bytes.Equal(readFile(t, fs, FileName("/p", 7, IndexSuffix)), wantIndex) ||
				!bytes.Equal(readFile(t, fs, FileName("/p", 7, TimeIndexSuffix)), wantTime) {
				t.Fatal("indexes not rebuilt to the original")
			}
			if o.NextOffset() != 47 || o.MaxTimestamp() != 39 {
				t.Fatalf("next %d max %d", o.NextOffset(), o.MaxTimestamp())
			}
		})
	}
	// An intact segment opens without recovery.
	fs := vfs.NewMem()
	s, _ := buildSegment(t, fs, "/p", 7, 300, specs)
	s.Close()
	o, rep, err := Open(fs, "/p", 7, Options{IndexIntervalBytes: 300})
	if err != nil || rep.IndexRebuilt || rep.TimeIndexRebuilt || o.NextOffset() != 47 || o.MaxTimestamp() != 39 {
		t.Fatalf("clean open: %+v %v", rep, err)
	}
	o.Close()
}

func TestAppendWriteErrorRollsBack(t *testing.T) {
	mem := vfs.NewMem()
	ffs := vfs.NewFaultFS(mem)
	s, _ := buildSegment(t, ffs, "/p", 0, 4096, []batchSpec{{1, 1, 10}})
	defer s.Close()
	size := s.Size()
	ffs.Inject(vfs.Fault{Op: vfs.OpWrite, Err: os.ErrInvalid, PartialBytes: 20, Match: func(p string) bool { return strings.HasSuffix(p, LogSuffix) }})
	if err := s.Append([][]byte{makeBatch(1, 1, 2, 10)}); err == nil {
		t.Fatal("expected error")
	}
	if s.Size() != size || s.NextOffset() != 1 || int64(len(readFile(t, mem, FileName("/p", 0, LogSuffix)))) != size {
		t.Fatalf("state changed after failed append")
	}
}
