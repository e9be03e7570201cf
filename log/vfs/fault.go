package vfs

import (
	"os"
	"sync"
)

// Op names an operation a Fault can fail.
type Op int

// Operations that can be failed. OpWrite covers WriteAt and Writev.
const (
	OpCreate Op = iota // Create and OpenFile with O_CREATE
	OpOpen             // Open and OpenFile without O_CREATE
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpRename
	OpRemove
	OpSyncDir
	OpClose
)

// Fault describes an injected error.
type Fault struct {
	Op Op
	// Match selects the paths the fault applies to (the new name for OpRename); nil matches all.
	Match func(path string) bool
	// Err is returned by the operation, e.g. syscall.EIO or syscall.ENOSPC.
	Err error
	// Persistent faults fire on every matching operation until cleared; the others fire once.
	Persistent bool
	// PartialBytes, for OpWrite, writes that many bytes of the data (capped at its length)
	// before failing, the way a disk filling up mid-write does.
	PartialBytes int
}

// FaultFS wraps an FS and fails chosen operations, in the manner of pebble's errorfs.
type FaultFS struct {
	inner  FS
	mu     sync.Mutex // guards faults and counts
	faults []*Fault
	fired  int
}

// NewFaultFS wraps inner. With no fault injected it behaves exactly like inner.
func NewFaultFS(inner FS) *FaultFS { return &FaultFS{inner: inner} }

// Inject adds a fault. Faults are checked in the order they were injected.
func (f *FaultFS) Inject(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := fault
	f.faults = append(f.faults, &fc)
}

// Clear removes every fault.
func (f *FaultFS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// Fired is the number of faults that fired so far.
func (f *FaultFS) Fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// check returns the fault that applies to op on name, consuming it if it is not persistent.
func (f *FaultFS) check(op Op, name string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ft := range f.faults {
		if ft.Op != op || (ft.Match != nil && !ft.Match(name)) {
			continue
		}
		if !ft.Persistent {
			f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
		}
		f.fired++
		return ft
	}
	return nil
}

func (f *FaultFS) pathErr(op string, name string, ft *Fault) error {
	return &os.PathError{Op: op, Path: name, Err: ft.Err}
}

func (f *FaultFS) Create(name string) (File, error) {
	if ft := f.check(OpCreate, name); ft != nil {
		return nil, f.pathErr("create", name, ft)
	}
	return f.wrap(f.inner.Create(name))
}

func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	op := OpOpen
	if flag&os.O_CREATE != 0 {
		op = OpCreate
	}
	if ft := f.check(op, name); ft != nil {
		return nil, f.pathErr("open", name, ft)
	}
	return f.wrap(f.inner.OpenFile(name, flag, perm))
}

func (f *FaultFS) Open(name string) (File, error) {
	if ft := f.check(OpOpen, name); ft != nil {
		return nil, f.pathErr("open", name, ft)
	}
	return f.wrap(f.inner.Open(name))
}

func (f *FaultFS) Remove(name string) error {
	if ft := f.check(OpRemove, name); ft != nil {
		return f.pathErr("remove", name, ft)
	}
	return f.inner.Remove(name)
}

func (f *FaultFS) Rename(oldname, newname string) error {
	if ft := f.check(OpRename, newname); ft != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: ft.Err}
	}
	return f.inner.Rename(oldname, newname)
}

func (f *FaultFS) MkdirAll(dir string, perm os.FileMode) error { return f.inner.MkdirAll(dir, perm) }
func (f *FaultFS) ReadDir(dir string) ([]string, error)        { return f.inner.ReadDir(dir) }
func (f *FaultFS) Stat(name string) (os.FileInfo, error)       { return f.inner.Stat(name) }

func (f *FaultFS) SyncDir(dir string) error {
	if ft := f.check(OpSyncDir, dir); ft != nil {
		return f.pathErr("syncdir", dir, ft)
	}
	return f.inner.SyncDir(dir)
}

func (f *FaultFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *FaultFS
}

func (ff *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if ft := ff.fs.check(OpRead, ff.Name()); ft != nil {
		return 0, ff.fs.pathErr("read", ff.Name(), ft)
	}
	return ff.File.ReadAt(p, off)
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if ft := ff.fs.check(OpWrite, ff.Name()); ft != nil {
		n := 0
		if ft.PartialBytes > 0 {
			n, _ = ff.File.WriteAt(p[:min(ft.PartialBytes, len(p))], off)
		}
		return n, ff.fs.pathErr("write", ff.Name(), ft)
	}
	return ff.File.WriteAt(p, off)
}

func (ff *faultFile) Writev(bufs [][]byte, off int64) (int, error) {
	if ft := ff.fs.check(OpWrite, ff.Name()); ft != nil {
		n := 0
		for _, b := range bufs {
			if n >= ft.PartialBytes {
				break
			}
			k := min(len(b), ft.PartialBytes-n)
			w, _ := ff.File.WriteAt(b[:k], off+int64(n))
			n += w
		}
		return n, ff.fs.pathErr("pwritev", ff.Name(), ft)
	}
	return ff.File.Writev(bufs, off)
}

func (ff *faultFile) Sync() error {
	if ft := ff.fs.check(OpSync, ff.Name()); ft != nil {
		return ff.fs.pathErr("fdatasync", ff.Name(), ft)
	}
	return ff.File.Sync()
}

func (ff *faultFile) Truncate(size int64) error {
	if ft := ff.fs.check(OpTruncate, ff.Name()); ft != nil {
		return ff.fs.pathErr("truncate", ff.Name(), ft)
	}
	return ff.File.Truncate(size)
}

func (ff *faultFile) Close() error {
	if ft := ff.fs.check(OpClose, ff.Name()); ft != nil {
		_ = ff.File.Close()
		return ff.fs.pathErr("close", ff.Name(), ft)
	}
	return ff.File.Close()
}
