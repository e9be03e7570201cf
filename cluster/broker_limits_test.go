package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// metaCountingFS counts the replacements of meta.json and can hold the next one until released.
type metaCountingFS struct {
	vfs.FS
	mu      sync.Mutex
	writes  int
	gate    chan struct{} // when set, the next meta.json write waits for it to be closed
	waiting chan struct{} // closed when a write is waiting at the gate
}

func (f *metaCountingFS) Create(name string) (vfs.File, error) {
	if filepath.Base(name) == metaFile+".tmp" {
		f.mu.Lock()
		gate, waiting := f.gate, f.waiting
		f.gate = nil
		f.mu.Unlock()
		if gate != nil {
			close(waiting)
			<-gate
		}
	}
	return f.FS.Create(name)
}

func (f *metaCountingFS) Rename(oldname, newname string) error {
	if filepath.Base(newname) == metaFile {
		f.mu.Lock()
		f.writes++
		f.mu.Unlock()
	}
	return f.FS.Rename(oldname, newname)
}

func (f *metaCountingFS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// entries lists the data directory without meta.json.
func entries(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if n != metaFile && n != lockFile {
			out = append(out, n)
		}
	}
	return out
}

func TestDataDirLockOneBrokerPerDirectory(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(Options{DataDir: dir, FS: vfs.Default})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, lockFile))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q (%v), want this process's id %d", pid, err, os.Getpid())
	}
	_, err = Open(Options{DataDir: dir, FS: vfs.Default})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second broker on the same directory: %v, want ErrDataDirInUse", err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("message %q names neither the directory nor the holder's pid", msg)
	}
	// The refused broker touched nothing: the first still works.
	if err := first.CreateTopic(TopicSpec{Name: "still-here", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(Options{DataDir: dir, FS: vfs.Default})
	if err != nil {
		t.Fatalf("after the first broker closed: %v", err)
	}
	defer again.Close()
	if again.Snapshot().Topics["still-here"] == nil {
		t.Fatal("the topic created by the first broker is gone")
	}
	// The in-memory filesystem takes no lock.
	mem := vfs.NewMem()
	a := openBroker(t, Options{FS: mem})
	defer a.Close()
	b := openBroker(t, Options{FS: mem})
	defer b.Close()
}

// TestDeleteTopicLongNameThenRecreateIsEmpty deletes topics whose names are at Kafka's limit on
// the operating system's filesystem, where a deleted directory's name must fit in 255 bytes.
func TestDeleteTopicLongNameThenRecreateIsEmpty(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{DataDir: dir, FS: vfs.Default, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	for _, n := range []int{233, 240, 249} {
		name := strings.Repeat("x", n-1) + strconv.Itoa(n%10)
		if err := b.CreateTopic(TopicSpec{Name: name, Partitions: 12, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 12; p++ {
			produce(t, b.Replica(name, p), 3)
		}
		if err := b.DeleteTopic(name); err != nil {
			t.Fatalf("deleting a topic of %d characters: %v", n, err)
		}
		if err := b.CreateTopic(TopicSpec{Name: name, Partitions: 12, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 12; p++ {
			if hw := b.Replica(name, p).HighWatermark(); hw != 0 {
				t.Fatalf("re-created topic of %d characters, partition %d: high watermark %d, want an empty log", n, p, hw)
			}
		}
	}
	for _, e := range entries(t, vfs.Default, dir) {
		if len(e) > maxFileName {
			t.Fatalf("directory name of %d bytes", len(e))
		}
	}
}

func TestDeleteDirNameBounded(t *testing.T) {
	for _, n := range []int{1, 200, 233, 249} {
		for _, p := range []int32{0, 7, 99999} {
			topic := strings.Repeat("t", n)
			name := deleteDirName(topic, p)
			if len(name) > maxFileName || !strings.HasSuffix(name, deleteDirSuffix) || !strings.HasPrefix(name, topic[:min(n, 200)]) {
				t.Fatalf("deleteDirName(%d characters, %d) = %q (%d bytes)", n, p, name, len(name))
			}
			if d := filepath.Base(topic + "-" + strconv.Itoa(int(p))); len(d) > maxFileName {
				t.Fatalf("partition directory of %d bytes", len(d))
			}
		}
	}
}

func TestStartRemovesOldAndNewDeletedDirectories(t *testing.T) {
	fs := vfs.NewMem()
	for _, d := range []string{"/data/orders-0.abc.deleted", "/data/orders-1.0123456789abcdef-delete"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := fs.Create(d + "/00000000000000000000.log")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	b := openBroker(t, Options{FS: fs})
	defer b.Close()
	if got := entries(t, fs, "/data"); len(got) != 0 {
		t.Fatalf("left after start: %v", got)
	}
}

// TestDeleteTopicReportsFilesItCannotRemove: a partition directory that can be neither moved nor
// removed is reported with KAFKA_STORAGE_ERROR, and a topic created later under the name starts
// empty all the same.
func TestDeleteTopicReportsFilesItCannotRemove(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.NewMem())
	b := openBroker(t, Options{FS: ffs})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "stuck", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	produce(t, b.Replica("stuck", 0), 5)
	inDir := func(p string) bool { return strings.Contains(p, "/stuck-0") }
	ffs.Inject(vfs.Fault{Op: vfs.OpRename, Match: inDir, Err: syscall.ENAMETOOLONG, Persistent: true})
	ffs.Inject(vfs.Fault{Op: vfs.OpRemove, Match: inDir, Err: syscall.EIO, Persistent: true})
	err := b.DeleteTopic("stuck")
	if codeOf(err) != errcode.KafkaStorageError || !strings.Contains(err.Error(), "stuck-0") {
		t.Fatalf("delete with unremovable files: %v, want KAFKA_STORAGE_ERROR naming the directory", err)
	}
	if b.Snapshot().Topics["stuck"] != nil {
		t.Fatal("the topic is still in the metadata")
	}
	// While the files stay, the name cannot be created on top of them.
	if err := b.CreateTopic(TopicSpec{Name: "stuck", Partitions: 1, ReplicationFactor: 1}, false); codeOf(err) != errcode.KafkaStorageError {
		t.Fatalf("create over unremovable files: %v, want KAFKA_STORAGE_ERROR", err)
	}
	ffs.Clear()
	if err := b.CreateTopic(TopicSpec{Name: "stuck", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if hw := b.Replica("stuck", 0).HighWatermark(); hw != 0 {
		t.Fatalf("re-created topic has high watermark %d, want an empty log", hw)
	}
}

func TestCreateTopicsPerRequestLimitCreatesNothing(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, Options{FS: fs, MaxPartitionsPerRequest: 10})
	defer b.Close()
	errs := b.CreateTopics([]TopicSpec{
		{Name: "a", Partitions: 6, ReplicationFactor: 1},
		{Name: "b", Partitions: 5, ReplicationFactor: 1},
		{Name: "bad name", Partitions: 1, ReplicationFactor: 1},
	}, false)
	if codeOf(errs[0]) != errcode.PolicyViolation || codeOf(errs[1]) != errcode.PolicyViolation || codeOf(errs[2]) != errcode.InvalidTopic {
		t.Fatalf("errors %v, want POLICY_VIOLATION for both valid topics", errs)
	}
	if !strings.Contains(errs[0].Error(), "11 partitions") || !strings.Contains(errs[0].Error(), "THORSTREAM_MAX_PARTITIONS_PER_REQUEST") {
		t.Fatalf("message %q", errs[0])
	}
	if got := entries(t, fs, "/data"); len(got) != 0 {
		t.Fatalf("left on disk: %v", got)
	}
	if err := b.CreateTopic(TopicSpec{Name: "c", Partitions: 10, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "d", Partitions: 100001, ReplicationFactor: 1}, false); codeOf(err) != errcode.InvalidPartitions {
		t.Fatalf("100001 partitions: %v, want INVALID_PARTITIONS", err)
	}
	// An internal topic (the offsets topic's 12 partitions) is never refused: the broker needs it.
	if err := b.CreateTopic(TopicSpec{Name: "__internal", Partitions: 12, ReplicationFactor: 1, Internal: true}, false); err != nil {
		t.Fatalf("an internal topic above the per-request limit: %v", err)
	}
}

func TestCreateTopicsBrokerPartitionLimit(t *testing.T) {
	fs := vfs.NewMem()
	b := openBroker(t, Options{FS: fs, MaxPartitions: 8})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "five", Partitions: 5, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	errs := b.CreateTopics([]TopicSpec{
		{Name: "two", Partitions: 2, ReplicationFactor: 1},
		{Name: "four", Partitions: 4, ReplicationFactor: 1},
		{Name: "one", Partitions: 1, ReplicationFactor: 1},
	}, false)
	if errs[0] != nil || codeOf(errs[1]) != errcode.PolicyViolation || errs[2] != nil {
		t.Fatalf("errors %v, want only four refused (POLICY_VIOLATION)", errs)
	}
	if !strings.Contains(errs[1].Error(), "THORSTREAM_MAX_PARTITIONS") {
		t.Fatalf("message %q", errs[1])
	}
	for p := 0; p < 4; p++ {
		if _, err := fs.Stat(fmt.Sprintf("/data/four-%d", p)); err == nil {
			t.Fatalf("refused topic left /data/four-%d", p)
		}
	}
	// Internal topics are counted but never refused: the broker needs them.
	if err := b.CreateTopic(TopicSpec{Name: "__internal", Partitions: 1, ReplicationFactor: 1, Internal: true}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "more", Partitions: 1, ReplicationFactor: 1}, true); codeOf(err) != errcode.PolicyViolation {
		t.Fatalf("validate-only past the limit: %v", err)
	}
}

func TestCreateTopicFailureLeavesNothing(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.NewMem())
	b := openBroker(t, Options{FS: ffs})
	defer b.Close()
	// The third partition cannot be created: the first two are removed again.
	ffs.Inject(vfs.Fault{Op: vfs.OpCreate, Match: func(p string) bool { return strings.Contains(p, "/half-2/") }, Err: syscall.EMFILE, Persistent: true})
	if err := b.CreateTopic(TopicSpec{Name: "half", Partitions: 5, ReplicationFactor: 1}, false); codeOf(err) != errcode.KafkaStorageError {
		t.Fatalf("create with a failing partition: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if got := entries(t, ffs, "/data"); len(got) != 0 {
		t.Fatalf("left on disk: %v", got)
	}
	ffs.Clear()
	// The metadata write fails: every topic of the batch is removed again.
	ffs.Inject(vfs.Fault{Op: vfs.OpRename, Match: func(p string) bool { return filepath.Base(p) == metaFile }, Err: syscall.ENOSPC})
	errs := b.CreateTopics([]TopicSpec{{Name: "x", Partitions: 2, ReplicationFactor: 1}, {Name: "y", Partitions: 1, ReplicationFactor: 1}}, false)
	if codeOf(errs[0]) != errcode.KafkaStorageError || codeOf(errs[1]) != errcode.KafkaStorageError {
		t.Fatalf("errors %v, want KAFKA_STORAGE_ERROR for both", errs)
	}
	if got := entries(t, ffs, "/data"); len(got) != 0 && !(len(got) == 1 && got[0] == metaFile+".tmp") {
		t.Fatalf("left on disk: %v", got)
	}
	if len(b.Snapshot().Names) != 0 {
		t.Fatalf("topics %v published after a failed metadata write", b.Snapshot().Names)
	}
	ffs.Clear()
	if err := b.CreateTopic(TopicSpec{Name: "half", Partitions: 5, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
}

func TestCreateTopicsWriteMetadataOnce(t *testing.T) {
	fs := &metaCountingFS{FS: vfs.NewMem()}
	b := openBroker(t, Options{FS: fs})
	defer b.Close()
	before := fs.count()
	specs := make([]TopicSpec, 500)
	for i := range specs {
		specs[i] = TopicSpec{Name: fmt.Sprintf("t%03d", i), Partitions: 1, ReplicationFactor: 1}
	}
	for i, err := range b.CreateTopics(specs, false) {
		if err != nil {
			t.Fatalf("topic %d: %v", i, err)
		}
	}
	if n := fs.count() - before; n != 1 {
		t.Fatalf("500 topics in one call wrote meta.json %d times, want 1", n)
	}
	if len(b.Snapshot().Names) != 500 {
		t.Fatalf("%d topics", len(b.Snapshot().Names))
	}
	// The metadata survives a restart.
	b.Close()
	b2 := openBroker(t, Options{FS: fs})
	defer b2.Close()
	if len(b2.Snapshot().Names) != 500 {
		t.Fatalf("%d topics after a restart", len(b2.Snapshot().Names))
	}
}

// TestConcurrentCreationsCoalesce holds one metadata write while 20 more creations queue: they
// are all written with one more write.
func TestConcurrentCreationsCoalesce(t *testing.T) {
	fs := &metaCountingFS{FS: vfs.NewMem()}
	b := openBroker(t, Options{FS: fs})
	defer b.Close()
	gate, waiting := make(chan struct{}), make(chan struct{})
	fs.mu.Lock()
	fs.gate, fs.waiting = gate, waiting
	fs.mu.Unlock()
	before := fs.count()
	const n = 20
	errs := make(chan error, n+1)
	go func() { errs <- b.CreateTopic(TopicSpec{Name: "first", Partitions: 1, ReplicationFactor: 1}, false) }()
	select {
	case <-waiting:
	case <-time.After(waitTimeout):
		t.Fatal("the first creation did not reach its metadata write")
	}
	for i := 0; i < n; i++ {
		go func() {
			errs <- b.CreateTopic(TopicSpec{Name: fmt.Sprintf("next-%d", i), Partitions: 1, ReplicationFactor: 1}, false)
		}()
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		b.createMu.Lock()
		queued := len(b.createQueue)
		b.createMu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d creations queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond) // polling interval of a condition with a deadline
	}
	close(gate)
	for i := 0; i < n+1; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("a creation did not finish")
		}
	}
	if w := fs.count() - before; w != 2 {
		t.Fatalf("%d creations wrote meta.json %d times, want 2 (the held write and one for the rest)", n+1, w)
	}
	if len(b.Snapshot().Names) != n+1 {
		t.Fatalf("%d topics, want %d", len(b.Snapshot().Names), n+1)
	}
}

func TestEnsureTopicsBoundsAutoCreation(t *testing.T) {
	fs := &metaCountingFS{FS: vfs.NewMem()}
	b := openBroker(t, Options{FS: fs, AutoCreateTopics: true, MaxAutoCreateTopics: 3})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "old", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	before := fs.count()
	names := []string{"old", "n1", "bad name", "n2", "n1", "n3", "n4", "n5"}
	topics, errs := b.EnsureTopics(names)
	for i, name := range names {
		switch {
		case name == "bad name":
			if codeOf(errs[i]) != errcode.InvalidTopic {
				t.Fatalf("%q: %v", name, errs[i])
			}
		case name == "n4" || name == "n5":
			if codeOf(errs[i]) != errcode.ThrottlingQuotaExceeded || topics[i] != nil || !strings.Contains(errs[i].Error(), "THORSTREAM_MAX_AUTO_CREATE_TOPICS") {
				t.Fatalf("%q past the limit: %v", name, errs[i])
			}
		default:
			if errs[i] != nil || topics[i] == nil || topics[i].Name != name {
				t.Fatalf("%q: %v, %v", name, topics[i], errs[i])
			}
		}
	}
	if w := fs.count() - before; w != 1 {
		t.Fatalf("three auto-created topics wrote meta.json %d times, want 1", w)
	}
	// A retry creates the rest.
	if _, errs := b.EnsureTopics([]string{"n4", "n5"}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("retry: %v", errs)
	}
}

func TestDeleteRecordsRefusedOnInternalTopic(t *testing.T) {
	b := openBroker(t, Options{})
	defer b.Close()
	if err := b.CreateTopic(TopicSpec{Name: "__consumer_offsets", Partitions: 1, ReplicationFactor: 1, Internal: true}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(TopicSpec{Name: "plain", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	produce(t, b.Replica("plain", 0), 4)
	start, err := b.DeleteRecords("__consumer_offsets", 0, -1)
	if codeOf(err) != errcode.InvalidTopic || start != -1 || !strings.Contains(err.Error(), "internal topic") {
		t.Fatalf("DeleteRecords on the internal topic: %d, %v; want INVALID_TOPIC_EXCEPTION", start, err)
	}
	if start, err := b.DeleteRecords("plain", 0, 2); err != nil || start != 2 {
		t.Fatalf("DeleteRecords on a plain topic: %d, %v", start, err)
	}
	if _, err := b.DeleteRecords("plain", 1, 0); codeOf(err) != errcode.UnknownTopicOrPartition {
		t.Fatalf("missing partition: %v", err)
	}
}

func TestSegmentConfigMinimums(t *testing.T) {
	b := openBroker(t, Options{})
	defer b.Close()
	for _, cfg := range []map[string]string{{ConfigSegmentBytes: "14"}, {ConfigSegmentMs: "1"}} {
		if err := b.CreateTopic(TopicSpec{Name: "small", Partitions: 1, ReplicationFactor: 1, Configs: cfg}, false); codeOf(err) != errcode.InvalidConfig {
			t.Fatalf("%v: %v, want INVALID_CONFIG", cfg, err)
		}
	}
}
