package partition

import (
	"bytes"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// openFilesFS counts the files open through it.
type openFilesFS struct {
	vfs.FS
	open atomic.Int64
}

type trackedFile struct {
	vfs.File
	fs     *openFilesFS
	closed atomic.Bool
}

func (t *trackedFile) Close() error {
	if t.closed.CompareAndSwap(false, true) {
		t.fs.open.Add(-1)
	}
	return t.File.Close()
}

func (o *openFilesFS) track(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	o.open.Add(1)
	return &trackedFile{File: f, fs: o}, nil
}

func (o *openFilesFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	return o.track(o.FS.OpenFile(name, flag, perm))
}
func (o *openFilesFS) Open(name string) (vfs.File, error)   { return o.track(o.FS.Open(name)) }
func (o *openFilesFS) Create(name string) (vfs.File, error) { return o.track(o.FS.Create(name)) }

// TestOpenFilesFollowActivity: a log of 60 segments holds the active segment's three files, plus
// at most the cache's capacity of sealed .log files while they are read, whatever its history.
func TestOpenFilesFollowActivity(t *testing.T) {
	ofs := &openFilesFS{FS: vfs.NewMem()}
	cache := segment.NewFileCache(4)
	opts := testOptions(ofs, "/p", newClock())
	opts.SegmentBytes = 4096
	opts.Files = cache
	l := mustOpen(t, opts)
	batches := appendN(t, l, 60, 1, 0, 0, 3000) // one batch a segment
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 60 {
		t.Fatalf("%d segments", n)
	}
	if got := ofs.open.Load(); got > 3+4 {
		t.Fatalf("%d files open while writing 60 segments", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ofs.open.Load(); got != 0 {
		t.Fatalf("%d files open after Close", got)
	}

	l = mustOpen(t, opts)
	defer l.Close()
	if got := ofs.open.Load(); got > 3+4 {
		t.Fatalf("%d files open after Open, want the active segment's 3 and at most 4 cached", got)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches, nil)) {
		t.Fatal("content differs")
	}
	if got := ofs.open.Load(); got > 3+4 || cache.Open() > 4 {
		t.Fatalf("%d files open after reading every segment (cache holds %d)", got, cache.Open())
	}
	if cache.Opened() < 59 {
		t.Fatalf("sealed segments opened %d times", cache.Opened())
	}
	// A truncation into a sealed segment makes it writable again.
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 1, 0, 0, 100)
	if l.EndOffset() != 11 {
		t.Fatalf("end %d after truncate and append", l.EndOffset())
	}
}

// TestGroupAppendRollsBetweenBatches: one Append of many batches (a group commit) rolls where a
// batch would overflow the active segment, so segments stay within SegmentBytes.
func TestGroupAppendRollsBetweenBatches(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 1 << 20
	l := mustOpen(t, opts)
	defer l.Close()
	var group [][]byte
	for i := 0; i < 10; i++ {
		group = append(group, makeBatch(int64(i), 1, 0, 0, 300<<10))
	}
	if err := l.Append(group); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Segments(), []int64{0, 3, 6, 9}; !slices.Equal(got, want) {
		t.Fatalf("segments %v, want %v (three 300 KiB batches a 1 MiB segment)", got, want)
	}
	for _, s := range l.snapshot().segments {
		if s.Size() > opts.SegmentBytes {
			t.Fatalf("segment %d holds %d bytes, more than %d", s.BaseOffset(), s.Size(), opts.SegmentBytes)
		}
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(group, nil)) || l.EndOffset() != 10 {
		t.Fatalf("content differs or end %d", l.EndOffset())
	}
}
