package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// The compaction crash test builds a keyed log on a vfs.CrashFS (8 KiB segments, compressed and
// uncompressed batches, tombstones, an idempotent producer), syncs it, and counts the mutating
// filesystem operations of one whole cleaning (passes until nothing is left to clean). Then, for
// every one of those operations, it builds the same log again, stops the world at that operation
// in the middle of the cleaning four times over: the power goes and a random part of what was
// not synced survives; the power goes and none of it does; the process is killed (everything it
// wrote stays, synced or not); that one operation fails with an I/O error (a fenced log is closed
// and reopened, as the broker does; one that is not goes on cleaning). Then it reopens the log
// and checks:
//
//   - Open succeeds, and the log start and end offsets are those of the log before cleaning;
//   - every record it serves is the one appended at that offset, byte for byte (key, value,
//     timestamp, header); it serves every record the uninterrupted cleaning keeps, and every key's
//     latest record (an expired tombstone may be gone, and then no record of its key is left);
//   - at most one record per key below the first dirty offset: nothing a swap removed comes back;
//   - the idempotent producer's last batch is still there;
//   - no stray file in the directory (no *.cleaned, *.tmp, nor files of cut bytes: everything
//     was durable before the cleaning began);
//   - after the first kind of power loss or a kill, a first restart cut short the same way (at one
//     of its first 40 operations) changes none of this;
//   - what the restart repaired is durable: after a power loss right after it, the log is the same;
//   - a further cleaning completes, and the log then serves what the uninterrupted cleaning
//     followed by the same further cleaning serves.
//
// The larger scenario crashes at a sample of its operations unless THORSTREAM_CLEAN_CRASH_FULL=1;
// with -short (the race-detector pass) the small scenarios crash at a sample and the large one
// is left to the plain pass.

// ccScenario is one keyed log and how it is cleaned.
type ccScenario struct {
	name         string
	seed         uint64
	batches      int
	keys         int
	valueSize    int
	mapBytes     int64 // the offset map of the cleaning under test: a small one makes several passes
	cleanSegment int64 // CleanOptions.SegmentBytes: how far cleaned segments merge
	// expire cleans the log once, then two hours later appends more: the cleaning under test also
	// removes tombstones whose delete.retention.ms (one hour) has passed.
	expire bool
	sample int // crash points sampled; 0: every operation
}

// ccLog is one build of a scenario.
type ccLog struct {
	fs        *vfs.CrashFS
	kill      *killFS // the log's FS: the CrashFS, and a process that can be killed
	opts      Options
	l         *Log
	w         *compactWriter
	c         *clock
	producers map[int64]int64 // producer id → base offset of its last batch
	lastBatch batch.Header    // that batch's header
	// expiredBelow: tombstones below it were first cleaned more than delete.retention.ms before
	// the cleaning under test (0 when none were).
	expiredBelow int64
}

func ccBuild(t testing.TB, sc *ccScenario) *ccLog {
	t.Helper()
	x := &ccLog{fs: vfs.NewCrashFS(), c: newClock()}
	x.kill = &killFS{FS: x.fs}
	x.opts = testOptions(x.kill, "/p", x.c)
	x.opts.SegmentBytes = 8 << 10
	x.opts.Files = segment.NewFileCache(16) // not the shared cache: crashed logs are never closed
	x.l = mustOpen(t, x.opts)
	x.w = &compactWriter{t: t, l: x.l, rng: rand.New(rand.NewPCG(sc.seed, 0xc1ea)), keys: sc.keys, pid: 7}
	for i := 0; i < sc.batches; i++ {
		x.w.appendBatch(1+x.w.rng.IntN(20), x.c.Now().UnixMilli(), sc.valueSize)
	}
	if err := x.l.Sync(); err != nil {
		t.Fatal(err)
	}
	if sc.expire {
		x.findProducer(t)
		if _, err := ccClean(x, sc); err != nil {
			t.Fatal(err)
		}
		x.expiredBelow = x.l.CleanerProgress().FirstDirty
		x.c.Advance(2 * time.Hour)
		for i := 0; i < sc.batches/4; i++ {
			x.w.appendBatch(1+x.w.rng.IntN(20), x.c.Now().UnixMilli(), sc.valueSize)
		}
		if err := x.l.roll(); err != nil { // so the whole log but the new active segment is dirty
			t.Fatal(err)
		}
		x.w.appendBatch(1, x.c.Now().UnixMilli(), sc.valueSize)
		if err := x.l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	x.findProducer(t)
	return x
}

// findProducer notes the last batch of the idempotent producer.
func (x *ccLog) findProducer(t testing.TB) {
	t.Helper()
	x.producers = map[int64]int64{}
	err := x.l.ScanHeaders(x.l.StartOffset(), func(h batch.Header) error {
		if h.ProducerID == x.w.pid {
			x.producers[h.ProducerID] = h.BaseOffset
			x.lastBatch = h
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.producers) == 0 {
		t.Fatal("the scenario wrote no idempotent batch")
	}
}

// ccClean runs forced passes until one finds nothing to clean; it returns the first error (a
// panic is reported as one).
func ccClean(x *ccLog, sc *ccScenario) (passes []CleanStats, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the cleaning panicked: %v\n%s", r, debug.Stack())
		}
	}()
	m := NewOffsetMap(sc.mapBytes)
	producers := x.producers
	for i := 0; i < 100; i++ {
		st, cerr := x.l.Clean(CleanOptions{
			Now: x.c.Now(), Force: true, Map: m, DeleteRetention: time.Hour, SegmentBytes: sc.cleanSegment,
			ReadBufferBytes: 8 << 10, OnWriter: directWriter,
			ProducerBatches: func() map[int64]int64 { return producers },
		})
		if cerr != nil {
			return passes, cerr
		}
		if !st.Ran {
			return passes, nil
		}
		passes = append(passes, st)
	}
	return passes, errors.New("the cleaning does not finish")
}

// ccReference is what the uninterrupted cleaning of a scenario does.
type ccReference struct {
	buildOps   int64 // mutating operations of the build
	ops        int64 // of the cleaning
	passes     []CleanStats
	start, end int64
	before     []keyedRecord // the log before cleaning: everything in it was synced
	kept       []keyedRecord // after the cleaning
	final      []keyedRecord // after a further cleanAll
}

func TestCleanCrash(t *testing.T) {
	full := os.Getenv("THORSTREAM_CLEAN_CRASH_FULL") == "1"
	scenarios := []*ccScenario{
		{name: "one pass", seed: 1, batches: 100, keys: 60, valueSize: 100, mapBytes: 1 << 20, cleanSegment: 16 << 10},
		{name: "passes and expired tombstones", seed: 2, batches: 30, keys: 50, valueSize: 100, mapBytes: 600,
			cleanSegment: 8 << 10, expire: true},
		{name: "large", seed: 3, batches: 300, keys: 200, valueSize: 100, mapBytes: 1100, cleanSegment: 12 << 10,
			expire: true, sample: 24},
	}
	if testing.Short() && !full {
		scenarios = scenarios[:2] // the large one runs in the plain pass
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			switch {
			case full:
				sc.sample = 0
			case testing.Short():
				// The race-detector pass: the cleaning runs on one goroutine here, so the
				// detector has little to find, and it makes every run ten times slower.
				sc.sample = 10
			}
			ref := ccRun(t, sc)
			points := make([]int64, 0, ref.ops+1)
			for n := int64(1); n <= ref.ops+1; n++ { // ops+1: the cleaning completes, then the power goes
				points = append(points, n)
			}
			if sc.sample > 0 && len(points) > sc.sample {
				rng := rand.New(rand.NewPCG(sc.seed, 0x5a3b1e))
				rng.Shuffle(len(points), func(i, j int) { points[i], points[j] = points[j], points[i] })
				points = points[:sc.sample]
				slices.Sort(points)
			}
			failures := 0
			for _, n := range points {
				for _, crash := range []ccCrash{ccPowerLoss, ccPowerLossAll, ccKill, ccIOError} {
					name := fmt.Sprintf("%v at %d of %d", crash, n, ref.ops)
					if !t.Run(name, func(t *testing.T) { ccCrashRun(t, sc, ref, n, crash) }) {
						if failures++; failures >= 3 {
							t.Fatalf("stopping after %d failed crash points", failures)
						}
					}
				}
			}
			segs := 0
			for _, st := range ref.passes {
				segs += st.SegmentsAfter
			}
			t.Logf("%s: %d records, %d kept by %d passes (%d swaps) of %d mutating operations; crashed at %d of them",
				sc.name, len(ref.before), len(ref.kept), len(ref.passes), segs, ref.ops, len(points))
		})
	}
}

// ccRun cleans a build of sc without a crash and records what it did.
func ccRun(t *testing.T, sc *ccScenario) *ccReference {
	t.Helper()
	x := ccBuild(t, sc)
	ref := &ccReference{buildOps: x.fs.MutatingOps(), start: x.l.StartOffset(), end: x.l.EndOffset()}
	ref.before = readRecords(t, x.l)
	passes, err := ccClean(x, sc)
	if err != nil {
		t.Fatal(err)
	}
	ref.passes = passes
	ref.ops = x.fs.MutatingOps() - ref.buildOps
	if len(passes) == 0 || ref.ops == 0 {
		t.Fatal("the cleaning did nothing")
	}
	if sc.mapBytes < 1<<20 && len(passes) < 2 {
		t.Fatalf("%d pass(es): the map was meant to make several", len(passes))
	}
	// Every scenario swaps several cleaned segments in one pass, and merges segments.
	swaps, merged := 0, false
	for _, st := range passes {
		swaps = max(swaps, st.SegmentsAfter)
		merged = merged || st.SegmentsAfter < st.SegmentsBefore
	}
	if swaps < 2 || !merged {
		t.Fatalf("passes %+v: no pass swaps several cleaned segments in, or none merges segments", passes)
	}
	var expired int64
	for _, st := range passes {
		expired += st.Tombstones
	}
	if sc.expire && expired == 0 {
		t.Fatalf("passes %+v: no expired tombstone removed", passes)
	}
	ref.kept = readRecords(t, x.l)
	if len(ref.kept) >= len(ref.before) {
		t.Fatalf("the cleaning kept %d of %d records", len(ref.kept), len(ref.before))
	}
	if err := checkRecovered(ref.kept, x, ref); err != nil {
		t.Fatalf("uninterrupted cleaning: %v", err)
	}
	cleanAll(t, x.l, x.c, NewOffsetMap(1<<20), time.Hour)
	ref.final = readRecords(t, x.l)
	checkCompacted(t, x.l, x.w, x.expiredBelow)
	return ref
}

// ccCrash is how a crash run stops.
type ccCrash int

const (
	ccPowerLoss    ccCrash = iota // the power goes; a random part of what was not synced survives
	ccPowerLossAll                // the power goes; nothing that was not synced survives
	ccKill                        // the process is killed: what it wrote stays; the power goes after the restart
	// One operation fails with an I/O error and the process goes on: a fenced log is closed and
	// reopened, as the broker does; one that is not goes on cleaning.
	ccIOError
)

func (c ccCrash) String() string {
	return [...]string{"power loss", "power loss of everything unsynced", "kill", "I/O error"}[c]
}

// ccCrashRun builds sc, stops the world at the n-th mutating operation of its cleaning, reopens
// the log and checks it (see the notes at the top of the file).
func ccCrashRun(t *testing.T, sc *ccScenario, ref *ccReference, n int64, crash ccCrash) {
	x := ccBuild(t, sc)
	if ops := x.fs.MutatingOps(); ops != ref.buildOps || x.l.EndOffset() != ref.end {
		t.Fatalf("the build is not deterministic: %d operations and end %d, then %d and %d", ref.buildOps, ref.end, ops, x.l.EndOffset())
	}
	stopErr := vfs.ErrPowerLost
	switch crash {
	case ccKill:
		x.kill.killAfter(n)
		stopErr = errKilled
	case ccIOError:
		x.kill.failAt(n)
		stopErr = errIO
	default:
		x.fs.CrashAfter(n)
	}
	_, err := ccClean(x, sc)
	switch {
	case n <= ref.ops && err == nil:
		t.Fatalf("the cleaning completed although the world stopped at operation %d of %d", n, ref.ops)
	case n <= ref.ops && !errors.Is(err, stopErr):
		t.Fatalf("the cleaning failed with an error that is not the crash: %v", err)
	case n > ref.ops && err != nil:
		t.Fatalf("the cleaning failed without a crash: %v", err)
	}
	rng := rand.New(rand.NewPCG(sc.seed, uint64(n)<<2|uint64(crash)))
	switch crash {
	case ccPowerLoss:
		x.fs.PowerLoss(rng)
	case ccPowerLossAll:
		x.fs.PowerLoss(nil)
	case ccIOError:
		if err != nil && !errors.Is(err, ErrFenced) {
			// Not fenced: the log goes on, and the next cleaning completes.
			if _, err := ccClean(x, sc); err != nil {
				t.Fatalf("cleaning again after the I/O error: %v", err)
			}
		}
		if cerr := x.l.Close(); cerr != nil && !errors.Is(cerr, ErrFenced) {
			t.Fatalf("close after the I/O error: %v", cerr)
		}
	}
	// Otherwise x.l is dead, as the process that held it: it is never used or closed again.
	opts := x.opts
	opts.FS = x.fs // the restarted process

	// After a power loss or a kill, the first restart is itself cut short at one of its first
	// operations, the same way: what it completed of a swap, it completes again.
	if crash == ccPowerLoss || crash == ccKill {
		m := 1 + rng.Int64N(40)
		cut := opts
		if crash == ccPowerLoss {
			x.fs.CrashAfter(m)
		} else {
			k := &killFS{FS: x.fs}
			k.killAfter(m)
			cut.FS = k
		}
		_, err := Open(cut) // dead too, whether it completed or not
		if err != nil && !errors.Is(err, stopErr) {
			t.Fatalf("open cut at its operation %d: %v", m, err)
		}
		if crash == ccPowerLoss {
			x.fs.PowerLoss(rng)
		}
	}
	open := func(when string) *Log {
		t.Helper()
		l, err := Open(opts)
		if err != nil {
			t.Fatalf("open %s: %v", when, err)
		}
		x.l, x.w.l = l, l
		if l.StartOffset() != ref.start || l.EndOffset() != ref.end {
			t.Fatalf("%s: offsets [%d, %d) became [%d, %d)", when, ref.start, ref.end, l.StartOffset(), l.EndOffset())
		}
		got := readRecords(t, l)
		if err := checkRecovered(got, x, ref); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !sc.expire {
			checkCompacted(t, l, x.w, 0)
		}
		if err := x.checkProducer(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if err := checkCleanDir(x.fs, x.opts.Dir, l); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return l
	}
	l := open("after the crash")
	// What the restart repaired is durable: a power loss now changes nothing.
	want := readRecords(t, l)
	x.fs.PowerLoss(nil)
	l = open("after a power loss following the restart")
	if d := diffRecords(want, readRecords(t, l)); d != "" {
		t.Fatalf("a power loss after the restart changed the log: %s", d)
	}
	defer l.Close()

	// A further cleaning completes and leaves what it leaves after an uninterrupted one.
	cleanAll(t, l, x.c, NewOffsetMap(1<<20), time.Hour)
	if d := diffRecords(ref.final, readRecords(t, l)); d != "" {
		t.Fatalf("after a further cleaning: %s", d)
	}
	checkCompacted(t, l, x.w, x.expiredBelow)
	if l.StartOffset() != ref.start || l.EndOffset() != ref.end {
		t.Fatalf("after a further cleaning: offsets [%d, %d) became [%d, %d)", ref.start, ref.end, l.StartOffset(), l.EndOffset())
	}
	if err := checkCleanDir(x.fs, x.opts.Dir, l); err != nil {
		t.Fatalf("after a further cleaning: %v", err)
	}
}

var errKilled = errors.New("process killed")

// killFS is a process killed at a chosen mutating filesystem operation (those CrashFS counts):
// that operation and every later one fail with errKilled and change nothing, and whatever was
// done before stays as the operating system holds it, durable or not (the power stays on).
//
// failAt makes it an I/O error instead: that operation alone fails, with errIO, and the process
// goes on.
type killFS struct {
	vfs.FS
	mu     sync.Mutex
	ops    int64
	killAt int64 // 0: not armed
	once   bool  // only the operation at killAt fails
}

var errIO = errors.New("injected I/O error")

func (k *killFS) killAfter(n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killAt, k.once = k.ops+n, false
}

func (k *killFS) failAt(n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killAt, k.once = k.ops+n, true
}

func (k *killFS) mutating() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ops++
	switch {
	case k.killAt <= 0 || k.ops < k.killAt:
		return nil
	case !k.once:
		return errKilled
	case k.ops == k.killAt:
		return errIO
	}
	return nil
}

func (k *killFS) Create(name string) (vfs.File, error) {
	return k.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (k *killFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := k.mutating(); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	f, err := k.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &killFile{File: f, k: k}, nil
}

func (k *killFS) Remove(name string) error {
	if err := k.mutating(); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return k.FS.Remove(name)
}

func (k *killFS) Rename(oldname, newname string) error {
	if err := k.mutating(); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return k.FS.Rename(oldname, newname)
}

func (k *killFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := k.mutating(); err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return k.FS.MkdirAll(dir, perm)
}

func (k *killFS) SyncDir(dir string) error {
	if err := k.mutating(); err != nil {
		return &os.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	return k.FS.SyncDir(dir)
}

type killFile struct {
	vfs.File
	k *killFS
}

func (f *killFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.k.mutating(); err != nil {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.WriteAt(p, off)
}

func (f *killFile) Writev(bufs [][]byte, off int64) (int, error) {
	if err := f.k.mutating(); err != nil {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.Writev(bufs, off)
}

func (f *killFile) Sync() error {
	if err := f.k.mutating(); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *killFile) Truncate(size int64) error {
	if err := f.k.mutating(); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return f.File.Truncate(size)
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func sameRecord(a, b keyedRecord) bool {
	return a.offset == b.offset && a.key == b.key && a.ts == b.ts && bytes.Equal(a.value, b.value) && (a.value == nil) == (b.value == nil)
}

// diffRecords describes the first difference between two record lists, "" if none.
func diffRecords(want, got []keyedRecord) string {
	for i := 0; i < min(len(want), len(got)); i++ {
		if !sameRecord(want[i], got[i]) {
			return fmt.Sprintf("record %d is %s, want %s", i, recordString(got[i]), recordString(want[i]))
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("%d records, want %d", len(got), len(want))
	}
	return ""
}

func recordString(r keyedRecord) string {
	if r.value == nil {
		return fmt.Sprintf("{offset %d key %s ts %d tombstone}", r.offset, r.key, r.ts)
	}
	return fmt.Sprintf("{offset %d key %s ts %d value %d bytes of %#x}", r.offset, r.key, r.ts, len(r.value), r.value[:min(len(r.value), 1)])
}

// checkRecovered checks the records of a log whose cleaning may have been cut anywhere.
func checkRecovered(got []keyedRecord, x *ccLog, ref *ccReference) error {
	firstDirty := x.l.CleanerProgress().FirstDirty
	before := map[int64]keyedRecord{}
	for _, r := range ref.before {
		before[r.offset] = r
	}
	present := map[int64]bool{}
	byKey := map[string][]int64{}
	for _, r := range got {
		want, ok := before[r.offset]
		if !ok {
			return fmt.Errorf("record %s: the log held none at that offset before cleaning", recordString(r))
		}
		if !sameRecord(r, want) {
			return fmt.Errorf("record %s: the log held %s at that offset before cleaning", recordString(r), recordString(want))
		}
		present[r.offset] = true
		byKey[r.key] = append(byKey[r.key], r.offset)
	}
	for _, r := range ref.kept {
		if !present[r.offset] {
			return fmt.Errorf("record %s lost: the uninterrupted cleaning keeps it (first dirty offset %d)", recordString(r), firstDirty)
		}
	}
	for _, r := range ref.before {
		if r.offset >= firstDirty && !present[r.offset] {
			return fmt.Errorf("record %s at or above the first dirty offset %d lost", recordString(r), firstDirty)
		}
	}
	for key, want := range x.w.latest() {
		if present[want.offset] {
			continue
		}
		if want.value != nil || want.offset >= x.expiredBelow {
			return fmt.Errorf("key %s: latest record %s lost (first dirty offset %d)", key, recordString(want), firstDirty)
		}
		if offsets := byKey[key]; len(offsets) > 0 {
			return fmt.Errorf("key %s: its expired tombstone at %d is gone but older records at %v came back", key, want.offset, offsets)
		}
	}
	for key, offsets := range byKey {
		below := 0
		for _, o := range offsets {
			if o < firstDirty {
				below++
			}
		}
		if below > 1 {
			return fmt.Errorf("key %s: %d records below the first dirty offset %d (at %v)", key, below, firstDirty, offsets)
		}
	}
	return nil
}

// checkProducer checks that the idempotent producer's last batch is in the log with its producer
// fields.
func (x *ccLog) checkProducer() error {
	base := x.producers[x.w.pid]
	var found *batch.Header
	err := x.l.ScanHeaders(base, func(h batch.Header) error {
		if h.BaseOffset == base {
			found = &h
		}
		return nil
	})
	if err != nil {
		return err
	}
	want := x.lastBatch
	switch {
	case found == nil:
		return fmt.Errorf("the idempotent producer's last batch at %d is gone", base)
	case found.ProducerID != want.ProducerID || found.ProducerEpoch != want.ProducerEpoch ||
		found.BaseSequence != want.BaseSequence || found.LastOffsetDelta != want.LastOffsetDelta:
		return fmt.Errorf("the idempotent producer's last batch at %d is %+v, want the producer fields of %+v", base, *found, want)
	}
	return nil
}

// checkCleanDir checks the partition directory holds the files of l's segments and its
// checkpoints, nothing else.
func checkCleanDir(fs vfs.FS, dir string, l *Log) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	segs := map[int64]bool{}
	for _, b := range l.Segments() {
		segs[b] = true
	}
	checkpoints := []string{leaderEpochCheckpoint, logStartCheckpoint, recoveryPointCheckpoint, cleanerCheckpoint}
	logs := map[int64]bool{}
	for _, name := range names {
		if strings.HasSuffix(name, segment.CleanedSuffix) || strings.HasSuffix(name, tmpSuffix) {
			return fmt.Errorf("stray file %s (directory: %v)", name, names)
		}
		if _, ok := segment.IsDroppedFile(name); ok {
			return fmt.Errorf("file of cut bytes %s, although everything was durable before the cleaning (directory: %v)", name, names)
		}
		base, suffix, ok := segment.ParseFileName(name)
		switch {
		case ok && !segs[base]:
			return fmt.Errorf("file %s of no segment of the log %v", name, l.Segments())
		case ok && suffix == segment.LogSuffix:
			logs[base] = true
		case !ok && !slices.Contains(checkpoints, name):
			return fmt.Errorf("unknown file %s", name)
		}
	}
	for b := range segs {
		if !logs[b] {
			return fmt.Errorf("segment %d has no .log (directory: %v)", b, names)
		}
	}
	return nil
}

// TestCleanConcurrentReaders runs readers that read the whole log again and again while a cleaner
// goroutine runs passes and swaps cleaned segments in, and the writer goroutine appends and syncs.
// The writer serves appends and the cleaner's swaps from channels, as a partition's goroutine
// does; each append waits for a read of the whole log to complete, so appends, passes and reads
// interleave however fast the box. Every read of the whole log must see offsets increase, get no
// error inside [start, end), and every record it sees must be the one appended at that offset.
// Run it with -race.
func TestCleanConcurrentReaders(t *testing.T) {
	batches := 600
	if raceDetector {
		batches = 300
	}
	// The batches and the model: written once to a scratch log, read back as stored.
	c := newClock()
	scratch := mustOpen(t, testOptions(vfs.NewMem(), "/scratch", c))
	w := &compactWriter{t: t, l: scratch, rng: rand.New(rand.NewPCG(9, 9)), keys: 150, pid: 7}
	var raw [][]byte
	for i := 0; i < batches; i++ {
		base := scratch.NextOffset()
		w.appendBatch(1+w.rng.IntN(20), c.Now().UnixMilli(), 60)
		b, err := scratch.Read(nil, base, 1<<20, scratch.EndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	appendedEnd := scratch.EndOffset()
	if err := scratch.Close(); err != nil {
		t.Fatal(err)
	}
	written := map[int64]keyedRecord{}
	for _, r := range w.written {
		written[r.offset] = r
	}

	opts := testOptions(vfs.NewMem(), "/p", c)
	opts.SegmentBytes = 4 << 10
	opts.Files = segment.NewFileCache(8)
	l := mustOpen(t, opts)
	defer l.Close()
	w.l = l // for checkCompacted at the end

	type writerCall struct {
		fn   func() error
		done chan error
	}
	var (
		appends         = make(chan []byte)
		calls           = make(chan writerCall)
		synced          = make(chan struct{}, 1) // a Sync made more of the log cleanable
		swapped         = make(chan struct{}, 1) // a cleaned segment was swapped in
		readDone        = make(chan struct{}, 1) // a read of the whole log completed
		appendsFinished = make(chan struct{})
		cleanerDone     = make(chan struct{})
		writerDone      = make(chan struct{})
		readersStop     atomic.Bool
		swaps           atomic.Int64
		errs            = make(chan error, 16)
		wg              sync.WaitGroup
	)
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	// The writer goroutine: it alone calls the writer methods, and runs the cleaner's swaps.
	go func() {
		defer close(writerDone)
		in := appends
		n := 0
		for {
			select {
			case b, ok := <-in:
				if !ok {
					if err := l.Sync(); err != nil {
						report(fmt.Errorf("sync: %w", err))
					}
					close(appendsFinished)
					in = nil
					continue
				}
				if err := l.Append([][]byte{b}); err != nil {
					report(fmt.Errorf("append at %d: %w", l.NextOffset(), err))
					continue
				}
				if n++; n%5 == 0 {
					if err := l.Sync(); err != nil {
						report(fmt.Errorf("sync: %w", err))
					}
					signal(synced)
				}
			case call := <-calls:
				call.done <- call.fn()
			case <-cleanerDone:
				return
			}
		}
	}()
	// The producer: one batch after each completed read of the whole log.
	go func() {
		defer close(appends)
		for _, b := range raw {
			select {
			case <-readDone:
			case <-cleanerDone: // the cleaner failed: stop
				return
			}
			appends <- b
		}
	}()

	// The cleaner goroutine: passes until the appends are over and nothing is left to clean.
	var passes int
	go func() {
		defer close(cleanerDone)
		onWriter := func(fn func() error) error {
			call := writerCall{fn: fn, done: make(chan error, 1)}
			calls <- call // the writer serves calls until cleanerDone
			err := <-call.done
			if err == nil {
				swaps.Add(1)
				signal(swapped)
			}
			return err
		}
		m := NewOffsetMap(64 << 10)
		for {
			finished := closed(appendsFinished)
			st, err := l.Clean(CleanOptions{Now: c.Now(), Force: true, Map: m, DeleteRetention: time.Hour,
				SegmentBytes: 8 << 10, ReadBufferBytes: 4 << 10, OnWriter: onWriter})
			if err != nil {
				report(fmt.Errorf("cleaning: %w", err))
				return
			}
			if st.Ran {
				passes++
				continue
			}
			if finished {
				return
			}
			select {
			case <-synced:
			case <-appendsFinished:
			}
		}
	}()

	// The readers: each read of the whole log goes from the start to the end offset as it was when
	// the read began. The straddling reader holds its position after its first read call until a
	// swap happens, so its reads see swaps in the middle.
	//
	// A bounded reader reads below the end as a fetch reads below the high watermark: it gets
	// nothing when the cleaner removed every batch from its offset up to that end, which a read
	// without a bound then confirms. An unbounded reader reads on to the log end as it is at each
	// read: it must always get a batch, the last one of the log at least.
	var reads, straddled atomic.Int64
	readWhole := func(straddle, bounded bool) error {
		select {
		case <-swapped: // a swap before swapsBefore is loaded does not count
		default:
		}
		start, end := l.StartOffset(), l.EndOffset()
		swapsBefore := swaps.Load()
		last := int64(-1)
		var buf []byte
		for offset := start; offset < end; {
			maxOffset := int64(math.MaxInt64)
			if bounded {
				maxOffset = end
			}
			out, err := l.Read(buf[:0], offset, 3000, maxOffset, true)
			if err != nil {
				return fmt.Errorf("read at %d of [%d, %d): %w", offset, start, end, err)
			}
			if len(out) == 0 && bounded {
				rest, err := l.Read(nil, offset, 1, math.MaxInt64, true)
				if err != nil {
					return fmt.Errorf("read at %d of [%d, %d): %w", offset, start, end, err)
				}
				if h, err := batch.ParseHeader(rest); err != nil || h.BaseOffset < end {
					return fmt.Errorf("read at %d below %d: nothing, although the log holds a batch at %d (%v)", offset, end, h.BaseOffset, err)
				}
				break // the cleaner removed the rest of [start, end)
			}
			if len(out) == 0 {
				return fmt.Errorf("read at %d of [%d, %d): nothing", offset, start, end)
			}
			buf = out
			err = batch.Split(out, func(b []byte) error {
				if _, err := batch.ValidateStored(b); err != nil {
					return err
				}
				h, recs, err := compress.DecompressBatch(b, nil, 64<<20)
				if err != nil {
					return err
				}
				if h.NextOffset() <= offset {
					return fmt.Errorf("batch [%d, %d) read at %d", h.BaseOffset, h.NextOffset(), offset)
				}
				offset = h.NextOffset()
				return batch.DecodeRecords(&h, recs, func(r *batch.Record) error {
					if r.Offset <= last {
						return fmt.Errorf("offset %d after %d", r.Offset, last)
					}
					last = r.Offset
					want, ok := written[r.Offset]
					var value []byte
					if r.Value != nil {
						value = r.Value
					}
					got := keyedRecord{offset: r.Offset, key: string(r.Key), value: value, ts: r.Timestamp}
					if !ok || !sameRecord(got, want) || len(r.Headers) != 1 || r.Headers[0].Key != "h" || string(r.Headers[0].Value) != want.key {
						return fmt.Errorf("record %s (headers %v) at %d, appended there: %s", recordString(got), r.Headers, r.Offset, recordString(want))
					}
					return nil
				})
			})
			if err != nil {
				return fmt.Errorf("reading [%d, %d) at %d: %w", start, end, offset, err)
			}
			for straddle && offset < end && swaps.Load() == swapsBefore && !closed(cleanerDone) {
				select {
				case <-swapped:
				case <-cleanerDone:
				}
			}
		}
		if end > start {
			reads.Add(1)
			if swaps.Load() != swapsBefore {
				straddled.Add(1)
			}
		}
		return nil
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(straddle, bounded bool) {
			defer wg.Done()
			for !readersStop.Load() {
				if err := readWhole(straddle, bounded); err != nil {
					report(err)
					return
				}
				signal(readDone)
			}
		}(r == 0, r != 2)
	}

	select {
	case <-writerDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the writer and the cleaner did not finish in three minutes")
	}
	readersStop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if l.EndOffset() != appendedEnd {
		t.Fatalf("end offset %d, appended %d", l.EndOffset(), appendedEnd)
	}
	if swaps.Load() < 10 || straddled.Load() == 0 {
		t.Fatalf("%d swaps, %d whole-log reads of which %d saw a swap: the test exercised too little", swaps.Load(), reads.Load(), straddled.Load())
	}
	checkCompacted(t, l, w, 0)
	t.Logf("%d batches, %d passes, %d swaps, %d whole-log reads of which %d saw a swap", batches, passes, swaps.Load(), reads.Load(), straddled.Load())
}
