package partition

import (
	"bytes"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestReopenTornLastBatch cuts the active .log at every byte position of its last batch (as a
// crash in the middle of a write would) and reopens: the log keeps exactly the whole batches,
// logs what it dropped, and accepts appends at the recovered end.
func TestReopenTornLastBatch(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 900
	l := mustOpen(t, opts)
	var batches [][]byte
	for i := 0; i < 7; i++ {
		b := makeBatch(l.NextOffset(), 2, int32(i/3), int64(i), 80)
		if err := l.Append([][]byte{b}); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	activeBase := segs[len(segs)-1]
	path := segment.FileName("/p", activeBase, segment.LogSuffix)
	f, _ := fs.Open(path)
	size, _ := f.Size()
	full := make([]byte, size)
	f.ReadAt(full, 0)
	f.Close()
	last := batches[len(batches)-1]
	prefix := len(full) - len(last)
	lastBase := int64(12)
	for cut := prefix; cut <= len(full); cut++ {
		w, _ := fs.Create(path)
		w.WriteAt(full[:cut], 0)
		w.Close()
		core, logs := observer.New(zapcore.WarnLevel)
		opts.Logger = zap.New(core)
		l := mustOpen(t, opts)
		wantNext := lastBase
		if cut == len(full) {
			wantNext = lastBase + 2
		}
		if l.NextOffset() != wantNext || l.EndOffset() != wantNext {
			t.Fatalf("cut %d: next %d want %d", cut, l.NextOffset(), wantNext)
		}
		want := bytes.Join(batches, nil)
		if cut < len(full) {
			want = want[:len(want)-len(last)]
		}
		if got := readAll(t, l, 0); !bytes.Equal(got, want) {
			t.Fatalf("cut %d: content differs", cut)
		}
		torn := logs.FilterMessage("recovered segment, truncated torn tail").All()
		if cut > prefix && cut < len(full) {
			if len(torn) != 1 {
				t.Fatalf("cut %d: %d torn-tail log entries", cut, len(torn))
			}
			fields := torn[0].ContextMap()
			if fields["bytes_dropped"] != int64(cut-prefix) || fields["valid_end_offset"] != lastBase || fields["dir"] != "/p" {
				t.Fatalf("cut %d: fields %v", cut, fields)
			}
		} else if len(torn) != 0 {
			t.Fatalf("cut %d: unexpected torn-tail log", cut)
		}
		if cut < len(full) && l.LatestEpoch() != 1 {
			t.Fatalf("cut %d: latest epoch %d", cut, l.LatestEpoch())
		}
		if err := l.Append([][]byte{makeBatch(l.NextOffset(), 1, 2, 0, 10)}); err != nil {
			t.Fatal(err)
		}
		if l.LatestEpoch() != 2 {
			t.Fatal("epoch after append")
		}
		l.Close()
		// Restore the epoch checkpoint and the file for the next cut.
		if err := l.fs.Remove("/p/" + leaderEpochCheckpoint); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStrayFilesRemoved: temporary checkpoint files and indexes without a .log go at Open.
func TestStrayFilesRemoved(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	l := mustOpen(t, opts)
	appendN(t, l, 3, 1, 0, 0, 10)
	l.Close()
	for _, name := range []string{"/p/leader-epoch-checkpoint.tmp", "/p/00000000000000000099.index", "/p/00000000000000000099.timeindex"} {
		w, _ := fs.Create(name)
		w.Close()
	}
	l = mustOpen(t, opts)
	defer l.Close()
	names, _ := fs.ReadDir("/p")
	for _, n := range names {
		if n == "leader-epoch-checkpoint.tmp" || n == "00000000000000000099.index" || n == "00000000000000000099.timeindex" {
			t.Fatalf("stray %s not removed: %v", n, names)
		}
	}
	if l.NextOffset() != 3 {
		t.Fatal("data lost")
	}
}

// TestIndexRebuildLogged: a damaged index of a sealed segment is rebuilt and logged.
func TestIndexRebuildLogged(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/p", newClock())
	opts.SegmentBytes = 2000
	l := mustOpen(t, opts)
	batches := appendN(t, l, 30, 1, 0, 0, 100)
	l.Close()
	w, _ := fs.Create(segment.FileName("/p", 0, segment.IndexSuffix))
	w.WriteAt([]byte{0, 0, 0, 1, 0, 0}, 0)
	w.Close()
	core, logs := observer.New(zapcore.WarnLevel)
	opts.Logger = zap.New(core)
	l = mustOpen(t, opts)
	defer l.Close()
	if logs.FilterMessage("rebuilt segment indexes").Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(batches, nil)) {
		t.Fatal("content")
	}
}
