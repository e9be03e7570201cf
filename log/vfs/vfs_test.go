package vfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func testFS(t *testing.T) map[string]struct {
	fs  FS
	dir string
} {
	return map[string]struct {
		fs  FS
		dir string
	}{
		"mem": {NewMem(), "/d"},
		"os":  {Default, t.TempDir()},
	}
}

func TestFileOperations(t *testing.T) {
	for name, tc := range testFS(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := tc.fs, filepath.Join(tc.dir, "sub")
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := fs.Create(filepath.Join(dir, "a"))
			if err != nil {
				t.Fatal(err)
			}
			// More buffers than IOV_MAX, some empty: one logical write.
			var bufs [][]byte
			var want []byte
			for i := 0; i < 2100; i++ {
				b := bytes.Repeat([]byte{byte(i)}, i%5)
				bufs = append(bufs, b)
				want = append(want, b...)
			}
			n, err := f.Writev(bufs, 3)
			if err != nil || n != len(want) {
				t.Fatalf("Writev = %d, %v", n, err)
			}
			want = append(make([]byte, 3), want...)
			if size, _ := f.Size(); size != int64(len(want)) {
				t.Fatalf("size %d", size)
			}
			got := make([]byte, len(want))
			if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ReadAt: %v", err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(10); err != nil {
				t.Fatal(err)
			}
			if fi, _ := f.Stat(); fi.Size() != 10 {
				t.Fatalf("after truncate: %d", fi.Size())
			}
			if _, err := f.WriteAt([]byte("xyz"), 20); err != nil {
				t.Fatal(err)
			}
			if size, _ := f.Size(); size != 23 {
				t.Fatalf("write past end: %d", size)
			}
			f.Close()
			if err := fs.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
				t.Fatal(err)
			}
			if err := fs.SyncDir(dir); err != nil {
				t.Fatal(err)
			}
			names, err := fs.ReadDir(dir)
			if err != nil || len(names) != 1 || names[0] != "b" {
				t.Fatalf("ReadDir %v %v", names, err)
			}
			if _, err := fs.Open(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("open renamed: %v", err)
			}
			r, err := fs.Open(filepath.Join(dir, "b"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("write to a read-only file")
			}
			r.Close()
			if err := fs.Remove(filepath.Join(dir, "b")); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stat removed: %v", err)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), []byte("de"), []byte("fgh")}
	for n, want := range []string{"abcdefgh", "bcdefgh", "cdefgh", "defgh", "efgh", "fgh", "gh", "h", ""} {
		got := bytes.Join(advance(nil, bufs, n), nil)
		if string(got) != want {
			t.Errorf("advance %d: %q want %q", n, got, want)
		}
	}
}

func TestFaultFS(t *testing.T) {
	mem := NewMem()
	ffs := NewFaultFS(mem)
	ffs.MkdirAll("/d", 0o755)
	f, err := ffs.Create("/d/x.log")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ffs.Create("/d/y.log")
	isX := func(p string) bool { return p == "/d/x.log" }

	// Once: fires a single time, only for matching paths.
	ffs.Inject(Fault{Op: OpSync, Err: syscall.EIO, Match: isX})
	if err := other.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("one-shot fault fired twice: %v", err)
	}

	// Partial write then ENOSPC, persistent until cleared.
	ffs.Inject(Fault{Op: OpWrite, Err: syscall.ENOSPC, PartialBytes: 4, Persistent: true, Match: isX})
	for i := 0; i < 2; i++ {
		n, err := f.Writev([][]byte{[]byte("ab"), []byte("cdef")}, 0)
		if n != 4 || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("writev: %d %v", n, err)
		}
	}
	got := make([]byte, 4)
	f.ReadAt(got, 0)
	if string(got) != "abcd" {
		t.Fatalf("partial write wrote %q", got)
	}
	if _, err := f.WriteAt([]byte("z"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt: %v", err)
	}
	ffs.Clear()
	if _, err := f.Writev([][]byte{[]byte("ok")}, 0); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		op  Op
		run func() error
	}{
		{OpCreate, func() error { _, err := ffs.Create("/d/z"); return err }},
		{OpOpen, func() error { _, err := ffs.Open("/d/x.log"); return err }},
		{OpRead, func() error { _, err := f.ReadAt(got, 0); return err }},
		{OpTruncate, func() error { return f.Truncate(0) }},
		{OpRename, func() error { return ffs.Rename("/d/y.log", "/d/w.log") }},
		{OpRemove, func() error { return ffs.Remove("/d/y.log") }},
		{OpSyncDir, func() error { return ffs.SyncDir("/d") }},
	} {
		ffs.Inject(Fault{Op: tc.op, Err: syscall.EIO})
		if err := tc.run(); !errors.Is(err, syscall.EIO) {
			t.Errorf("op %d: %v", tc.op, err)
		}
	}
	if ffs.Fired() != 11 {
		t.Fatalf("fired %d", ffs.Fired())
	}
}
