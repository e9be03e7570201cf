package vfs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// crashContent returns the content of name, or nil and false if it does not exist.
func crashContent(t *testing.T, fs FS, name string) ([]byte, bool) {
	t.Helper()
	f, err := fs.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n != len(b) && err != io.EOF {
		t.Fatal(err)
	}
	return b, true
}

func mustWrite(t *testing.T, f File, p []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newCrashDirWithFile makes /d/f durable (entry and content "durable").
func newCrashDirWithFile(t *testing.T) (*CrashFS, File) {
	t.Helper()
	fs := NewCrashFS()
	must(t, fs.MkdirAll("/d", 0o755))
	f, err := fs.Create("/d/f")
	must(t, err)
	mustWrite(t, f, []byte("durable"), 0)
	must(t, f.Sync())
	must(t, fs.SyncDir("/d"))
	return fs, f
}

func TestCrashLosesUnsyncedWrites(t *testing.T) {
	fs, f := newCrashDirWithFile(t)
	mustWrite(t, f, []byte("-lost"), 7)
	mustWrite(t, f, []byte("D"), 0) // an overwrite is undone too
	must(t, f.Truncate(3))
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "Dur" {
		t.Fatalf("before the crash: %q", got)
	}
	fs.PowerLoss(nil)
	if got, ok := crashContent(t, fs, "/d/f"); !ok || string(got) != "durable" {
		t.Fatalf("after the crash: %q, %v", got, ok)
	}
}

func TestCrashSyncedStateSurvives(t *testing.T) {
	kept, lost := 0, 0
	for seed := uint64(0); seed < 40; seed++ {
		fs, f := newCrashDirWithFile(t)
		mustWrite(t, f, []byte("+more"), 7)
		must(t, f.Sync())
		must(t, f.Truncate(9)) // a truncation is a data change: unsynced, it may be undone
		fs.PowerLoss(rand.New(rand.NewPCG(seed, 1)))
		switch got, ok := crashContent(t, fs, "/d/f"); {
		case ok && string(got) == "durable+more":
			lost++
		case ok && string(got) == "durable+m":
			kept++
		default:
			t.Fatalf("seed %d: %q, %v", seed, got, ok)
		}
	}
	if kept == 0 || lost == 0 {
		t.Fatalf("the unsynced truncation was kept %d and lost %d times in 40 crashes", kept, lost)
	}
}

// TestCrashTornWrites: a power loss keeps a prefix of the unsynced writes, the last possibly
// torn; every length between none and all of them shows up.
func TestCrashTornWrites(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 5)
	seen := map[int]bool{}
	for seed := uint64(0); seed < 400; seed++ {
		fs, f := newCrashDirWithFile(t)
		mustWrite(t, f, want[:20], 7)
		if _, err := f.Writev([][]byte{want[20:35], want[35:]}, 27); err != nil {
			t.Fatal(err)
		}
		fs.PowerLoss(rand.New(rand.NewPCG(seed, 7)))
		got, ok := crashContent(t, fs, "/d/f")
		if !ok || !bytes.HasPrefix(got, []byte("durable")) {
			t.Fatalf("seed %d: %q, %v", seed, got, ok)
		}
		tail := got[7:]
		if !bytes.Equal(tail, want[:len(tail)]) {
			t.Fatalf("seed %d: survived %q, not a prefix of %q", seed, tail, want)
		}
		seen[len(tail)] = true
	}
	for _, n := range []int{0, 20, 35, 50} { // the boundaries between whole writes
		if !seen[n] {
			t.Errorf("never kept exactly %d of the unsynced bytes", n)
		}
	}
	torn := 0
	for n := range seen {
		if n != 0 && n != 20 && n != 35 && n != 50 {
			torn++
		}
	}
	if torn < 10 {
		t.Errorf("only %d distinct torn lengths: %v", torn, seen)
	}
}

func TestCrashUndoesCreate(t *testing.T) {
	fs := NewCrashFS()
	must(t, fs.MkdirAll("/d", 0o755))
	f, err := fs.Create("/d/new")
	must(t, err)
	mustWrite(t, f, []byte("synced data, unsynced entry"), 0)
	must(t, f.Sync())
	_, err = fs.Create("/d/kept")
	must(t, err)
	must(t, fs.SyncDir("/d"))
	h, err := fs.Create("/d/late") // after the SyncDir
	must(t, err)
	must(t, h.Sync())
	if names, _ := fs.ReadDir("/d"); !slices.Equal(names, []string{"kept", "late", "new"}) {
		t.Fatalf("before the crash: %v", names)
	}
	if d := fs.DurableNames("/d"); !slices.Equal(d, []string{"kept", "new"}) {
		t.Fatalf("durable names %v", d)
	}
	fs.PowerLoss(rand.New(rand.NewPCG(3, 3)))
	if names, _ := fs.ReadDir("/d"); !slices.Equal(names, []string{"kept", "new"}) {
		t.Fatalf("after the crash: %v", names)
	}
	if got, _ := crashContent(t, fs, "/d/new"); string(got) != "synced data, unsynced entry" {
		t.Fatalf("content %q", got)
	}
	if _, ok := crashContent(t, fs, "/d/late"); ok {
		t.Fatal("a file created after the last SyncDir survived")
	}
}

func TestCrashRevertsRename(t *testing.T) {
	fs, _ := newCrashDirWithFile(t)
	tmp, err := fs.Create("/d/f.tmp")
	must(t, err)
	mustWrite(t, tmp, []byte("new"), 0)
	must(t, tmp.Sync())
	must(t, tmp.Close())
	must(t, fs.Rename("/d/f.tmp", "/d/f"))
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "new" {
		t.Fatalf("before the crash: %q", got)
	}
	fs.PowerLoss(nil)
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable" {
		t.Fatalf("an unsynced rename survived: %q", got)
	}
	if _, ok := crashContent(t, fs, "/d/f.tmp"); ok {
		t.Fatal("the temporary file, never synced in its directory, survived")
	}

	// Synced, the rename survives.
	tmp, err = fs.Create("/d/f.tmp")
	must(t, err)
	mustWrite(t, tmp, []byte("new"), 0)
	must(t, tmp.Sync())
	must(t, fs.Rename("/d/f.tmp", "/d/f"))
	must(t, fs.SyncDir("/d"))
	fs.PowerLoss(nil)
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "new" {
		t.Fatalf("a synced rename was lost: %q", got)
	}
	if names, _ := fs.ReadDir("/d"); !slices.Equal(names, []string{"f"}) {
		t.Fatalf("names %v", names)
	}
}

func TestCrashBringsBackRemoved(t *testing.T) {
	fs, f := newCrashDirWithFile(t)
	mustWrite(t, f, []byte("!unsynced"), 7)
	must(t, fs.Remove("/d/f"))
	if _, ok := crashContent(t, fs, "/d/f"); ok {
		t.Fatal("removed file still there")
	}
	fs.PowerLoss(nil)
	if got, ok := crashContent(t, fs, "/d/f"); !ok || string(got) != "durable" {
		t.Fatalf("removed file came back as %q, %v; want its durable data", got, ok)
	}
	must(t, fs.Remove("/d/f"))
	must(t, fs.SyncDir("/d"))
	fs.PowerLoss(nil)
	if _, ok := crashContent(t, fs, "/d/f"); ok {
		t.Fatal("a synced remove was undone")
	}
}

// TestCrashRecreateAfterRemove: a name removed and created anew, unsynced, comes back as the
// old file.
func TestCrashRecreateAfterRemove(t *testing.T) {
	fs, _ := newCrashDirWithFile(t)
	must(t, fs.Remove("/d/f"))
	g, err := fs.Create("/d/f")
	must(t, err)
	mustWrite(t, g, []byte("other inode"), 0)
	must(t, g.Sync())
	fs.PowerLoss(nil)
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable" {
		t.Fatalf("got %q", got)
	}
}

// TestCrashCreateTruncatesUnsynced: Create over an existing file truncates it, a data change
// undone by a power loss.
func TestCrashCreateTruncatesUnsynced(t *testing.T) {
	fs, _ := newCrashDirWithFile(t)
	g, err := fs.Create("/d/f")
	must(t, err)
	mustWrite(t, g, []byte("xy"), 0)
	fs.PowerLoss(nil)
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable" {
		t.Fatalf("got %q", got)
	}
}

func TestCrashKillsOpenFiles(t *testing.T) {
	fs, f := newCrashDirWithFile(t)
	fs.PowerLoss(nil)
	var buf [4]byte
	checks := map[string]error{}
	_, checks["ReadAt"] = f.ReadAt(buf[:], 0)
	_, checks["WriteAt"] = f.WriteAt(buf[:], 0)
	_, checks["Writev"] = f.Writev([][]byte{buf[:]}, 0)
	checks["Sync"] = f.Sync()
	checks["Truncate"] = f.Truncate(0)
	_, checks["Size"] = f.Size()
	_, checks["Stat"] = f.Stat()
	checks["Close"] = f.Close()
	for op, err := range checks {
		if !errors.Is(err, ErrPowerLost) {
			t.Errorf("%s on a file opened before the crash: %v", op, err)
		}
	}
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable" {
		t.Fatalf("dead handles changed the file: %q", got)
	}
}

func TestCrashAfter(t *testing.T) {
	fs, f := newCrashDirWithFile(t)
	base := fs.MutatingOps()
	if base != 5 { // MkdirAll, Create, WriteAt, Sync, SyncDir
		t.Fatalf("ops %d", base)
	}
	fs.CrashAfter(3)
	mustWrite(t, f, []byte("1"), 7)                                         // op 1
	mustWrite(t, f, []byte("2"), 8)                                         // op 2
	if _, err := f.WriteAt([]byte("3"), 9); !errors.Is(err, ErrPowerLost) { // op 3: the world stops
		t.Fatalf("third op: %v", err)
	}
	if !fs.Stopped() {
		t.Fatal("not stopped")
	}
	for name, err := range map[string]error{
		"Sync":    f.Sync(),
		"SyncDir": fs.SyncDir("/d"),
		"Remove":  fs.Remove("/d/f"),
		"Rename":  fs.Rename("/d/f", "/d/g"),
		"Create":  func() error { _, err := fs.Create("/d/h"); return err }(),
	} {
		if !errors.Is(err, ErrPowerLost) {
			t.Errorf("%s after the stop: %v", name, err)
		}
	}
	if got := fs.MutatingOps(); got != base+3 {
		t.Fatalf("ops counted after the stop: %d", got)
	}
	// Reads still see what was written before the stop, a power loss drops it.
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable12" {
		t.Fatalf("before the power loss: %q", got)
	}
	fs.PowerLoss(nil)
	if fs.Stopped() {
		t.Fatal("still stopped after the power loss")
	}
	if got, _ := crashContent(t, fs, "/d/f"); string(got) != "durable" {
		t.Fatalf("after the power loss: %q", got)
	}
	g, err := fs.OpenFile("/d/f", os.O_RDWR, 0)
	must(t, err)
	mustWrite(t, g, []byte("!"), 7)
	must(t, g.Sync())

	fs.CrashAfter(1)
	fs.CrashAfter(0) // disarmed
	mustWrite(t, g, []byte("?"), 8)
}

// TestCrashFSBasics runs the FS conformance checks every filesystem passes.
func TestCrashFSBasics(t *testing.T) {
	fs := NewCrashFS()
	must(t, fs.MkdirAll("/a/b", 0o755))
	f, err := fs.OpenFile("/a/b/x", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	must(t, err)
	if _, err := fs.OpenFile("/a/b/x", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if _, err := fs.Open("/a/b/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := fs.Create("/nodir/x"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("create in a missing dir: %v", err)
	}
	n, err := f.Writev([][]byte{[]byte("ab"), nil, []byte("cd")}, 3)
	if err != nil || n != 4 {
		t.Fatal(n, err)
	}
	if got, _ := crashContent(t, fs, "/a/b/x"); !bytes.Equal(got, []byte("\x00\x00\x00abcd")) {
		t.Fatalf("got %q", got)
	}
	must(t, f.Truncate(10))
	if size, _ := f.Size(); size != 10 {
		t.Fatal(size)
	}
	must(t, f.Truncate(2))
	must(t, f.Truncate(5)) // growing again zero-fills
	if got, _ := crashContent(t, fs, "/a/b/x"); !bytes.Equal(got, make([]byte, 5)) {
		t.Fatalf("got %q", got)
	}
	ro, err := fs.Open("/a/b/x")
	must(t, err)
	if _, err := ro.WriteAt([]byte("z"), 0); err == nil {
		t.Fatal("write on a read-only file")
	}
	must(t, ro.Close())
	if err := ro.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("double close: %v", err)
	}
	if names, _ := fs.ReadDir("/a"); !slices.Equal(names, []string{"b"}) {
		t.Fatalf("readdir /a: %v", names)
	}
	if fi, err := fs.Stat("/a/b"); err != nil || !fi.IsDir() {
		t.Fatal(fi, err)
	}
	if fi, err := fs.Stat("/a/b/x"); err != nil || fi.IsDir() || fi.Size() != 5 {
		t.Fatal(fi, err)
	}
	if err := fs.Remove("/a/b"); err == nil {
		t.Fatal("removed a non-empty directory")
	}
}
