// Package vfs is the filesystem seam of the storage layer.
//
// Every file the log touches goes through FS so tests can swap the operating system for an
// in-memory filesystem (NewMem) or an error-injecting wrapper (NewFaultFS), the way pebble's vfs
// and errorfs do. The surface is deliberately small: positional reads and writes (pread, pwritev),
// fdatasync, truncate, and the directory operations a log needs to create, rename and delete
// segment and checkpoint files. There is no mmap anywhere: indexes live in memory and are written
// with plain writes, so a page fault can never stand in for an I/O error we must see.
//
// # Simulated power loss
//
// CrashFS (NewCrashFS) is an in-memory filesystem that keeps, per file, what was made durable by
// the last Sync and, per directory, the entries made durable by the last SyncDir. PowerLoss drops
// (or tears) whatever was not, kills every open file, and serves what a restarted process would
// find; CrashAfter stops the world at a chosen mutating operation so a test can crash a workload
// at every step of its writes, syncs, rolls and checkpoint renames.
package vfs

import (
	"io"
	"os"
)

// File is an open file. ReadAt may be called from many goroutines at once; the write side
// (WriteAt, Writev, Sync, Truncate) belongs to one goroutine, the file's owner.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Writev writes bufs back to back at off with as few system calls as possible (pwritev) and
	// returns the number of bytes written. A short write without an error is retried, so n is
	// less than the total only when err != nil.
	Writev(bufs [][]byte, off int64) (n int, err error)
	// Sync makes the file's data durable (fdatasync: metadata other than the size is not
	// flushed, which is all an append-only log needs).
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	// Size is the file's current size in bytes.
	Size() (int64, error)
	// Name is the path the file was opened with.
	Name() string
}

// FS is a filesystem.
type FS interface {
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir lists the names (not paths) of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (created, renamed, removed files) durable.
	SyncDir(dir string) error
}

// totalLen is the number of bytes in bufs.
func totalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// advance drops the first n bytes of bufs, reusing scratch for the result so the retry after a
// short write does not disturb the caller's slice.
func advance(scratch, bufs [][]byte, n int) [][]byte {
	scratch = scratch[:0]
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		scratch = append(scratch, b[n:])
		n = 0
	}
	return scratch
}
