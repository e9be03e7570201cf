package partition

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/thorstream/thorstream/log/vfs"
)

// TestFencing injects EIO and ENOSPC on pwritev and fdatasync of one log's files and checks that
// the log fences, readers keep serving what was there, a second log on the same filesystem is
// unaffected, and everything synced before the fault survives a reopen.
func TestFencing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      vfs.Op
		errno   syscall.Errno
		partial int
		sync    bool // the failing call is Sync (else Append)
	}{
		{"writev EIO", vfs.OpWrite, syscall.EIO, 0, false},
		{"writev ENOSPC partial", vfs.OpWrite, syscall.ENOSPC, 100, false},
		{"fsync EIO", vfs.OpSync, syscall.EIO, 0, true},
		{"fsync ENOSPC", vfs.OpSync, syscall.ENOSPC, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			ffs := vfs.NewFaultFS(mem)
			c := newClock()
			a := mustOpen(t, testOptions(ffs, "/a", c))
			b := mustOpen(t, testOptions(ffs, "/b", c))
			defer b.Close()
			synced := appendN(t, a, 10, 2, 0, 0, 100)
			if err := a.Sync(); err != nil {
				t.Fatal(err)
			}
			appendN(t, b, 3, 1, 0, 0, 10)

			ffs.Inject(vfs.Fault{Op: tc.op, Err: tc.errno, PartialBytes: tc.partial, Persistent: true,
				Match: func(p string) bool { return strings.HasPrefix(p, "/a/") && strings.HasSuffix(p, ".log") }})
			err := a.Append([][]byte{makeBatch(a.NextOffset(), 1, 0, 0, 300)})
			if tc.sync {
				if err != nil {
					t.Fatal("append should succeed before the sync fails:", err)
				}
				err = a.Sync()
			}
			if !errors.Is(err, ErrFenced) || !errors.Is(err, tc.errno) {
				t.Fatalf("got %v, want fenced with %v", err, tc.errno)
			}
			t.Log(err)
			ffs.Clear() // even with the disk back, the log stays fenced
			for _, again := range []error{
				a.Append([][]byte{makeBatch(a.NextOffset(), 1, 0, 0, 10)}),
				a.Sync(),
				a.TruncateTo(0),
				a.AdvanceStartOffset(1),
			} {
				if !errors.Is(again, ErrFenced) || !errors.Is(again, tc.errno) {
					t.Fatalf("after fence: %v", again)
				}
			}
			// Readers still see the synced data.
			want := bytes.Join(synced, nil)
			got, err := a.Read(nil, 0, 1<<20, 20, false)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read after fence: %d bytes, %v", len(got), err)
			}
			// The other log is fine.
			appendN(t, b, 3, 1, 0, 0, 10)
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); !errors.Is(err, ErrFenced) {
				t.Fatalf("close of a fenced log: %v", err)
			}
			// Reopen: the synced data is there.
			a = mustOpen(t, testOptions(ffs, "/a", c))
			defer a.Close()
			if a.NextOffset() < 20 {
				t.Fatalf("lost synced data: next %d", a.NextOffset())
			}
			if got := readAll(t, a, 0); !bytes.HasPrefix(got, want) {
				t.Fatal("synced data differs after reopen")
			}
			appendN(t, a, 1, 1, 0, 0, 10)
		})
	}
}

// TestFailedWriteTruncatesBack checks the file is cut back to its size before a partial write.
func TestFailedWriteTruncatesBack(t *testing.T) {
	mem := vfs.NewMem()
	ffs := vfs.NewFaultFS(mem)
	l := mustOpen(t, testOptions(ffs, "/a", newClock()))
	appendN(t, l, 2, 1, 0, 0, 10)
	size := l.Size()
	ffs.Inject(vfs.Fault{Op: vfs.OpWrite, Err: syscall.ENOSPC, PartialBytes: 50, Match: func(p string) bool { return strings.HasSuffix(p, ".log") }})
	if err := l.Append([][]byte{makeBatch(2, 1, 0, 0, 100)}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	fi, err := mem.Stat("/a/00000000000000000000.log")
	if err != nil || fi.Size() != size {
		t.Fatalf("file size %d, want %d", fi.Size(), size)
	}
	l.Close()
}

// TestRollCreateFailureFences: a failure creating the next segment fences too.
func TestRollCreateFailureFences(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.NewMem())
	opts := testOptions(ffs, "/a", newClock())
	opts.SegmentBytes = 200
	l := mustOpen(t, opts)
	defer l.Close()
	appendN(t, l, 1, 1, 0, 0, 100)
	ffs.Inject(vfs.Fault{Op: vfs.OpCreate, Err: syscall.EIO})
	if err := l.Append([][]byte{makeBatch(1, 1, 0, 0, 100)}); !errors.Is(err, ErrFenced) || !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
}
