package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"sync"
	"time"
)

// ErrPowerLost is returned by operations that a simulated power loss (CrashFS) stopped.
var ErrPowerLost = errors.New("log/vfs: power lost")

// CrashFS is an in-memory FS that remembers what a real disk would still hold after the power
// went out, in the spirit of pebble's strict MemFS. Each file (an inode) has its current content
// and the list of changes made to it since its last File.Sync; each directory has its current
// entries and its durable entries, those it had at its last FS.SyncDir. The durability rules are
// Linux's with fdatasync:
//
//   - File.Sync makes the file's data and size durable, nothing else. WriteAt, Writev, Truncate
//     and the truncation of an existing file by Create or O_TRUNC are data changes, lost at a
//     power loss unless a Sync of that file followed them.
//   - A directory entry (Create of a new name, Rename, Remove) is durable only once SyncDir of its
//     directory followed it; a new file whose data was synced still vanishes without it, and a
//     removed file comes back, with its durable data, if its directory was not synced.
//   - Directories themselves (MkdirAll, Remove of an empty directory) are durable at once: the
//     log never depends on creating or removing them safely.
//
// PowerLoss(rng) cuts the power: every directory returns to its durable entries, and every file
// still named by one returns to its durable content plus, chosen by rng, a prefix of the changes
// made since its last Sync, the last of which may be torn (only a random-length prefix of its
// bytes lands). With a nil rng every unsynced change is lost. Every File opened before is dead
// afterwards (its methods return ErrPowerLost); the filesystem then serves the post-crash state,
// as a restarted process would find it.
//
// To stop the world at a chosen point, CrashAfter(n) makes the n-th mutating operation from then
// on (Create and OpenFile with O_CREATE or O_TRUNC, WriteAt, Writev, Sync, Truncate, Rename,
// Remove, MkdirAll, SyncDir) and every later one fail with ErrPowerLost without effect, until
// PowerLoss. MutatingOps counts those operations, so a test can run a workload once to learn how
// many it does and then crash it at each of them.
//
// Safe for concurrent use.
type CrashFS struct {
	mu      sync.Mutex           // guards everything below and every crashNode
	dirs    map[string]*crashDir // by cleaned path
	era     uint64               // bumped by PowerLoss; files opened in an older era are dead
	ops     int64                // mutating operations attempted until the world stopped
	stopAt  int64                // ops value at which the world stops; 0 when not armed
	stopped bool                 // the world stopped: every mutating operation fails
}

type crashDir struct {
	entries map[string]*crashNode // current, by base name
	durable map[string]*crashNode // as of the last SyncDir
}

// crashNode is an inode: data is the current content, pending the changes since the last Sync,
// oldest first, each able to undo itself.
type crashNode struct {
	data    []byte
	pending []crashChange
	modTime time.Time
}

// crashChange is one WriteAt (or one buffer of a Writev) or one truncation.
type crashChange struct {
	truncate bool
	off      int64  // write: where; truncate: the new size
	data     []byte // write: the bytes written
	oldLen   int64  // the file's size before the change
	old      []byte // write: the bytes it overwrote; truncate: the bytes it cut off
}

// NewCrashFS returns an empty CrashFS with the directories "/" and ".".
func NewCrashFS() *CrashFS {
	c := &CrashFS{dirs: map[string]*crashDir{}}
	c.dirs["/"] = newCrashDir()
	c.dirs["."] = newCrashDir()
	return c
}

func newCrashDir() *crashDir {
	return &crashDir{entries: map[string]*crashNode{}, durable: map[string]*crashNode{}}
}

// CrashAfter arms the stop: the n-th mutating operation from now on, and every later one, fail
// with ErrPowerLost and change nothing, until PowerLoss. n <= 0 disarms.
func (c *CrashFS) CrashAfter(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		c.stopAt = 0
		return
	}
	c.stopAt = c.ops + n
}

// MutatingOps is the number of mutating operations attempted since NewCrashFS.
func (c *CrashFS) MutatingOps() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops
}

// Stopped reports whether CrashAfter's stop was reached (and PowerLoss not called since).
func (c *CrashFS) Stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// PowerLoss simulates a power cut followed by a restart; see the package doc. rng chooses, per
// file, how much of what was written since its last Sync survives; nil loses all of it. The stop
// armed by CrashAfter is cleared.
func (c *CrashFS) PowerLoss(rng *rand.Rand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Visit directories and entries in a fixed order so a seeded rng replays exactly.
	dirNames := make([]string, 0, len(c.dirs))
	for d := range c.dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	seen := map[*crashNode]bool{}
	for _, d := range dirNames {
		dir := c.dirs[d]
		names := make([]string, 0, len(dir.durable))
		for name := range dir.durable {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if n := dir.durable[name]; !seen[n] {
				seen[n] = true
				n.loseUnsynced(rng)
			}
		}
		dir.entries = cloneEntries(dir.durable)
	}
	c.era++
	c.stopAt = 0
	c.stopped = false
}

// loseUnsynced undoes the changes since the last Sync but for a prefix chosen by rng, the last
// change of which may be torn.
func (n *crashNode) loseUnsynced(rng *rand.Rand) {
	count := len(n.pending)
	keep, tornBytes := 0, 0
	if rng != nil && count > 0 {
		switch rng.IntN(4) {
		case 0: // all lost
		case 1:
			keep = count
		default:
			keep = rng.IntN(count + 1)
			if keep < count && !n.pending[keep].truncate && len(n.pending[keep].data) > 1 && rng.IntN(2) == 0 {
				tornBytes = 1 + rng.IntN(len(n.pending[keep].data)-1)
			}
		}
	}
	for i := count - 1; i >= keep; i-- {
		n.undo(n.pending[i])
	}
	if tornBytes > 0 {
		w := n.pending[keep]
		n.apply(crashChange{off: w.off, data: w.data[:tornBytes]})
	}
	n.pending = nil
}

// resize sets the length of data, zero-filling any growth.
func (n *crashNode) resize(size int64) {
	old := int64(len(n.data))
	if size <= old {
		n.data = n.data[:size]
		return
	}
	if size > int64(cap(n.data)) {
		grown := make([]byte, old, max(size, 2*int64(cap(n.data))))
		copy(grown, n.data)
		n.data = grown
	}
	n.data = n.data[:size]
	clear(n.data[old:])
}

func (n *crashNode) apply(ch crashChange) {
	if ch.truncate {
		n.resize(ch.off)
		return
	}
	if end := ch.off + int64(len(ch.data)); end > int64(len(n.data)) {
		n.resize(end)
	}
	copy(n.data[ch.off:], ch.data)
}

func (n *crashNode) undo(ch crashChange) {
	if ch.truncate {
		if ch.off < ch.oldLen {
			n.data = append(n.data[:ch.off], ch.old...)
		} else {
			n.data = n.data[:ch.oldLen]
		}
		return
	}
	copy(n.data[ch.off:], ch.old)
	n.data = n.data[:ch.oldLen]
}

// change records and applies a write or a truncation.
func (n *crashNode) change(ch crashChange) {
	ch.oldLen = int64(len(n.data))
	if ch.truncate {
		if ch.off < ch.oldLen {
			ch.old = append([]byte(nil), n.data[ch.off:]...)
		}
	} else {
		ch.data = append([]byte(nil), ch.data...)
		if ch.off < ch.oldLen {
			ch.old = append([]byte(nil), n.data[ch.off:min(ch.off+int64(len(ch.data)), ch.oldLen)]...)
		}
	}
	n.pending = append(n.pending, ch)
	n.apply(ch)
	n.modTime = time.Now()
}

func cloneEntries(m map[string]*crashNode) map[string]*crashNode {
	out := make(map[string]*crashNode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mutating counts a mutating operation and says whether the world stopped. c.mu must be held.
func (c *CrashFS) mutating() error {
	if c.stopped {
		return ErrPowerLost
	}
	c.ops++
	if c.stopAt > 0 && c.ops >= c.stopAt {
		c.stopped = true
		return ErrPowerLost
	}
	return nil
}

// lookup returns the directory holding name and the base name. c.mu must be held.
func (c *CrashFS) lookup(name string) (*crashDir, string) {
	return c.dirs[path.Dir(name)], path.Base(name)
}

func (c *CrashFS) Create(name string) (File, error) {
	return c.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (c *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = path.Clean(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := c.mutating(); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	dir, base := c.lookup(name)
	if dir == nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	n, ok := dir.entries[base]
	if !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		n = &crashNode{modTime: time.Now()}
		dir.entries[base] = n
	} else if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	if flag&os.O_TRUNC != 0 && len(n.data) > 0 {
		n.change(crashChange{truncate: true, off: 0})
	}
	readOnly := flag&(os.O_WRONLY|os.O_RDWR) == 0
	return &crashFile{fs: c, name: name, node: n, era: c.era, readOnly: readOnly}, nil
}

func (c *CrashFS) Open(name string) (File, error) { return c.OpenFile(name, os.O_RDONLY, 0) }

func (c *CrashFS) Remove(name string) error {
	name = path.Clean(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutating(); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	if dir, base := c.lookup(name); dir != nil {
		if _, ok := dir.entries[base]; ok {
			delete(dir.entries, base)
			return nil
		}
	}
	if d, ok := c.dirs[name]; ok && name != "/" && name != "." {
		if len(d.entries) > 0 || c.hasSubdir(name) {
			return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
		}
		delete(c.dirs, name)
		return nil
	}
	return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

// hasSubdir reports whether dir has a subdirectory. c.mu must be held.
func (c *CrashFS) hasSubdir(dir string) bool {
	for d := range c.dirs {
		if d != dir && path.Dir(d) == dir {
			return true
		}
	}
	return false
}

func (c *CrashFS) Rename(oldname, newname string) error {
	oldname, newname = path.Clean(oldname), path.Clean(newname)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutating(); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	oldDir, oldBase := c.lookup(oldname)
	newDir, newBase := c.lookup(newname)
	var n *crashNode
	if oldDir != nil {
		n = oldDir.entries[oldBase]
	}
	if n == nil || newDir == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	delete(oldDir.entries, oldBase)
	newDir.entries[newBase] = n
	return nil
}

func (c *CrashFS) MkdirAll(dir string, perm os.FileMode) error {
	dir = path.Clean(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutating(); err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	for d := dir; c.dirs[d] == nil; d = path.Dir(d) {
		if parent, base := c.lookup(d); parent != nil && parent.entries[base] != nil {
			return &os.PathError{Op: "mkdir", Path: d, Err: errors.New("not a directory")}
		}
		c.dirs[d] = newCrashDir()
	}
	return nil
}

func (c *CrashFS) ReadDir(dir string) ([]string, error) {
	dir = path.Clean(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[dir]
	if d == nil {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	for sub := range c.dirs {
		if sub != dir && path.Dir(sub) == dir {
			names = append(names, path.Base(sub))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (c *CrashFS) Stat(name string) (os.FileInfo, error) {
	name = path.Clean(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if dir, base := c.lookup(name); dir != nil {
		if n, ok := dir.entries[base]; ok {
			return memInfo{name: base, size: int64(len(n.data)), modTime: n.modTime}, nil
		}
	}
	if c.dirs[name] != nil {
		return memInfo{name: path.Base(name), dir: true}, nil
	}
	return nil, &os.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (c *CrashFS) SyncDir(dir string) error {
	dir = path.Clean(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.mutating(); err != nil {
		return &os.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	d := c.dirs[dir]
	if d == nil {
		return &os.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	d.durable = cloneEntries(d.entries)
	return nil
}

// DurableNames lists the entries of dir that would survive a power loss now, sorted; files only.
func (c *CrashFS) DurableNames(dir string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[path.Clean(dir)]
	if d == nil {
		return nil
	}
	names := make([]string, 0, len(d.durable))
	for name := range d.durable {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// crashFile is an open file of a CrashFS: a handle on a crashNode, dead after a power loss.
type crashFile struct {
	fs       *CrashFS
	name     string
	node     *crashNode
	era      uint64 // the CrashFS era it was opened in
	readOnly bool
	closed   bool // guarded by fs.mu
}

// check returns the error an operation on f gets, if any. f.fs.mu must be held.
func (f *crashFile) check(op string) error {
	if f.era != f.fs.era {
		return &os.PathError{Op: op, Path: f.name, Err: ErrPowerLost}
	}
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	return nil
}

// checkWrite is check for a mutating operation: it also counts it. f.fs.mu must be held.
func (f *crashFile) checkWrite(op string) error {
	if err := f.check(op); err != nil {
		return err
	}
	if f.readOnly {
		return &os.PathError{Op: op, Path: f.name, Err: errors.New("bad file descriptor")}
	}
	if err := f.fs.mutating(); err != nil {
		return &os.PathError{Op: op, Path: f.name, Err: err}
	}
	return nil
}

func (f *crashFile) Name() string { return f.name }

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: errors.New("negative offset")}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkWrite("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: errors.New("negative offset")}
	}
	f.node.change(crashChange{off: off, data: p})
	return len(p), nil
}

// Writev is one mutating operation; each buffer is recorded as its own change, so a power loss
// can keep the first buffers and tear the next.
func (f *crashFile) Writev(bufs [][]byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkWrite("pwritev"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "pwritev", Path: f.name, Err: errors.New("negative offset")}
	}
	n := 0
	for _, b := range bufs {
		if len(b) > 0 {
			f.node.change(crashChange{off: off + int64(n), data: b})
		}
		n += len(b)
	}
	return n, nil
}

func (f *crashFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("fdatasync"); err != nil {
		return err
	}
	if err := f.fs.mutating(); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
	}
	f.node.pending = nil
	return nil
}

func (f *crashFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkWrite("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: errors.New("negative size")}
	}
	if size != int64(len(f.node.data)) {
		f.node.change(crashChange{truncate: true, off: size})
	}
	return nil
}

func (f *crashFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	return memInfo{name: path.Base(f.name), size: int64(len(f.node.data)), modTime: f.node.modTime}, nil
}

func (f *crashFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *crashFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

var _ FS = (*CrashFS)(nil)
