package partition

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

func fileBytes(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Size()
	b := make([]byte, size)
	if size > 0 {
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func putFile(t *testing.T, fs vfs.FS, path string, data []byte) {
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
	f.Close()
}

// droppedFiles lists the files of cut-off bytes in dir.
func droppedFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := segment.IsDroppedFile(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// sevenSegments writes 7 segments of 3 batches each (about 150 KB per segment) and closes the log.
func sevenSegments(t *testing.T, fs vfs.FS, opts Options) [][]byte {
	t.Helper()
	opts.SegmentBytes = 160 << 10
	l := mustOpen(t, opts)
	batches := appendN(t, l, 21, 4, 0, 1000, 12_000)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 7 {
		t.Fatalf("%d segments, want 7", n)
	}
	return batches
}

// TestMissingMiddleSegmentKeepsTheRest removes one .log in the middle of a log below the recovery
// point: start-up keeps every other segment, serves them (a read in the hole continues after
// it), logs the missing offsets, and appends continue at the old end.
func TestMissingMiddleSegmentKeepsTheRest(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 160 << 10
	batches := sevenSegments(t, fs, opts)
	l := mustOpen(t, opts)
	segs := l.Segments()
	end := l.EndOffset()
	l.Close()
	missingBase, missingNext := segs[3], segs[4]
	if err := fs.Remove(segment.FileName("/p", missingBase, segment.LogSuffix)); err != nil {
		t.Fatal(err)
	}

	core, logs := observer.New(zapcore.WarnLevel)
	opts.Logger = zap.New(core)
	l = mustOpen(t, opts)
	defer l.Close()
	if l.EndOffset() != end || len(l.Segments()) != 6 {
		t.Fatalf("end %d (want %d), %d segments (want 6)", l.EndOffset(), end, len(l.Segments()))
	}
	missing := logs.FilterMessageSnippet("offsets missing").All()
	if len(missing) != 1 || missing[0].ContextMap()["missing_from"] != missingBase || missing[0].ContextMap()["missing_to_exclusive"] != missingNext {
		t.Fatalf("missing-offsets log: %v", missing)
	}
	// Everything but the missing segment's batches is served, in order.
	var want []byte
	for _, b := range batches {
		if base := batch.BaseOffset(b); base < missingBase || base >= missingNext {
			want = append(want, b...)
		}
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("served %d bytes, want %d", len(got), len(want))
	}
	// A read inside the hole returns the first batch after it.
	got, err := l.Read(nil, missingBase+1, 1, end, true)
	if err != nil || batch.BaseOffset(got) != missingNext {
		t.Fatalf("read in the hole: base %d err %v, want base %d", batch.BaseOffset(got), err, missingNext)
	}
	appendN(t, l, 1, 1, 0, 5000, 10)
	if l.EndOffset() != end+1 {
		t.Fatalf("end after append %d", l.EndOffset())
	}
}

// TestCorruptTailKeptAside corrupts a batch in the middle of a log that has no recovery point
// (everything is validated): the bytes from the corrupt batch on and every later segment are
// moved into .dropped files, byte for byte, and nothing is deleted.
func TestCorruptTailKeptAside(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 160 << 10
	sevenSegments(t, fs, opts)
	l := mustOpen(t, opts)
	segs := l.Segments()
	l.Close()
	if err := fs.Remove("/p/" + recoveryPointCheckpoint); err != nil {
		t.Fatal(err)
	}
	var before int
	originals := map[int64][]byte{}
	for _, base := range segs {
		b := fileBytes(t, fs, segment.FileName("/p", base, segment.LogSuffix))
		originals[base] = b
		before += len(b)
	}
	// Flip a byte in the second batch of segment 2.
	victim := segment.FileName("/p", segs[2], segment.LogSuffix)
	data := append([]byte(nil), originals[segs[2]]...)
	first, _ := batch.Size(data)
	data[first+100] ^= 0xff
	putFile(t, fs, victim, data)

	core, logs := observer.New(zapcore.WarnLevel)
	opts.Logger = zap.New(core)
	l = mustOpen(t, opts)
	if got := l.Segments(); len(got) != 3 || l.EndOffset() != segs[2]+4 {
		t.Fatalf("segments %v end %d, want 3 segments ending at %d", got, l.EndOffset(), segs[2]+4)
	}
	l.Close()
	dropped := droppedFiles(t, fs, "/p")
	if len(dropped) != 5 {
		t.Fatalf("dropped files %v, want 5 (the cut tail and 4 segments)", dropped)
	}
	kept := 0
	for _, base := range segs[:3] {
		kept += len(fileBytes(t, fs, segment.FileName("/p", base, segment.LogSuffix)))
	}
	for _, name := range dropped {
		b := fileBytes(t, fs, filepath.Join("/p", name))
		kept += len(b)
		base, _, _ := segment.ParseFileName(name)
		want := originals[base]
		if base == segs[2] {
			want = data[first:]
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("%s does not hold the bytes it replaced", name)
		}
	}
	if kept != before {
		t.Fatalf("%d bytes on disk after recovery, %d before", kept, before)
	}
	if n := len(logs.FilterMessageSnippet("moved aside").All()); n != 4 {
		t.Fatalf("%d moved-aside log entries", n)
	}
	torn := logs.FilterMessage("recovered segment, truncated torn tail").All()
	if len(torn) != 1 || !strings.Contains(torn[0].ContextMap()["kept_in"].(string), segment.DroppedInfix) {
		t.Fatalf("torn-tail log %v", torn)
	}
	// `segment dump` reads the file of cut bytes.
	var n int
	err := segment.Scan(fs, filepath.Join("/p", dropped[0]), func(pos int64, h batch.Header, err error) error {
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("scan of %s: %d batches, %v", dropped[0], n, err)
	}
}

// TestDroppedFilesBounded: a directory keeps at most MaxDroppedFiles files of cut bytes.
func TestDroppedFilesBounded(t *testing.T) {
	fs := vfs.NewMem()
	c := newClock()
	opts := testOptions(fs, "/p", c)
	opts.MaxDroppedFiles = 3
	l := mustOpen(t, opts)
	l.Close()
	for i := 0; i < 6; i++ {
		l := mustOpen(t, opts)
		appendN(t, l, 2, 1, 0, 0, 50)
		l.Close()
		path := segment.FileName("/p", l.Segments()[0], segment.LogSuffix)
		data := fileBytes(t, fs, path)
		putFile(t, fs, path, data[:len(data)-3]) // tear the last batch
		c.Advance(1000)
	}
	l = mustOpen(t, opts)
	l.Close()
	if got := droppedFiles(t, fs, "/p"); len(got) != 3 {
		t.Fatalf("%d dropped files kept: %v", len(got), got)
	}
}

// countingFS counts the bytes read through it.
type countingFS struct {
	vfs.FS
	read atomic.Int64
}

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	return c.wrap(c.FS.OpenFile(name, flag, perm))
}
func (c *countingFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }
func (c *countingFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }

func (c *countingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c}, nil
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

// TestRestartReadsOnlyWhatIsNotDurable: after a clean stop a start reads almost nothing of a
// large active segment; after a crash it validates only what was appended after the last
// recovery point checkpoint.
func TestRestartReadsOnlyWhatIsNotDurable(t *testing.T) {
	cfs := &countingFS{FS: vfs.NewMem()}
	opts := testOptions(cfs, "/p", newClock())
	opts.IndexIntervalBytes = 4096
	l := mustOpen(t, opts)
	batches := appendN(t, l, 64, 100, 0, 1000, 1000) // about 6.4 MB in the active segment
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfs.read.Store(0)
	l = mustOpen(t, opts)
	if got := cfs.read.Load(); got > 256<<10 {
		t.Fatalf("start after a clean stop read %d bytes", got)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches, nil)) {
		t.Fatal("content differs after a clean stop")
	}

	// Crash: more appends, synced, a checkpoint in the middle, no Close.
	more := appendN(t, l, 32, 100, 0, 2000, 1000)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckpointRecoveryPoint(); err != nil {
		t.Fatal(err)
	}
	tail := appendN(t, l, 8, 100, 0, 3000, 1000)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	var tailBytes int64
	for _, b := range tail {
		tailBytes += int64(len(b))
	}
	cfs.read.Store(0)
	l2 := mustOpen(t, opts) // l is abandoned as a crash would
	defer l2.Close()
	if got := cfs.read.Load(); got > tailBytes+256<<10 || got < tailBytes {
		t.Fatalf("start after a crash read %d bytes; %d were appended after the recovery point", got, tailBytes)
	}
	all := append(append(append([][]byte{}, batches...), more...), tail...)
	if got := readAll(t, l2, 0); !bytes.Equal(got, bytes.Join(all, nil)) {
		t.Fatal("content differs after a crash")
	}
	// Records stamped with later timestamps are still found through the time index.
	if base, _, found, err := l2.OffsetForTimestamp(3000); err != nil || !found || base != batch.BaseOffset(tail[0]) {
		t.Fatalf("offset for timestamp 3000: %d %v %v", base, found, err)
	}
}
