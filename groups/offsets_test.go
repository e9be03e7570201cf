package groups

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
)

// fakeStore keeps every persisted batch (copied, as a log would) and can fail or defer.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]byte
	fail    error
	// deferred, when set, holds the done callbacks instead of calling them.
	deferDone bool
	pending   []func()
}

func (s *fakeStore) Persist(records []byte, done func(error)) {
	s.mu.Lock()
	if s.fail != nil {
		err := s.fail
		s.mu.Unlock()
		done(err)
		return
	}
	if _, err := batch.Validate(records); err != nil {
		s.mu.Unlock()
		panic("Persist got an invalid batch: " + err.Error())
	}
	s.batches = append(s.batches, append([]byte(nil), records...))
	if s.deferDone {
		s.pending = append(s.pending, func() { done(nil) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	done(nil)
}

func (s *fakeStore) log() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func commit(t *testing.T, o *Offsets, group string, nowMs int64, commits ...Commit) []error {
	t.Helper()
	var got []error
	called := 0
	o.Commit(group, commits, nowMs, func(errs []error) { got = errs; called++ })
	if called != 1 {
		t.Fatalf("done called %d times", called)
	}
	if len(got) != len(commits) {
		t.Fatalf("%d errors for %d commits", len(got), len(commits))
	}
	return got
}

func TestCommitThenFetch(t *testing.T) {
	o := NewOffsets(&fakeStore{})
	errs := commit(t, o, "g", 1000,
		Commit{Topic: "a", Partition: 0, Offset: 10, Metadata: "m0"},
		Commit{Topic: "a", Partition: 1, Offset: 20},
		Commit{Topic: "b", Partition: 0, Offset: 0},
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		group, topic string
		partition    int32
		want         Committed
		ok           bool
	}{
		{"g", "a", 0, Committed{Offset: 10, Metadata: "m0", CommitTime: 1000}, true},
		{"g", "a", 1, Committed{Offset: 20, CommitTime: 1000}, true},
		{"g", "b", 0, Committed{Offset: 0, CommitTime: 1000}, true},
		{"g", "a", 2, Committed{}, false},
		{"other", "a", 0, Committed{}, false},
	} {
		got, ok := o.Fetch(tc.group, tc.topic, tc.partition)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Fetch(%s, %s, %d) = %+v, %v; want %+v, %v", tc.group, tc.topic, tc.partition, got, ok, tc.want, tc.ok)
		}
	}
	// A later commit overwrites.
	commit(t, o, "g", 2000, Commit{Topic: "a", Partition: 0, Offset: 11})
	if got, _ := o.Fetch("g", "a", 0); got != (Committed{Offset: 11, CommitTime: 2000}) {
		t.Fatalf("after overwrite: %+v", got)
	}
}

func TestCommitVisibleOnlyAfterPersist(t *testing.T) {
	s := &fakeStore{deferDone: true}
	o := NewOffsets(s)
	var got []error
	o.Commit("g", []Commit{{Topic: "a", Offset: 5}}, 1, func(errs []error) { got = errs })
	if _, ok := o.Fetch("g", "a", 0); ok || got != nil {
		t.Fatal("commit visible (or answered) before the store said it is durable")
	}
	s.pending[0]()
	if c, ok := o.Fetch("g", "a", 0); !ok || c.Offset != 5 || got == nil || got[0] != nil {
		t.Fatalf("after persist: %+v %v %v", c, ok, got)
	}
}

func TestCommitPersistFailure(t *testing.T) {
	storeErr := errcode.New(errcode.CoordinatorNotAvailable, "disk on fire")
	s := &fakeStore{}
	o := NewOffsets(s)
	commit(t, o, "g", 1, Commit{Topic: "a", Partition: 0, Offset: 1})
	s.fail = storeErr
	errs := commit(t, o, "g", 2,
		Commit{Topic: "a", Partition: 0, Offset: 100},
		Commit{Topic: "a", Partition: 1, Offset: 200},
		Commit{Topic: "a", Partition: 2, Offset: 300, Metadata: strings.Repeat("x", MaxMetadataBytes+1)},
	)
	if !errors.Is(errs[0], storeErr) || !errors.Is(errs[1], storeErr) {
		t.Fatalf("errors %v, want the store's error", errs)
	}
	if errcode.Of(errs[2]) != errcode.OffsetMetadataTooLarge {
		t.Fatalf("third commit: %v", errs[2])
	}
	if c, _ := o.Fetch("g", "a", 0); c.Offset != 1 {
		t.Fatalf("failed commit changed the offset to %d", c.Offset)
	}
	if _, ok := o.Fetch("g", "a", 1); ok {
		t.Fatal("failed commit is visible")
	}
	if n := len(o.FetchAll("g")); n != 1 {
		t.Fatalf("FetchAll has %d entries after a failed commit", n)
	}
}

func TestCommitValidation(t *testing.T) {
	s := &fakeStore{}
	o := NewOffsets(s)
	errs := commit(t, o, "g", 1,
		Commit{Topic: "a", Partition: 0, Offset: 1, Metadata: strings.Repeat("x", MaxMetadataBytes)},
		Commit{Topic: "a", Partition: 1, Offset: 1, Metadata: strings.Repeat("x", MaxMetadataBytes+1)},
		Commit{Topic: "a", Partition: 2, Offset: -1},
	)
	if errs[0] != nil || errcode.Of(errs[1]) != errcode.OffsetMetadataTooLarge || errcode.Of(errs[2]) != errcode.InvalidCommitOffsetSize {
		t.Fatalf("errors %v", errs)
	}
	if _, ok := o.Fetch("g", "a", 1); ok {
		t.Fatal("metadata too large was committed")
	}
	// Only the accepted commit reached the store.
	n := 0
	if err := countRecords(s.log(), &n); err != nil || n != 1 {
		t.Fatalf("%d records persisted (%v), want 1", n, err)
	}
	// All rejected: nothing is persisted and done is still called.
	before := len(s.batches)
	errs = commit(t, o, "g", 1, Commit{Topic: "a", Offset: -5})
	if errcode.Of(errs[0]) != errcode.InvalidCommitOffsetSize || len(s.batches) != before {
		t.Fatalf("all-rejected commit: %v, %d batches", errs, len(s.batches)-before)
	}
	errs = commit(t, o, "", 1, Commit{Topic: "a", Offset: 1})
	if errcode.Of(errs[0]) != errcode.InvalidGroupID {
		t.Fatalf("empty group: %v", errs[0])
	}
	// No commits at all.
	if errs := commit(t, o, "g", 1); len(errs) != 0 {
		t.Fatal(errs)
	}
}

// countRecords counts the records of a log.
func countRecords(log []byte, n *int) error {
	return batch.Split(log, func(b []byte) error {
		return batch.Records(b, func(*batch.Record) error { *n++; return nil })
	})
}

func TestLoadReplaysInOrder(t *testing.T) {
	s := &fakeStore{}
	o := NewOffsets(s)
	commit(t, o, "g1", 100, Commit{Topic: "a", Partition: 0, Offset: 1, Metadata: "first"}, Commit{Topic: "a", Partition: 1, Offset: 7})
	commit(t, o, "g2", 200, Commit{Topic: "a", Partition: 0, Offset: 50})
	commit(t, o, "g1", 300, Commit{Topic: "a", Partition: 0, Offset: 2, Metadata: "second"})
	commit(t, o, "g1", 400, Commit{Topic: "b", Partition: 3, Offset: 9}, Commit{Topic: "b", Partition: 3, Offset: 10})

	loaded := NewOffsets(&fakeStore{})
	if err := loaded.Load(s.log()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		group, topic string
		partition    int32
		want         Committed
	}{
		{"g1", "a", 0, Committed{Offset: 2, Metadata: "second", CommitTime: 300}},
		{"g1", "a", 1, Committed{Offset: 7, CommitTime: 100}},
		{"g2", "a", 0, Committed{Offset: 50, CommitTime: 200}},
		{"g1", "b", 3, Committed{Offset: 10, CommitTime: 400}}, // last record of a batch wins
	} {
		got, ok := loaded.Fetch(tc.group, tc.topic, tc.partition)
		if !ok || got != tc.want {
			t.Errorf("Fetch(%s, %s, %d) = %+v, %v; want %+v", tc.group, tc.topic, tc.partition, got, ok, tc.want)
		}
		if live, _ := o.Fetch(tc.group, tc.topic, tc.partition); live != got {
			t.Errorf("replayed %+v differs from live %+v", got, live)
		}
	}
	// Loading in two chunks gives the same state.
	chunked := NewOffsets(&fakeStore{})
	for _, b := range s.batches {
		if err := chunked.Load(b); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := chunked.Fetch("g1", "a", 0); got.Offset != 2 {
		t.Fatalf("chunked load: %+v", got)
	}
}

func TestLoadTombstoneAndBadRecords(t *testing.T) {
	var b batch.Builder
	b.Reset()
	b.Append(encodeKey("g", "a", 0), encodeValue(5, "", 1), 1, nil)
	b.Append(encodeKey("g", "a", 1), encodeValue(6, "", 1), 1, nil)
	b.Append(encodeKey("g", "a", 0), nil, 2, nil) // tombstone
	o := NewOffsets(&fakeStore{})
	if err := o.Load(b.Finish()); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Fetch("g", "a", 0); ok {
		t.Fatal("tombstone did not delete")
	}
	if c, ok := o.Fetch("g", "a", 1); !ok || c.Offset != 6 {
		t.Fatalf("%+v %v", c, ok)
	}
	for _, tc := range []struct {
		name       string
		key, value []byte
	}{
		{"key version", append([]byte{0, 2}, encodeKey("g", "a", 0)[2:]...), encodeValue(1, "", 1)},
		{"short key", encodeKey("g", "a", 0)[:5], encodeValue(1, "", 1)},
		{"long key", append(encodeKey("g", "a", 0), 0), encodeValue(1, "", 1)},
		{"value version", encodeKey("g", "a", 0), append([]byte{0, 9}, encodeValue(1, "", 1)[2:]...)},
		{"short value", encodeKey("g", "a", 0), encodeValue(1, "", 1)[:9]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.Reset()
			b.Append(tc.key, tc.value, 1, nil)
			if err := NewOffsets(nil).Load(b.Finish()); !errors.Is(err, ErrBadCommitRecord) {
				t.Fatalf("Load: %v, want ErrBadCommitRecord", err)
			}
		})
	}
}

func TestFetchAllAndDeleteTopic(t *testing.T) {
	o := NewOffsets(&fakeStore{})
	commit(t, o, "g", 1, Commit{Topic: "a", Partition: 0, Offset: 1}, Commit{Topic: "a", Partition: 1, Offset: 2}, Commit{Topic: "b", Partition: 0, Offset: 3})
	commit(t, o, "h", 1, Commit{Topic: "a", Partition: 0, Offset: 4})
	sorted := func(in []TopicPartitionOffset) []TopicPartitionOffset {
		slices.SortFunc(in, func(x, y TopicPartitionOffset) int {
			if c := strings.Compare(x.Topic, y.Topic); c != 0 {
				return c
			}
			return int(x.Partition - y.Partition)
		})
		return in
	}
	got := sorted(o.FetchAll("g"))
	want := []TopicPartitionOffset{
		{Topic: "a", Partition: 0, Committed: Committed{Offset: 1, CommitTime: 1}},
		{Topic: "a", Partition: 1, Committed: Committed{Offset: 2, CommitTime: 1}},
		{Topic: "b", Partition: 0, Committed: Committed{Offset: 3, CommitTime: 1}},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("FetchAll(g) = %+v", got)
	}
	if n := len(o.FetchAll("nobody")); n != 0 {
		t.Fatalf("FetchAll of an unknown group has %d entries", n)
	}
	o.DeleteTopic("a")
	if got := o.FetchAll("g"); len(got) != 1 || got[0].Topic != "b" {
		t.Fatalf("after DeleteTopic(a): %+v", got)
	}
	if got := o.FetchAll("h"); len(got) != 0 {
		t.Fatalf("DeleteTopic left h's offsets: %+v", got)
	}
}

func TestCommitConcurrent(t *testing.T) {
	o := NewOffsets(&fakeStore{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				o.Commit("g", []Commit{{Topic: "t", Partition: int32(i), Offset: int64(j)}}, 1, func([]error) {})
				o.Fetch("g", "t", int32(i))
				o.FetchAll("g")
			}
		}()
	}
	wg.Wait()
	if n := len(o.FetchAll("g")); n != 8 {
		t.Fatalf("%d partitions committed, want 8", n)
	}
}
