package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrDataDirInUse means another broker holds the data directory's lock: two brokers appending to
// the same logs would corrupt them, so the second one does not start.
var ErrDataDirInUse = errors.New("cluster: data directory in use")

// lockFile is the file in the data directory a broker holds an exclusive lock on while it runs.
const lockFile = ".lock"

// dataDirLock is the held lock on a data directory. The lock belongs to the open descriptor, so
// the kernel releases it when the process ends, however it ends.
type dataDirLock struct {
	f *os.File
}

// lockDataDir takes an exclusive, non-blocking lock on dir's lock file and writes this process's
// id into it. When another process holds it, the error wraps ErrDataDirInUse and names the
// directory and, when the file says, the holder's process id.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: data directory lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		holder := ""
		if buf, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(buf))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is used by another running broker%s; stop it, or give this one another data directory",
				ErrDataDirInUse, dir, holder)
		}
		return nil, fmt.Errorf("cluster: locking data directory %s: %w", dir, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: writing data directory lock %s: %w", path, err)
	}
	return &dataDirLock{f: f}, nil
}

// release gives the lock up. The file stays: removing it would let a broker starting meanwhile
// lock a new file while a third still holds the old one.
func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close()
	l.f = nil
}
