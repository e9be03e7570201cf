package cluster

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// waitTimeout bounds every wait in these tests: generous for a loaded 2-core machine, and only
// ever reached when something is broken.
const waitTimeout = 20 * time.Second

var testNow = time.UnixMilli(1_700_000_000_000)

func fixedNow() time.Time { return testNow }

// makeBatch returns a fresh uncompressed batch of n records with timestamps ts, ts+1, …
func makeBatch(n int, ts int64, valueSize int) []byte {
	var b batch.Builder
	b.Reset()
	for i := 0; i < n; i++ {
		b.Append([]byte("k"), []byte(strings.Repeat("v", valueSize)), ts+int64(i), nil)
	}
	return append([]byte(nil), b.Finish()...)
}

// fixCRC recomputes the CRC of a batch after a test changed a covered field.
func fixCRC(b []byte) {
	c := batch.Checksum(b)
	b[17], b[18], b[19], b[20] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

type appendDone struct {
	slot int
	res  AppendResult
}

// collector is a Completer that records results in completion order. hold, when set, blocks the
// replica goroutine inside AppendDone of slot 0 until released, so that requests submitted
// meanwhile are drained as one group.
type collector struct {
	ch      chan appendDone
	hold    chan struct{}
	holding chan struct{}
	check   func(slot int) // runs on the replica goroutine before recording
}

func newCollector() *collector { return &collector{ch: make(chan appendDone, 1024)} }

func (c *collector) AppendDone(slot int, res AppendResult) {
	if c.check != nil {
		c.check(slot)
	}
	c.ch <- appendDone{slot, res}
	if slot == -1 && c.hold != nil {
		close(c.holding)
		<-c.hold
	}
}

func (c *collector) next(t *testing.T) appendDone {
	t.Helper()
	select {
	case d := <-c.ch:
		return d
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for AppendDone")
		return appendDone{}
	}
}

// blockReplica submits a request (slot -1) whose completion parks the replica goroutine until the
// returned release function is called. Its own result is consumed.
func blockReplica(t *testing.T, r *Replica, c *collector) (release func()) {
	t.Helper()
	c.hold, c.holding = make(chan struct{}), make(chan struct{})
	if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: -1}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); d.slot != -1 || d.res.Err != nil {
		t.Fatalf("blocker: %+v", d)
	}
	select {
	case <-c.holding:
	case <-time.After(waitTimeout):
		t.Fatal("replica did not park")
	}
	var once sync.Once
	return func() { once.Do(func() { close(c.hold) }) }
}

func codeOf(err error) errcode.Code { return errcode.Of(err) }

func openLog(t *testing.T, fs vfs.FS, dir string) *partition.Log {
	t.Helper()
	l, err := partition.Open(partition.Options{FS: fs, Dir: dir, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTestReplica(t *testing.T, fs vfs.FS, dir string, overrides map[string]string, policy FsyncPolicy) *Replica {
	t.Helper()
	cfg, err := BuildTopicConfig(overrides, DefaultDefaults)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica(ReplicaOptions{Topic: "t", Log: openLog(t, fs, dir), Config: cfg, Fsync: policy, Now: fixedNow})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// readAll reads every committed batch of r.
func readAll(t *testing.T, r *Replica) [][]byte {
	t.Helper()
	var out [][]byte
	for next := r.LogStartOffset(); next < r.HighWatermark(); {
		b, err := r.Read(nil, next, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		if err := batch.Split(b, func(one []byte) error {
			h, err := batch.Validate(one)
			if err != nil {
				return err
			}
			out = append(out, one)
			next = h.NextOffset()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// countingFS counts writes and syncs of .log files and tracks which have unsynced writes.
type countingFS struct {
	vfs.FS
	mu     sync.Mutex
	writes int
	syncs  int
	dirty  map[string]bool
}

func newCountingFS(inner vfs.FS) *countingFS {
	return &countingFS{FS: inner, dirty: map[string]bool{}}
}

func (c *countingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c}, nil
}

func (c *countingFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }
func (c *countingFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }
func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	return c.wrap(c.FS.OpenFile(name, flag, perm))
}

func (c *countingFS) counts() (writes, syncs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.syncs
}

func (c *countingFS) anyDirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.dirty {
		if d {
			return true
		}
	}
	return false
}

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (f *countingFile) isLog() bool { return strings.HasSuffix(f.Name(), ".log") }

func (f *countingFile) note(write bool) {
	if !f.isLog() {
		return
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if write {
		f.fs.writes++
		f.fs.dirty[f.Name()] = true
	} else {
		f.fs.syncs++
		f.fs.dirty[f.Name()] = false
	}
}

func (f *countingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.note(true)
	return n, err
}

func (f *countingFile) Writev(bufs [][]byte, off int64) (int, error) {
	n, err := f.File.Writev(bufs, off)
	f.note(true)
	return n, err
}

func (f *countingFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.note(false)
	}
	return err
}
