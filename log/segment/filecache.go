package segment

import (
	"container/list"
	"os"
	"sync"

	"github.com/thorstream/thorstream/log/vfs"
)

// FileCache bounds how many .log files of sealed segments are open at once, across every
// partition that shares it: descriptors follow what is being read, not how much history the
// broker keeps. A sealed segment's .log is opened on the first read and closed when it is the
// least recently used idle one and the cache is over its capacity. Active segments' files (a
// .log and two indexes each) are pinned: they do not count and are never closed by the cache.
// Sealed segments keep no index file open: their indexes are in memory.
//
// All state is guarded by mu, held only for bookkeeping: files are opened and closed outside it.
type FileCache struct {
	mu       sync.Mutex
	capacity int
	open     int       // unpinned open files
	idle     list.List // of *logHandle: unpinned, open, no reader
	opened   int64     // files opened by readers, for tests and metrics
}

// DefaultOpenSegments is the capacity of DefaultFileCache.
const DefaultOpenSegments = 1024

// DefaultFileCache is the cache of logs whose options name none.
var DefaultFileCache = NewFileCache(DefaultOpenSegments)

// NewFileCache returns a cache keeping at most capacity sealed .log files open (at least 1).
func NewFileCache(capacity int) *FileCache {
	return &FileCache{capacity: max(capacity, 1)}
}

// Open is the number of sealed segments' .log files open now.
func (c *FileCache) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// Opened is the number of times a sealed segment's .log was opened for a reader.
func (c *FileCache) Opened() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened
}

// logHandle is a segment's .log as readers see it. Fields are guarded by cache.mu.
type logHandle struct {
	cache  *FileCache
	fs     vfs.FS
	path   string
	f      vfs.File
	refs   int
	pinned bool          // the segment is active: f stays open, the cache does not count it
	elem   *list.Element // in cache.idle
	closed bool          // the segment was closed or deleted
}

// acquire returns the open file for a read; release must follow.
func (h *logHandle) acquire() (vfs.File, error) {
	c := h.cache
	c.mu.Lock()
	if h.closed {
		c.mu.Unlock()
		return nil, ErrDeleted
	}
	if h.f != nil {
		h.refs++
		if h.elem != nil {
			c.idle.Remove(h.elem)
			h.elem = nil
		}
		f := h.f
		c.mu.Unlock()
		return f, nil
	}
	path := h.path
	c.mu.Unlock()

	f, err := h.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	var extra []vfs.File
	switch {
	case h.closed:
		c.mu.Unlock()
		f.Close()
		return nil, ErrDeleted
	case h.f != nil: // another reader opened it meanwhile
		extra = append(extra, f)
	default:
		h.f = f
		c.open++
		c.opened++
	}
	h.refs++
	got := h.f
	extra = c.evictLocked(extra)
	c.mu.Unlock()
	closeAll(extra)
	return got, nil
}

func (h *logHandle) release() {
	c := h.cache
	c.mu.Lock()
	h.refs--
	var victims []vfs.File
	if h.refs == 0 && h.f != nil && !h.pinned && h.elem == nil {
		h.elem = c.idle.PushBack(h)
		victims = c.evictLocked(nil)
	}
	c.mu.Unlock()
	closeAll(victims)
}

// pin makes f (opened by the writer) the handle's file for as long as the segment is active.
func (h *logHandle) pin(f vfs.File) {
	c := h.cache
	c.mu.Lock()
	var old vfs.File
	if h.f != nil && h.f != f {
		old = h.f
		if !h.pinned {
			c.open--
		}
	}
	if h.elem != nil {
		c.idle.Remove(h.elem)
		h.elem = nil
	}
	h.f, h.pinned, h.closed = f, true, false
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// hold keeps the .log open and uncounted until close, so reads never reopen it by path: the file
// at that path may be about to be replaced.
func (h *logHandle) hold() error {
	if _, err := h.acquire(); err != nil {
		return err
	}
	c := h.cache
	c.mu.Lock()
	if !h.pinned {
		h.pinned = true
		c.open--
	}
	h.refs--
	c.mu.Unlock()
	return nil
}

// rename points the handle at the file's new path (it was renamed under the open descriptor).
func (h *logHandle) rename(path string) {
	h.cache.mu.Lock()
	h.path = path
	h.cache.mu.Unlock()
}

// unpin hands the file over to the cache: it is counted, and closed when idle and evicted.
func (h *logHandle) unpin() {
	c := h.cache
	c.mu.Lock()
	var victims []vfs.File
	if h.pinned && !h.closed {
		h.pinned = false
		if h.f != nil {
			c.open++
			if h.refs == 0 {
				h.elem = c.idle.PushBack(h)
			}
		}
		victims = c.evictLocked(nil)
	}
	c.mu.Unlock()
	closeAll(victims)
}

// close closes the file for good; a reader holding it fails its read (see Segment.readErr).
func (h *logHandle) close() error {
	c := h.cache
	c.mu.Lock()
	f := h.f
	if f != nil && !h.pinned {
		c.open--
	}
	if h.elem != nil {
		c.idle.Remove(h.elem)
		h.elem = nil
	}
	h.f, h.closed, h.pinned = nil, true, false
	c.mu.Unlock()
	if f != nil {
		return f.Close()
	}
	return nil
}

// evictLocked takes idle files off while the cache is over capacity and returns them, with
// extra, to be closed once mu is released.
func (c *FileCache) evictLocked(extra []vfs.File) []vfs.File {
	for c.open > c.capacity {
		front := c.idle.Front()
		if front == nil {
			break
		}
		h := front.Value.(*logHandle)
		c.idle.Remove(front)
		h.elem = nil
		extra = append(extra, h.f)
		h.f = nil
		c.open--
	}
	return extra
}

func closeAll(files []vfs.File) {
	for _, f := range files {
		f.Close()
	}
}
