package vfs

import (
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

type osFile struct {
	*os.File
	// fd is cached at open because os.File.Fd would be called on every write; the file's owner
	// is the only one to write or close, so it cannot be closed under a Writev.
	fd int
}

// iovMax is Linux's IOV_MAX: pwritev rejects more buffers than this in one call.
const iovMax = 1024

func wrap(f *os.File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &osFile{File: f, fd: int(f.Fd())}, nil
}

func (osFS) Create(name string) (File, error) {
	return wrap(os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644))
}
func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return wrap(os.OpenFile(name, flag, perm))
}
func (osFS) Open(name string) (File, error)              { return wrap(os.Open(name)) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *osFile) Writev(bufs [][]byte, off int64) (int, error) {
	total := totalLen(bufs)
	written := 0
	var scratch [][]byte
	for written < total {
		chunk := bufs
		if len(chunk) > iovMax {
			chunk = chunk[:iovMax]
		}
		n, err := unix.Pwritev(f.fd, chunk, off+int64(written))
		if n > 0 {
			written += n
		}
		if err == unix.EINTR {
			err = nil
		}
		if err != nil {
			return written, &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
		}
		if n == 0 && totalLen(chunk) > 0 {
			return written, &os.PathError{Op: "pwritev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		// Short writes are rare (a signal, a nearly full disk): only then is a copy of the
		// buffer list made.
		scratch = advance(scratch, bufs, max(n, 0))
		bufs = scratch
	}
	return written, nil
}

func (f *osFile) Sync() error {
	for {
		err := unix.Fdatasync(f.fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
		return nil
	}
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
